{#- The measures of a non-ordered dimension with more than 2 groups: mean differences from the
    best group and from the mean (MDBU, MDBW, MDMU, MDMW), the index of disparity (IDISU, IDISW),
    between-group variance and standard deviation (BGV, BGSD), the coefficient of variation (COV),
    Theil's index (TI) and the mean log deviation (MLD), x1000 as HEAT reports them.
    `standard_errors` NULL: no CIs. A part of stats.inequality_measures. -#}
{% macro stats_inequality_dispersion_measures_sql() %}
create or replace function stats.inequality_dispersion_measures(
    estimates numeric[],
    standard_errors numeric[],
    share numeric[],
    mu numeric,
    i_best integer,
    has_zero boolean,
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
    mdbu numeric := 0;
    mdbw numeric := 0;
    mdmu numeric := 0;
    mdmw numeric := 0;
    bgv numeric := 0;
    bgv_variance numeric := 0;
    theil numeric := 0;
    mld numeric := 0;
begin
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

    -- the mean differences from the best group name it
    group_1 := i_best;
    measure := 'mdbu';
    value := mdbu;
    method := 'HEAT: (1/n) sum |y_best - y_j|';
    return next;
    measure := 'mdbw';
    value := mdbw;
    method := 'HEAT: sum p_j |y_best - y_j|';
    return next;
    group_1 := null;

    measure := 'mdmu';
    value := mdmu;
    method := 'HEAT: (1/n) sum |y_j - mu|';
    return next;
    measure := 'mdmw';
    value := mdmw;
    method := 'HEAT: sum p_j |y_j - mu|';
    return next;

    not_applicable_reason := case when mu = 0 then 'the setting average is 0' end;
    measure := 'idisu';
    method := 'HEAT: 100 MDMU / mu';
    value := case when mu <> 0 then 100 * mdmu / mu end;
    return next;
    measure := 'idisw';
    method := 'HEAT: 100 MDMW / mu';
    value := case when mu <> 0 then 100 * mdmw / mu end;
    return next;
    not_applicable_reason := null;

    measure := 'bgv';
    value := bgv;
    method := 'HEAT: sum p_j (y_j - mu)^2; CI BGV -/+ z sqrt(sum 4 p_j^2 (y_j - mu)^2 se_j^2)';
    if has_se then
        lower := bgv - z * sqrt(bgv_variance);
        upper := bgv + z * sqrt(bgv_variance);
    end if;
    return next;
    lower := null;
    upper := null;

    measure := 'bgsd';
    value := sqrt(bgv);
    method := 'HEAT: sqrt(BGV)';
    return next;

    measure := 'cov';
    method := 'HEAT: 100 BGSD / mu';
    value := case when mu <> 0 then 100 * sqrt(bgv) / mu end;
    not_applicable_reason := case when mu = 0 then 'the setting average is 0' end;
    return next;

    measure := 'ti';
    method := 'HEAT: 1000 sum p_j r_j ln r_j, r_j = y_j / mu (0 ln 0 = 0)';
    value := case when mu > 0 then 1000 * theil end;
    not_applicable_reason := case when mu <= 0 then 'the setting average is not positive' end;
    return next;

    measure := 'mld';
    method := 'HEAT: 1000 sum p_j (-ln r_j), r_j = y_j / mu';
    if mu <= 0 or has_zero then
        value := null;
        not_applicable_reason := 'needs every group estimate above 0';
    else
        value := 1000 * mld;
        not_applicable_reason := null;
    end if;
    return next;
end;
$fn$;

comment on function stats.inequality_dispersion_measures(
    numeric[], numeric[], numeric[], numeric, integer, boolean, numeric
) is
    'Part of stats.inequality_measures: MDBU, MDBW, MDMU, MDMW, IDISU, IDISW, BGV, BGSD, COV, TI '
    'and MLD of a non-ordered dimension, with a CI for BGV when standard errors are given.';
{% endmacro %}
