{#- Byar's approximation to the exact Poisson limits of an observed count (>= 1): the one place
    the formula is written; stats.rate_ci (10 events or more), stats.dsr_ci and analysts use it. -#}
{% macro stats_byar_limits_sql() %}
create or replace function stats.byar_limits(
    observed numeric,
    confidence numeric default 0.95,
    out lower numeric,
    out upper numeric
)
language plpgsql
immutable
strict
parallel safe
as $fn$
declare
    z numeric := stats.z_value(confidence);
begin
    if observed <= 0 then
        raise exception 'stats.byar_limits: observed must be positive (got %)', observed
            using errcode = '22023';
    end if;
    lower := observed * (1 - 1 / (9 * observed) - z / (3 * sqrt(observed))) ^ 3;
    upper := (observed + 1) * (1 - 1 / (9 * (observed + 1)) + z / (3 * sqrt(observed + 1))) ^ 3;
end;
$fn$;

comment on function stats.byar_limits(numeric, numeric) is
    'Byar''s approximate Poisson confidence limits (lower, upper) of an observed count O > 0: '
    'O(1 - 1/(9O) - z/(3 sqrt O))^3 and (O+1)(1 - 1/(9(O+1)) + z/(3 sqrt(O+1)))^3. Follows '
    'PHEindicatormethods byars_lower/byars_upper. Confidence 0.95 or 0.998.';
{% endmacro %}
