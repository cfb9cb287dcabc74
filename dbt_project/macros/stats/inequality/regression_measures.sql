{#- SII, RII, ACI and RCI of an ordered dimension (more than 2 groups), from the weighted
    least-squares line of the estimates on the cumulative-rank midpoints (weights: the population
    shares). `standard_errors` NULL: no CIs. A part of stats.inequality_measures. -#}
{% macro stats_inequality_regression_measures_sql() %}
create or replace function stats.inequality_regression_measures(
    estimates numeric[],
    standard_errors numeric[],
    share numeric[],
    rank_midpoint numeric[],
    mu numeric,
    z numeric
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
    n integer := array_length(estimates, 1);
    has_se boolean := standard_errors is not null;
    numerator_sum numeric := 0;
    denominator_sum numeric := 0;
    aci numeric := 0;
    sii numeric;
    intercept numeric;
    fitted_top numeric;
    slope_weight numeric;
    sii_variance numeric := 0;
    ln_rii_variance numeric := 0;
    aci_variance numeric := 0;
    rci_variance numeric := 0;
begin
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

    measure := 'sii';
    value := sii;
    method := 'PHE: weighted least squares slope of y on the cumulative-rank midpoint X (weights p); '
        'CI SII -/+ z sqrt(sum c_j^2 se_j^2), c_j = p_j (X_j - 1/2) / sum p (X - 1/2)^2';
    if has_se then
        lower := sii - z * sqrt(sii_variance);
        upper := sii + z * sqrt(sii_variance);
    end if;
    return next;

    measure := 'rii';
    lower := null;
    upper := null;
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
        value := fitted_top / intercept;
        if has_se and fitted_top > 0 then
            lower := exp(ln(value) - z * sqrt(ln_rii_variance));
            upper := exp(ln(value) + z * sqrt(ln_rii_variance));
        end if;
    end if;
    return next;

    measure := 'aci';
    value := aci;
    not_applicable_reason := null;
    lower := null;
    upper := null;
    method := 'HEAT: sum p_j (2 X_j - 1) y_j; CI ACI -/+ z sqrt(sum p_j^2 (2 X_j - 1)^2 se_j^2)';
    if has_se then
        lower := aci - z * sqrt(aci_variance);
        upper := aci + z * sqrt(aci_variance);
    end if;
    return next;

    measure := 'rci';
    lower := null;
    upper := null;
    method := 'HEAT: ACI / mu; CI RCI -/+ z se(RCI), delta method';
    if mu = 0 then
        value := null;
        not_applicable_reason := 'the setting average is 0';
    else
        value := aci / mu;
        if has_se then
            lower := value - z * sqrt(rci_variance);
            upper := value + z * sqrt(rci_variance);
        end if;
    end if;
    return next;
end;
$fn$;

comment on function stats.inequality_regression_measures(
    numeric[], numeric[], numeric[], numeric[], numeric, numeric
) is
    'Part of stats.inequality_measures: SII, RII, ACI and RCI of an ordered dimension, with CIs '
    'from the subgroups'' standard errors when given.';
{% endmacro %}
