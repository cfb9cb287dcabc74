{#-
    Creates the confidence-interval functions of the `stats` schema (DESIGN.md "Warehouse"):
    the marts call them and analysts may call them too (execute is granted to readers by the
    schema's default privileges). Run by the project's on-run-start hook and on its own with
    `dbt run-operation create_stats_functions`. Every statement is idempotent.

    Formulas: shared/EQUITY-METHODS.md, following OHID's PHEindicatormethods
    (ukhsa-collaboration/PHEindicatormethods): wilson_lower/wilson_upper for proportions,
    byars_lower/byars_upper for counts of 10 or more and exact Poisson (chi-square) limits below 10.
-#}
{% macro create_stats_functions() -%}
    {%- set statements = [
        stats_z_value_sql(),
        stats_wilson_ci_sql(),
        stats_poisson_exact_limits_sql(),
        stats_rate_ci_sql(),
    ] -%}
    {%- if execute -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
        {%- do run_query('commit') -%}
        {{ log('stats functions created or replaced', info=false) }}
    {%- endif -%}
{%- endmacro %}


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


{#- Exact Poisson limits for 0..9 observed events: O_L = qchisq(α/2, 2O)/2 (0 when O = 0),
    O_U = qchisq(1 − α/2, 2O + 2)/2, computed once with scipy.stats.chi2.ppf and checked by
    tests/dbt/test_stats_functions.py. -#}
{% macro stats_poisson_exact_limits_sql() %}
create or replace function stats.poisson_exact_limits(
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
begin
    perform stats.z_value(confidence);  -- rejects unsupported levels with the same message
    if observed < 0 or observed > 9 or observed <> trunc(observed) then
        raise exception 'stats.poisson_exact_limits: observed must be a whole number 0..9 (got %)',
            observed using errcode = '22023';
    end if;
    select limits.lower, limits.upper
    into lower, upper
    from (values
        (0.95, 0, 0.000000000000000, 3.688879454113935),
        (0.95, 1, 0.025317807984290, 5.571643390938898),
        (0.95, 2, 0.242209278543965, 7.224687667723960),
        (0.95, 3, 0.618672122895601, 8.767273069742323),
        (0.95, 4, 1.089865373626325, 10.241588675403694),
        (0.95, 5, 1.623486390118421, 11.668332079322671),
        (0.95, 6, 2.201894253490851, 13.059474022518685),
        (0.95, 7, 2.814363051519867, 14.422675361702376),
        (0.95, 8, 3.453832176748502, 15.763189220193313),
        (0.95, 9, 4.115373097378334, 17.084803451419166),
        (0.998, 0, 0.000000000000000, 6.907755278982137),
        (0.998, 1, 0.001000500333584, 9.233413476451585),
        (0.998, 2, 0.045402017769490, 11.228872242412661),
        (0.998, 3, 0.190533377568403, 13.062240779188070),
        (0.998, 4, 0.428552413628423, 14.794149222537211),
        (0.998, 5, 0.739371731917833, 16.454745203680105),
        (0.998, 6, 1.107104660255640, 18.061636840199064),
        (0.998, 7, 1.520336260398809, 19.626177395384232),
        (0.998, 8, 1.970813921740366, 21.156198165839982),
        (0.998, 9, 2.452424404363775, 22.657373309062930)
    ) as limits (confidence, observed, lower, upper)
    where limits.confidence = poisson_exact_limits.confidence
      and limits.observed = poisson_exact_limits.observed;
end;
$fn$;

comment on function stats.poisson_exact_limits(numeric, numeric) is
    'Exact Poisson confidence limits for 0..9 observed events: lower = qchisq(alpha/2, 2O)/2 '
    '(0 when O = 0), upper = qchisq(1 - alpha/2, 2O + 2)/2, tabulated from scipy chi2.ppf. '
    'Follows the exact method of PHEindicatormethods (phe_rate, phe_dsr for small counts).';
{% endmacro %}


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
    z numeric := stats.z_value(confidence);
    observed_lower numeric;
    observed_upper numeric;
begin
    if numerator < 0 or denominator <= 0 then
        raise exception 'stats.rate_ci: need numerator >= 0 and denominator > 0 (got %, %)',
            numerator, denominator using errcode = '22023';
    end if;
    if numerator < 10 then
        select limits.lower, limits.upper
        into observed_lower, observed_upper
        from stats.poisson_exact_limits(numerator, confidence) as limits;
    else
        -- Byar's approximation to the exact Poisson limits
        observed_lower := numerator
            * (1 - 1 / (9 * numerator) - z / (3 * sqrt(numerator))) ^ 3;
        observed_upper := (numerator + 1)
            * (1 - 1 / (9 * (numerator + 1)) + z / (3 * sqrt(numerator + 1))) ^ 3;
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
