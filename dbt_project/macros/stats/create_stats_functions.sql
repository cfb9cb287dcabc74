{#-
    Creates the confidence-interval functions of the `stats` schema (docs/methods.md):
    the marts call them and analysts may call them too (execute is granted to readers by the
    schema's default privileges). Run once per transform run, before the models, with
    `dbt run-operation create_stats_functions` (the transform DAG's create_stats_functions task).
    Every statement is idempotent.

    Formulas: docs/methods.md, following OHID's PHEindicatormethods
    (ukhsa-collaboration/PHEindicatormethods): wilson_lower/wilson_upper for proportions,
    byars_lower/byars_upper for counts of 10 or more and exact Poisson (chi-square) limits below 10,
    phe_dsr (Dobson) for directly standardised rates; the inequality summary measures follow WHO's
    HEAT / healthequal (WHOequity/healthequal), SII/RII the PHE closed-form regression.
-#}
{% macro create_stats_functions() -%}
    {%- set statements = [
        stats_z_value_sql(),
        stats_wilson_ci_sql(),
        stats_poisson_exact_limits_sql(),
        stats_rate_ci_sql(),
        stats_byar_limits_sql(),
        stats_dsr_ci_sql(),
        stats_inequality_measures_sql(),
        disclosure_secondary_suppression_function_sql(),
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


{#- Byar's approximation to the exact Poisson limits of an observed count (>= 1), on its own so
    stats.dsr_ci and analysts can use it. -#}
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


{#- Directly standardised rate with Dobson's confidence interval, over arrays so one call takes a
    whole standardisation set (e.g. array_agg(events order by age_from)). -#}
{% macro stats_dsr_ci_sql() %}
create or replace function stats.dsr_ci(
    events numeric[],
    populations numeric[],
    standard_weights numeric[],
    multiplier numeric default 100000,
    confidence numeric default 0.95,
    out value numeric,
    out lower numeric,
    out upper numeric,
    out total_events numeric
)
language plpgsql
immutable
strict
parallel safe
as $fn$
declare
    group_count integer := coalesce(array_length(events, 1), 0);
    weight_total numeric := 0;
    weighted_rates numeric := 0;
    variance_sum numeric := 0;
    event_count numeric;
    dsr numeric;
    dsr_variance numeric;
    limits record;
begin
    perform stats.z_value(confidence);
    if group_count = 0
        or coalesce(array_length(populations, 1), 0) <> group_count
        or coalesce(array_length(standard_weights, 1), 0) <> group_count then
        raise exception 'stats.dsr_ci: events, populations and standard_weights need the same '
            'non-zero length (got %, %, %)', group_count, array_length(populations, 1),
            array_length(standard_weights, 1) using errcode = '22023';
    end if;
    total_events := 0;
    for i in 1..group_count loop
        -- a missing count is no events, as in phe_dsr (na.zero); a missing population is an error
        event_count := coalesce(events[i], 0);
        if event_count < 0 or populations[i] is null or populations[i] <= 0
            or standard_weights[i] is null or standard_weights[i] < 0 then
            raise exception 'stats.dsr_ci: need events >= 0, populations > 0 and weights >= 0 '
                '(group %: %, %, %)', i, events[i], populations[i], standard_weights[i]
                using errcode = '22023';
        end if;
        total_events := total_events + event_count;
        weight_total := weight_total + standard_weights[i];
        weighted_rates := weighted_rates + event_count * standard_weights[i] / populations[i];
        variance_sum := variance_sum + event_count * (standard_weights[i] / populations[i]) ^ 2;
    end loop;
    if weight_total = 0 then
        raise exception 'stats.dsr_ci: the standard weights sum to zero' using errcode = '22023';
    end if;
    -- Fingertips does not publish a DSR from fewer than 10 events: value and limits stay NULL
    if total_events < 10 then
        return;
    end if;
    dsr := weighted_rates / weight_total;
    dsr_variance := variance_sum / weight_total ^ 2;
    select byar.lower, byar.upper into limits
    from stats.byar_limits(total_events, confidence) as byar;
    value := dsr * multiplier;
    lower := (dsr + sqrt(dsr_variance / total_events) * (limits.lower - total_events)) * multiplier;
    upper := (dsr + sqrt(dsr_variance / total_events) * (limits.upper - total_events)) * multiplier;
end;
$fn$;

comment on function stats.dsr_ci(numeric[], numeric[], numeric[], numeric, numeric) is
    'Directly standardised rate with Dobson''s confidence interval, as (value, lower, upper, '
    'total_events). Follows PHEindicatormethods phe_dsr / calculate_dsr: DSR = sum(x_i w_i / n_i) '
    '/ sum(w_i) x multiplier; var = sum(x_i (w_i/n_i)^2) / sum(w_i)^2; limits = DSR + sqrt(var/O) '
    '(O_L|U - O) with O = sum(x_i) and Byar''s limits O_L, O_U (Dobson et al., Stat Med 1991). '
    'The arrays hold one element per standardisation band, in the same band order (events NULL '
    'count as 0). value, lower and upper are NULL when O < 10 (not published, as in Fingertips). '
    'Standard weights: seed ref_standard_populations (esp2013, who_world_2000_2025). '
    'Confidence 0.95 or 0.998.';
{% endmacro %}


{#- The WHO HEAT set of inequality summary measures of one indicator x setting x dimension, over
    arrays of the subgroups' estimates (one element per subgroup, ordered dimensions sorted from
    the most disadvantaged group to the most advantaged). One row per measure; a measure that does
    not apply is NULL with the reason. -#}
{% macro stats_inequality_measures_sql() %}
create or replace function stats.inequality_measures(
    estimates numeric[],
    standard_errors numeric[],
    populations numeric[],
    is_ordered boolean,
    reference_flags boolean[] default null,
    is_favourable boolean default true,
    confidence numeric default 0.95
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
    all_measures constant text[] := array[
        'd', 'r', 'sii', 'rii', 'aci', 'rci', 'par', 'paf', 'mdbu', 'mdbw', 'mdmu', 'mdmw',
        'idisu', 'idisw', 'bgv', 'bgsd', 'cov', 'ti', 'mld'
    ];
    z numeric;
    n integer := coalesce(array_length(estimates, 1), 0);
    has_se boolean;
    missing_reason text;
    total_population numeric := 0;
    share numeric[];
    rank_midpoint numeric[];
    cumulative numeric := 0;
    mu numeric := 0;
    i integer;
    i_high integer;
    i_low integer;
    i_reference integer;
    i_max integer := 1;
    i_min integer := 1;
    i_best integer;
    ratio numeric;
    se numeric;
    sii numeric;
    intercept numeric;
    fitted_top numeric;
    slope_weight numeric;
    sii_variance numeric := 0;
    ln_rii_variance numeric := 0;
    aci_variance numeric := 0;
    rci_variance numeric := 0;
    numerator_sum numeric := 0;
    denominator_sum numeric := 0;
    aci numeric := 0;
    par numeric;
    mdbu numeric := 0;
    mdbw numeric := 0;
    mdmu numeric := 0;
    mdmw numeric := 0;
    bgv numeric := 0;
    bgv_variance numeric := 0;
    theil numeric := 0;
    mld numeric := 0;
    has_zero boolean := false;
    ordered_reason constant text := 'applies to ordered dimensions with more than 2 groups';
    nonordered_reason constant text := 'applies to non-ordered dimensions with more than 2 groups';
begin
    z := stats.z_value(coalesce(confidence, 0.95));
    if is_ordered is null then
        raise exception 'stats.inequality_measures: is_ordered must be true or false'
            using errcode = '22023';
    end if;
    if coalesce(array_length(populations, 1), 0) <> n
        or (standard_errors is not null and coalesce(array_length(standard_errors, 1), 0) <> n)
        or (reference_flags is not null and coalesce(array_length(reference_flags, 1), 0) <> n) then
        raise exception 'stats.inequality_measures: the arrays need one element per subgroup '
            '(estimates %, populations %)', n, array_length(populations, 1)
            using errcode = '22023';
    end if;

    -- every measure needs every subgroup: a suppressed group makes the whole set unpublishable
    if n < 2 then
        missing_reason := 'needs at least 2 groups';
    elsif array_position(estimates, null) is not null then
        missing_reason := 'a group has no published estimate (suppressed or without population)';
    elsif array_position(populations, null) is not null then
        missing_reason := 'a group has no population';
    else
        for i in 1..n loop
            if populations[i] <= 0 then
                missing_reason := 'a group has no population';
            end if;
            total_population := total_population + greatest(populations[i], 0);
        end loop;
    end if;
    if missing_reason is not null then
        foreach measure in array all_measures loop
            value := null; lower := null; upper := null; group_1 := null; group_2 := null;
            method := null;
            not_applicable_reason := missing_reason;
            return next;
        end loop;
        return;
    end if;
    has_se := standard_errors is not null and array_position(standard_errors, null) is null;

    -- population shares, setting average and cumulative-rank midpoints (ordered dimensions)
    share := array_fill(0::numeric, array[n]);
    rank_midpoint := array_fill(0::numeric, array[n]);
    for i in 1..n loop
        share[i] := populations[i] / total_population;
        rank_midpoint[i] := cumulative + share[i] / 2;
        cumulative := cumulative + share[i];
        mu := mu + share[i] * estimates[i];
        if estimates[i] > estimates[i_max] then i_max := i; end if;
        if estimates[i] < estimates[i_min] then i_min := i; end if;
        if estimates[i] = 0 then has_zero := true; end if;
    end loop;
    i_best := case when is_favourable then i_max else i_min end;
    if reference_flags is not null then
        i_reference := array_position(reference_flags, true);
    end if;

    -- D and R: the pair of subgroups WHO HEAT (healthequal d, r) compares
    if is_ordered then
        -- most advantaged (last) vs most disadvantaged (first) for a favourable indicator
        i_high := case when is_favourable then n else 1 end;
        i_low := case when is_favourable then 1 else n end;
    elsif i_reference is not null then
        -- reference vs worst group (favourable), worst vs reference (adverse)
        i_high := case when is_favourable then i_reference else i_max end;
        i_low := case when is_favourable then i_min else i_reference end;
    else
        i_high := i_max;
        i_low := i_min;
    end if;

    measure := 'd'; group_1 := i_high; group_2 := i_low; not_applicable_reason := null;
    value := estimates[i_high] - estimates[i_low];
    method := 'HEAT: y1 - y2; CI y1 - y2 -/+ z sqrt(se1^2 + se2^2)';
    lower := null; upper := null;
    if has_se then
        se := sqrt(standard_errors[i_high] ^ 2 + standard_errors[i_low] ^ 2);
        lower := value - z * se;
        upper := value + z * se;
    end if;
    return next;

    measure := 'r'; lower := null; upper := null;
    method := 'HEAT: y1 / y2; CI exp(ln R -/+ z sqrt(se1^2/y1^2 + se2^2/y2^2))';
    if estimates[i_low] = 0 then
        value := null;
        not_applicable_reason := 'the estimate of group 2 is 0';
    else
        value := estimates[i_high] / estimates[i_low];
        if has_se and estimates[i_high] > 0 and estimates[i_low] > 0 then
            se := sqrt(standard_errors[i_high] ^ 2 / estimates[i_high] ^ 2
                + standard_errors[i_low] ^ 2 / estimates[i_low] ^ 2);
            lower := exp(ln(value) - z * se);
            upper := exp(ln(value) + z * se);
        end if;
    end if;
    return next;

    -- SII, RII, ACI, RCI: ordered dimensions with more than 2 groups
    group_1 := null; group_2 := null; lower := null; upper := null;
    if is_ordered and n > 2 then
        for i in 1..n loop
            numerator_sum := numerator_sum + share[i] * (rank_midpoint[i] - 0.5) * (estimates[i] - mu);
            denominator_sum := denominator_sum + share[i] * (rank_midpoint[i] - 0.5) ^ 2;
            aci := aci + share[i] * (2 * rank_midpoint[i] - 1) * estimates[i];
        end loop;
        sii := numerator_sum / denominator_sum;
        intercept := mu - sii / 2;
        fitted_top := intercept + sii;

        -- CIs from the subgroups' sampling variances. The weighted least-squares slope is linear in
        -- the estimates (sum p_j X_j = 1/2 for midpoint ridits): SII = sum c_j y_j with
        -- c_j = p_j (X_j - 1/2) / sum p (X - 1/2)^2, so var(SII) = sum c_j^2 se_j^2 exactly. This is
        -- the analytic form of PHEindicatormethods' phe_sii interval, which simulates y_j ~ N(y_j,
        -- se_j) and refits. b0 = sum (p_j - c_j/2) y_j and b0 + SII = sum (p_j + c_j/2) y_j are
        -- linear too: RII by the delta method on ln RII; ACI (linear) exactly, RCI = ACI/mu by
        -- the delta method.
        if has_se then
            for i in 1..n loop
                slope_weight := share[i] * (rank_midpoint[i] - 0.5) / denominator_sum;
                sii_variance := sii_variance + slope_weight ^ 2 * standard_errors[i] ^ 2;
                if intercept > 0 and fitted_top > 0 then
                    ln_rii_variance := ln_rii_variance + standard_errors[i] ^ 2
                        * ((share[i] + slope_weight / 2) / fitted_top
                            - (share[i] - slope_weight / 2) / intercept) ^ 2;
                end if;
                aci_variance := aci_variance
                    + (share[i] * (2 * rank_midpoint[i] - 1)) ^ 2 * standard_errors[i] ^ 2;
                if mu <> 0 then
                    rci_variance := rci_variance + standard_errors[i] ^ 2
                        * (share[i] * (2 * rank_midpoint[i] - 1) / mu - aci * share[i] / mu ^ 2) ^ 2;
                end if;
            end loop;
        end if;

        measure := 'sii'; value := sii; not_applicable_reason := null;
        method := 'PHE: weighted least squares slope of y on the cumulative-rank midpoint X (weights p); '
            'CI SII -/+ z sqrt(sum c_j^2 se_j^2), c_j = p_j (X_j - 1/2) / sum p (X - 1/2)^2';
        if has_se then
            lower := sii - z * sqrt(sii_variance);
            upper := sii + z * sqrt(sii_variance);
        end if;
        return next;

        measure := 'rii'; lower := null; upper := null;
        method := 'PHE: (b0 + SII) / b0, b0 = mu - SII/2 the fitted value at X = 0; '
            'CI exp(ln RII -/+ z se(ln RII)), delta method';
        -- a straight line can cross zero before the disadvantaged end; a ratio to a fitted value
        -- of zero or below has no meaning
        if intercept <= 0 then
            value := null;
            not_applicable_reason := 'the fitted value at the disadvantaged end is not positive';
        elsif fitted_top <= 0 then
            value := null;
            not_applicable_reason := 'the fitted value at the advantaged end is not positive';
        elsif intercept < 0.05 * abs(mu) then
            -- e.g. contacts by age band, where the line nearly reaches 0 at the youngest end: the
            -- ratio (> ~40) and its interval (delta method, dividing by the intercept) explode
            -- and say nothing a reader can use; SII, the absolute measure, still applies
            value := null;
            not_applicable_reason := 'the fitted value at the disadvantaged end is under 5% of the mean: '
                'a ratio to it is not meaningful (read the SII)';
        else
            value := fitted_top / intercept; not_applicable_reason := null;
            if has_se and fitted_top > 0 then
                lower := exp(ln(value) - z * sqrt(ln_rii_variance));
                upper := exp(ln(value) + z * sqrt(ln_rii_variance));
            end if;
        end if;
        return next;

        measure := 'aci'; value := aci; not_applicable_reason := null; lower := null; upper := null;
        method := 'HEAT: sum p_j (2 X_j - 1) y_j; CI ACI -/+ z sqrt(sum p_j^2 (2 X_j - 1)^2 se_j^2)';
        if has_se then
            lower := aci - z * sqrt(aci_variance);
            upper := aci + z * sqrt(aci_variance);
        end if;
        return next;

        measure := 'rci'; method := 'HEAT: ACI / mu; CI RCI -/+ z se(RCI), delta method';
        lower := null; upper := null;
        if mu = 0 then
            value := null; not_applicable_reason := 'the setting average is 0';
        else
            value := aci / mu; not_applicable_reason := null;
            if has_se then
                lower := value - z * sqrt(rci_variance);
                upper := value + z * sqrt(rci_variance);
            end if;
        end if;
        return next;
        lower := null; upper := null;
    else
        foreach measure in array array['sii', 'rii', 'aci', 'rci'] loop
            value := null; method := null; not_applicable_reason := ordered_reason;
            return next;
        end loop;
    end if;

    -- PAR, PAF: any dimension with more than 2 groups
    if n > 2 then
        -- healthequal parisk: most advantaged group (ordered) or best group (non-ordered)
        i_reference := case when is_ordered then n else i_best end;
        par := estimates[i_reference] - mu;
        if (is_favourable and par < 0) or (not is_favourable and par > 0) then
            par := 0;  -- no improvement is possible
        end if;
        measure := 'par'; value := par; group_1 := i_reference; not_applicable_reason := null;
        method := 'HEAT: y_ref - mu (0 when no improvement is possible)';
        return next;
        measure := 'paf'; method := 'HEAT: 100 PAR / mu';
        if mu = 0 then
            value := null; not_applicable_reason := 'the setting average is 0';
        else
            value := 100 * par / mu;
        end if;
        return next;
        group_1 := null;
    else
        foreach measure in array array['par', 'paf'] loop
            value := null; method := null; not_applicable_reason := 'applies to more than 2 groups';
            return next;
        end loop;
    end if;

    -- non-ordered measures (MDB, MDM, IDIS, BGV, BGSD, COV, TI, MLD)
    if not is_ordered and n > 2 then
        for i in 1..n loop
            mdbu := mdbu + abs(estimates[i_best] - estimates[i]) / n;
            mdbw := mdbw + share[i] * abs(estimates[i_best] - estimates[i]);
            mdmu := mdmu + abs(estimates[i] - mu) / n;
            mdmw := mdmw + share[i] * abs(estimates[i] - mu);
            bgv := bgv + share[i] * (estimates[i] - mu) ^ 2;
            if has_se then
                bgv_variance := bgv_variance
                    + 4 * share[i] ^ 2 * (estimates[i] - mu) ^ 2 * standard_errors[i] ^ 2;
            end if;
            if mu > 0 and estimates[i] > 0 then
                theil := theil + share[i] * (estimates[i] / mu) * ln(estimates[i] / mu);
                mld := mld - share[i] * ln(estimates[i] / mu);
            end if;
        end loop;
        not_applicable_reason := null;

        measure := 'mdbu'; value := mdbu; group_1 := i_best;
        method := 'HEAT: (1/n) sum |y_best - y_j|'; return next;
        measure := 'mdbw'; value := mdbw;
        method := 'HEAT: sum p_j |y_best - y_j|'; return next;
        group_1 := null;
        measure := 'mdmu'; value := mdmu; method := 'HEAT: (1/n) sum |y_j - mu|'; return next;
        measure := 'mdmw'; value := mdmw; method := 'HEAT: sum p_j |y_j - mu|'; return next;
        measure := 'idisu'; method := 'HEAT: 100 MDMU / mu';
        value := case when mu <> 0 then 100 * mdmu / mu end;
        not_applicable_reason := case when mu = 0 then 'the setting average is 0' end;
        return next;
        measure := 'idisw'; method := 'HEAT: 100 MDMW / mu';
        value := case when mu <> 0 then 100 * mdmw / mu end;
        return next;
        not_applicable_reason := null;
        measure := 'bgv'; value := bgv;
        method := 'HEAT: sum p_j (y_j - mu)^2; CI BGV -/+ z sqrt(sum 4 p_j^2 (y_j - mu)^2 se_j^2)';
        if has_se then
            lower := bgv - z * sqrt(bgv_variance);
            upper := bgv + z * sqrt(bgv_variance);
        end if;
        return next;
        lower := null; upper := null;
        measure := 'bgsd'; value := sqrt(bgv); method := 'HEAT: sqrt(BGV)'; return next;
        measure := 'cov'; method := 'HEAT: 100 BGSD / mu';
        value := case when mu <> 0 then 100 * sqrt(bgv) / mu end;
        not_applicable_reason := case when mu = 0 then 'the setting average is 0' end;
        return next;
        measure := 'ti'; method := 'HEAT: 1000 sum p_j r_j ln r_j, r_j = y_j / mu (0 ln 0 = 0)';
        value := case when mu > 0 then 1000 * theil end;
        not_applicable_reason := case when mu <= 0 then 'the setting average is not positive' end;
        return next;
        measure := 'mld'; method := 'HEAT: 1000 sum p_j (-ln r_j), r_j = y_j / mu';
        if mu <= 0 or has_zero then
            value := null; not_applicable_reason := 'needs every group estimate above 0';
        else
            value := 1000 * mld; not_applicable_reason := null;
        end if;
        return next;
    else
        foreach measure in array array[
            'mdbu', 'mdbw', 'mdmu', 'mdmw', 'idisu', 'idisw', 'bgv', 'bgsd', 'cov', 'ti', 'mld'
        ] loop
            value := null; method := null; lower := null; upper := null;
            not_applicable_reason := nonordered_reason;
            return next;
        end loop;
    end if;
end;
$fn$;

comment on function stats.inequality_measures(
    numeric[], numeric[], numeric[], boolean, boolean[], boolean, numeric
) is
    'The WHO HEAT set of inequality summary measures for one indicator, setting and dimension, one '
    'row per measure (d, r, sii, rii, aci, rci, par, paf, mdbu, mdbw, mdmu, mdmw, idisu, idisw, bgv, '
    'bgsd, cov, ti, mld) with value, CI (lower, upper; D, R, BGV analytic; SII, RII, ACI, RCI from '
    'the subgroups'' sampling variances through the regression), group_1/group_2 '
    '(1-based positions of the subgroups compared: D = y1 - y2, R = y1 / y2; the reference group of '
    'PAR/PAF; the best group of MDB), method and not_applicable_reason. Arguments: per-subgroup '
    'arrays of estimates, standard errors (NULL: no CIs) and populations, in the dimension order '
    '(ordered dimensions from the most disadvantaged group to the most advantaged); is_ordered; '
    'reference_flags (true for the reference group of a non-ordered dimension, or NULL); '
    'is_favourable (higher is better); confidence 0.95 or 0.998. Follows WHO HEAT / healthequal '
    '(WHOequity/healthequal: d, r, aci, rci, parisk, paf, mdbu, mdbw, mdmu, mdmw, idisu, idisw, bgv, '
    'bgsd, covar, ti, mld) and, for SII and RII, the PHE closed-form weighted least-squares '
    'regression on the cumulative-rank midpoint (HEAT fits a logistic model instead), with the '
    'analytic form of phe_sii''s simulated interval. Theil and '
    'MLD are x1000 as HEAT reports them. Any NULL estimate or population makes every measure NULL.';
{% endmacro %}
