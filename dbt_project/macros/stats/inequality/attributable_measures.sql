{#- PAR and PAF (healthequal parisk, paf) of a dimension with more than 2 groups: the gain if every
    group had the estimate of group `i_reference`, absolute and as a percentage of the setting
    average (0 when no improvement is possible). A part of stats.inequality_measures. -#}
{% macro stats_inequality_attributable_measures_sql() %}
create or replace function stats.inequality_attributable_measures(
    estimates numeric[],
    i_reference integer,
    mu numeric,
    is_favourable boolean
)
returns table (
    measure text,
    value numeric,
    lower numeric,
    upper numeric,
    group_1 integer,
    group_2 integer,
    method text,
    not_applicable_reason text
)
language plpgsql
immutable
parallel safe
as $fn$
declare
    par numeric := estimates[i_reference] - mu;
begin
    if (is_favourable and par < 0) or (not is_favourable and par > 0) then
        par := 0;  -- no improvement is possible
    end if;
    group_1 := i_reference;

    measure := 'par';
    value := par;
    method := 'HEAT: y_ref - mu (0 when no improvement is possible)';
    return next;

    measure := 'paf';
    method := 'HEAT: 100 PAR / mu';
    if mu = 0 then
        value := null;
        not_applicable_reason := 'the setting average is 0';
    else
        value := 100 * par / mu;
    end if;
    return next;
end;
$fn$;

comment on function stats.inequality_attributable_measures(numeric[], integer, numeric, boolean) is
    'Part of stats.inequality_measures: PAR and PAF against the reference group''s estimate.';
{% endmacro %}
