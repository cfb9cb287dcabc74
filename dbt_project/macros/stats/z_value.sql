{#- z = Φ⁻¹(1 − α/2) for the two confidence levels KnowDo publishes: 95% and 99.8%. PostgreSQL
    has no normal quantile function, so the levels are a closed list; others raise 22023. -#}
{% macro stats_z_value_sql() %}
create or replace function stats.z_value(confidence numeric)
returns numeric
language plpgsql
immutable
strict
parallel safe
as $fn$
begin
    if confidence = 0.95 then
        return 1.959963984540054;
    elsif confidence = 0.998 then
        return 3.090232306167813;
    end if;
    raise exception 'stats: unsupported confidence level % (supported: 0.95, 0.998)', confidence
        using errcode = '22023';
end;
$fn$;

comment on function stats.z_value(numeric) is
    'Two-sided standard normal quantile z = qnorm(1 - (1 - confidence) / 2) for the supported '
    'confidence levels 0.95 and 0.998 (as PHEindicatormethods uses them); raises 22023 otherwise.';
{% endmacro %}
