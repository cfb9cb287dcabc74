{% macro stats_wilson_ci_sql() %}
create or replace function stats.wilson_ci(
    x numeric,
    n numeric,
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
    if n <= 0 or x < 0 or x > n then
        raise exception 'stats.wilson_ci: need 0 <= x <= n and n > 0 (x = %, n = %)', x, n
            using errcode = '22023';
    end if;
    lower := (2 * x + z ^ 2 - z * sqrt(z ^ 2 + 4 * x * (1 - x / n))) / (2 * (n + z ^ 2));
    upper := (2 * x + z ^ 2 + z * sqrt(z ^ 2 + 4 * x * (1 - x / n))) / (2 * (n + z ^ 2));
    -- the exact limits at x = 0 and x = n are 0 and 1; numeric sqrt leaves ~1e-19 of round-off
    lower := greatest(lower, 0);
    upper := least(upper, 1);
end;
$fn$;

comment on function stats.wilson_ci(numeric, numeric, numeric) is
    'Wilson score interval for a proportion x/n, returned as (lower, upper) on the 0-1 scale. '
    'Follows PHEindicatormethods wilson_lower/wilson_upper (ukhsa-collaboration/PHEindicatormethods): '
    '(2x + z^2 -/+ z*sqrt(z^2 + 4x(1 - x/n))) / (2(n + z^2)). Confidence 0.95 or 0.998.';
{% endmacro %}
