{% macro stats_rate_ci_sql() %}
create or replace function stats.rate_ci(
    numerator numeric,
    denominator numeric,
    multiplier numeric default 100000,
    confidence numeric default 0.95,
    out value numeric,
    out lower numeric,
    out upper numeric
)
language plpgsql
immutable
strict
parallel safe
as $fn$
declare
    observed_lower numeric;
    observed_upper numeric;
begin
    perform stats.z_value(confidence);  -- rejects unsupported levels with the same message
    if numerator < 0 or denominator <= 0 then
        raise exception 'stats.rate_ci: need numerator >= 0 and denominator > 0 (got %, %)',
            numerator, denominator using errcode = '22023';
    end if;
    if numerator < 10 then
        select limits.lower, limits.upper
        into observed_lower, observed_upper
        from stats.poisson_exact_limits(numerator, confidence) as limits;
    else
        -- Byar's approximation to the exact Poisson limits (stats.byar_limits)
        select limits.lower, limits.upper
        into observed_lower, observed_upper
        from stats.byar_limits(numerator, confidence) as limits;
    end if;
    value := numerator / denominator * multiplier;
    lower := observed_lower / denominator * multiplier;
    upper := observed_upper / denominator * multiplier;
end;
$fn$;

comment on function stats.rate_ci(numeric, numeric, numeric, numeric) is
    'Crude rate numerator/denominator*multiplier with its confidence interval, as (value, lower, '
    'upper). Follows PHEindicatormethods phe_rate (ukhsa-collaboration/PHEindicatormethods): '
    'Byar''s method for numerators of 10 or more, exact Poisson (chi-square) limits for 0..9 '
    '(whole numbers only; see stats.poisson_exact_limits). Confidence 0.95 or 0.998.';
{% endmacro %}
