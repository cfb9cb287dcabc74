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
    n integer := coalesce(array_length(estimates, 1), 0);
    z numeric;
    missing_reason text;
    errors numeric[];
    setting record;
    i_best integer;
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
    missing_reason := stats.inequality_missing_reason(estimates, populations);
    if missing_reason is not null then
        return query select * from stats.inequality_not_applicable(array[
            'd', 'r', 'sii', 'rii', 'aci', 'rci', 'par', 'paf', 'mdbu', 'mdbw', 'mdmu', 'mdmw',
            'idisu', 'idisw', 'bgv', 'bgsd', 'cov', 'ti', 'mld'
        ], missing_reason);
        return;
    end if;
    -- confidence intervals only when every subgroup has a standard error
    if standard_errors is not null and array_position(standard_errors, null) is null then
        errors := standard_errors;
    end if;
    select * into setting from stats.inequality_setting(estimates, populations);
    i_best := case when is_favourable then setting.i_max else setting.i_min end;

    -- D and R: every dimension
    return query select * from stats.inequality_pair_measures(
        estimates, errors, is_ordered, array_position(reference_flags, true), is_favourable,
        setting.i_max, setting.i_min, z
    );

    -- SII, RII, ACI, RCI: ordered dimensions with more than 2 groups
    if is_ordered and n > 2 then
        return query select * from stats.inequality_regression_measures(
            estimates, errors, setting.share, setting.rank_midpoint, setting.mu, z
        );
    else
        return query select * from stats.inequality_not_applicable(
            array['sii', 'rii', 'aci', 'rci'],
            'applies to ordered dimensions with more than 2 groups'
        );
    end if;

    -- PAR, PAF: any dimension with more than 2 groups; healthequal parisk's reference is the most
    -- advantaged group (ordered) or the best group (non-ordered)
    if n > 2 then
        return query select * from stats.inequality_attributable_measures(
            estimates, case when is_ordered then n else i_best end, setting.mu, is_favourable
        );
    else
        return query select * from stats.inequality_not_applicable(
            array['par', 'paf'], 'applies to more than 2 groups'
        );
    end if;

    -- MDB, MDM, IDIS, BGV, BGSD, COV, TI, MLD: non-ordered dimensions with more than 2 groups
    if not is_ordered and n > 2 then
        return query select * from stats.inequality_dispersion_measures(
            estimates, errors, setting.share, setting.mu, i_best, setting.has_zero, z
        );
    else
        return query select * from stats.inequality_not_applicable(
            array['mdbu', 'mdbw', 'mdmu', 'mdmw', 'idisu', 'idisw', 'bgv', 'bgsd', 'cov', 'ti', 'mld'],
            'applies to non-ordered dimensions with more than 2 groups'
        );
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
