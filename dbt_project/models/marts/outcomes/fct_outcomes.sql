{#-
    Published outcomes and access: NHS Talking Therapies by ICB (ARC) x financial year x
    ethnicity / IMD decile, and NGO PROMs by country x month x sex, one row per measure.
-#}

with

talking_therapies as (

    select * from {{ ref('int_outcomes__talking_therapies') }}

),

ngo_outcomes as (

    select * from {{ ref('int_outcomes__ngo') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

countries as (

    select * from {{ ref('ref_countries') }}

),

-- one row per measure, before disclosure control; *_withheld = the publisher suppressed the cell
talking_therapies_measures as (

    select
        talking_therapies.period_start,
        talking_therapies.period_end,
        talking_therapies.period_type,
        talking_therapies.country_code,
        talking_therapies.arc_code,
        talking_therapies.geography_code,
        talking_therapies.geography_name,
        talking_therapies.geography_level,
        talking_therapies.intervention_code,
        talking_therapies.stratifier,
        talking_therapies.group_code,
        measure.measure,
        null::text as instrument,
        measure.measure_kind,
        measure.numerator,
        measure.denominator,
        measure.numerator_withheld,
        measure.denominator_withheld,
        null::numeric as mean_change,
        measure.denominator_count
    from talking_therapies
    cross join lateral (
        values
        -- the last column names the denominator's count: measures sharing it share one cell
        -- (a population is not a count of people using services: none)
        (
            'access_rate', 'rate', talking_therapies.accessing_services, talking_therapies.population,
            talking_therapies.accessing_suppressed, false, null::text
        ),
        (
            'recovery', 'proportion', talking_therapies.recovered, talking_therapies.at_caseness,
            talking_therapies.recovered_suppressed, talking_therapies.caseness_suppressed, 'at_caseness'
        ),
        (
            'reliable_improvement', 'proportion', talking_therapies.reliably_improved,
            talking_therapies.finished_treatment, talking_therapies.improved_suppressed,
            talking_therapies.finished_suppressed, 'finished_treatment'
        ),
        (
            'reliable_recovery', 'proportion', talking_therapies.reliably_recovered,
            talking_therapies.at_caseness, talking_therapies.reliably_recovered_suppressed,
            talking_therapies.caseness_suppressed, 'at_caseness'
        )
    ) as measure (
        measure, measure_kind, numerator, denominator, numerator_withheld,
        denominator_withheld, denominator_count
    )

),

ngo_measures as (

    select
        ngo_outcomes.period_start,
        ngo_outcomes.period_end,
        ngo_outcomes.period_type,
        ngo_outcomes.country_code,
        null::text as arc_code,
        ngo_outcomes.country_code as geography_code,
        countries.country_name as geography_name,
        -- programme figures of an NGO, not a census of the country: disclosure-controlled like
        -- sub-national figures
        'programme' as geography_level,
        ngo_outcomes.intervention_code,
        ngo_outcomes.stratifier,
        ngo_outcomes.group_code,
        lower(replace(ngo_outcomes.instrument, '-', '')) || '_' || measure.measure as measure,
        ngo_outcomes.instrument,
        measure.measure_kind,
        measure.numerator,
        measure.denominator,
        measure.numerator_withheld,
        measure.denominator_withheld,
        measure.mean_change,
        lower(replace(ngo_outcomes.instrument, '-', '')) || '_assessed' as denominator_count
    from ngo_outcomes
    left join countries
        on ngo_outcomes.country_code = countries.country_code
    cross join lateral (
        values
        (
            'recovery', 'proportion', ngo_outcomes.people_recovered, ngo_outcomes.people_assessed,
            ngo_outcomes.recovered_suppressed, ngo_outcomes.assessed_suppressed, null::numeric
        ),
        (
            'reliable_improvement', 'proportion', ngo_outcomes.people_reliably_improved,
            ngo_outcomes.people_assessed, ngo_outcomes.improved_suppressed, ngo_outcomes.assessed_suppressed,
            null::numeric
        ),
        (
            'mean_change', 'mean_change', null::bigint, ngo_outcomes.people_assessed, false,
            ngo_outcomes.assessed_suppressed, ngo_outcomes.mean_score_after - ngo_outcomes.mean_score_before
        )
    ) as measure (
        measure, measure_kind, numerator, denominator, numerator_withheld,
        denominator_withheld, mean_change
    )

),

unioned as (

    select * from talking_therapies_measures
    union all
    select * from ngo_measures

),

-- NHS Digital disclosure control (macros/disclosure): counts under 5 suppressed, the rest rounded
-- to 5 (NHS England's files are already published that way; applying it again changes nothing).
-- A proportion or mean is suppressed when its numerator or denominator is; a population
-- denominator is not a count of people using services and is published as it is.
disclosed as (

    select
        unioned.*,
        md5(concat_ws(
            '|',
            unioned.period_start, unioned.geography_code, unioned.intervention_code,
            unioned.stratifier, unioned.group_code, unioned.measure
        )) as outcome_key,
        stratifier_groups.group_label,
        stratifier_groups.group_order,
        coalesce(stratifier_groups.is_reference, false) as is_reference_group,
        {{ disclosure_published_count('numerator', 'geography_level') }} as published_numerator,
        case
            when unioned.measure_kind = 'rate' then unioned.denominator
            else {{ disclosure_published_count('denominator', 'geography_level') }}
        end as published_denominator,
        case
            when unioned.numerator_withheld or unioned.denominator_withheld then 'suppressed by the publisher'
            when unioned.measure_kind <> 'mean_change'
                and {{ disclosure_is_suppressed('numerator', 'geography_level') }}
                then '{{ disclosure_suppression_label() }}'
            when unioned.measure_kind <> 'rate'
                and {{ disclosure_is_suppressed('denominator', 'geography_level') }}
                then '{{ disclosure_suppression_label() }}'
            when unioned.measure_kind = 'mean_change' and unioned.mean_change is null
                then 'no mean scores reported'
            when unioned.measure_kind = 'proportion' and unioned.numerator > unioned.denominator
                then 'inconsistent counts (numerator above denominator)'
        end as primary_suppression_reason
    from unioned
    left join stratifier_groups
        on unioned.stratifier = stratifier_groups.stratifier
        and unioned.group_code = stratifier_groups.group_code

),

-- Secondary suppression per count (macros/disclosure/secondary_suppression.sql): in every set of
-- a period x place x programme x count's `all` row and one stratifier's groups (all = sum of the
-- groups), suppression repeats until no set has exactly one suppressed cell or suppressed
-- cells summing to under 5, each time hiding the group with the smallest count. Sizes and order
-- are those of mart_know_do_gap, which publishes the same Talking Therapies access counts, so the
-- two marts suppress the same cells. The outcomes are published by ICB and financial year only
-- (no parent place, no months): the stratifier sets are the only additive relations here.
-- One reason for primary and secondary suppression (macros/disclosure/disclosure_control.sql).
primary_suppressed as (

    select
        disclosed.*,
        disclosed.primary_suppression_reason is not null as is_primary_suppressed
    from disclosed

),

-- the counts behind the rows: each measure's numerator, and each denominator count once (people
-- at caseness are the denominator of recovery and of reliable recovery: one cell, hidden or shown
-- alike in both rows). Suppression works on these cells; a row is hidden when any of its cells is.
count_cells as (

    select distinct on (cell_id) *
    from (
        select
            concat_ws(
                '|', period_start, geography_code, intervention_code, measure, stratifier,
                group_code
            ) as cell_id,
            period_start,
            geography_code,
            geography_level,
            intervention_code,
            measure as count_name,
            stratifier,
            group_code,
            group_order,
            numerator as cell_size,
            numerator_withheld or {{ disclosure_is_suppressed('numerator', 'geography_level') }}
                as is_suppressed
        from primary_suppressed
        where measure_kind <> 'mean_change'

        union all

        select
            concat_ws(
                '|', period_start, geography_code, intervention_code, denominator_count,
                stratifier, group_code
            ) as cell_id,
            period_start,
            geography_code,
            geography_level,
            intervention_code,
            denominator_count,
            stratifier,
            group_code,
            group_order,
            denominator,
            denominator_withheld or {{ disclosure_is_suppressed('denominator', 'geography_level') }}
        from primary_suppressed
        where denominator_count is not null
    ) as cells
    order by cell_id asc, is_suppressed desc

),

memberships as (

    {{ disclosure_stratifier_set_memberships(
        'count_cells', ['period_start', 'geography_code', 'intervention_code', 'count_name'],
        cell_id='cell.cell_id',
        is_suppressed='cell.is_suppressed',
        cell_size='cell.cell_size'
    ) }}

),

secondary_suppressed as (

    {{ disclosure_secondary_suppressed_cells('memberships') }}

),

suppressed as (

    select
        primary_suppressed.*,
        coalesce(
            primary_suppressed.primary_suppression_reason,
            -- hidden when the numerator's or the denominator's cell was suppressed secondarily
            case
                when {{ disclosure_is_secondary_suppressed([
                    "concat_ws('|', primary_suppressed.period_start,
                        primary_suppressed.geography_code, primary_suppressed.intervention_code,
                        primary_suppressed.measure, primary_suppressed.stratifier,
                        primary_suppressed.group_code)",
                    "case when primary_suppressed.denominator_count is not null then concat_ws('|',
                        primary_suppressed.period_start, primary_suppressed.geography_code,
                        primary_suppressed.intervention_code, primary_suppressed.denominator_count,
                        primary_suppressed.stratifier, primary_suppressed.group_code) end",
                ]) }}
                    then '{{ disclosure_suppression_label() }}'
            end
        ) as suppression_reason
    from primary_suppressed

),

measured as (

    select
        suppressed.*,
        suppressed.suppression_reason is not null as is_suppressed,
        case suppressed.measure_kind
            when 'rate' then {{ var('rate_multiplier') }}
            when 'proportion' then 100
        end as multiplier,
        case
            when suppressed.suppression_reason is not null then null
            when suppressed.measure_kind = 'rate' then rate_95.value
            when suppressed.measure_kind = 'proportion'
                then 100.0 * suppressed.published_numerator / suppressed.published_denominator
            else suppressed.mean_change
        end as value,
        case suppressed.measure_kind
            when 'rate' then rate_95.lower
            when 'proportion' then 100 * wilson_95.lower
        end as lower_95,
        case suppressed.measure_kind
            when 'rate' then rate_95.upper
            when 'proportion' then 100 * wilson_95.upper
        end as upper_95,
        case suppressed.measure_kind
            when 'rate' then rate_998.lower
            when 'proportion' then 100 * wilson_998.lower
        end as lower_998,
        case suppressed.measure_kind
            when 'rate' then rate_998.upper
            when 'proportion' then 100 * wilson_998.upper
        end as upper_998
    from suppressed
    -- each CI function only for its kind of measure and unsuppressed cells (strict: NULL in, NULL out)
    left join lateral stats.rate_ci(
        case
            when suppressed.measure_kind = 'rate' and suppressed.suppression_reason is null
                then suppressed.published_numerator
        end,
        nullif(suppressed.published_denominator, 0), {{ var('rate_multiplier') }}, 0.95
    ) as rate_95 on true
    left join lateral stats.rate_ci(
        case
            when suppressed.measure_kind = 'rate' and suppressed.suppression_reason is null
                then suppressed.published_numerator
        end,
        nullif(suppressed.published_denominator, 0), {{ var('rate_multiplier') }}, 0.998
    ) as rate_998 on true
    left join lateral stats.wilson_ci(
        case
            when suppressed.measure_kind = 'proportion' and suppressed.suppression_reason is null
                then suppressed.published_numerator
        end,
        suppressed.published_denominator, 0.95
    ) as wilson_95 on true
    left join lateral stats.wilson_ci(
        case
            when suppressed.measure_kind = 'proportion' and suppressed.suppression_reason is null
                then suppressed.published_numerator
        end,
        suppressed.published_denominator, 0.998
    ) as wilson_998 on true

),

-- MHSDS-style comparison with the stratifier's reference group (White; IMD decile 1, the most
-- deprived; Female): difference with the MOVER CI from the two estimates' own CIs (Zou & Donner
-- 2008; Newcombe 1998), as NHS England's "difference from White British" / "from the most
-- deprived" figures
compared as (

    {{ reference_group_rows(
        'measured', ['period_start', 'geography_code', 'intervention_code', 'measure'],
        {'value': 'value', 'lower_95': 'lower_95', 'upper_95': 'upper_95'}
    ) }}

),

final as (

    select

        ----------  key and grain
        outcome_key,
        period_start,
        period_end,
        period_type,

        ----------  access keys (Superset row-level security) and geography
        country_code,
        arc_code,
        geography_code,
        geography_name,
        geography_level,

        ----------  what is measured
        intervention_code,
        measure,
        measure_kind,
        instrument,
        stratifier,
        group_code,
        group_label,
        group_order,
        is_reference_group,

        ----------  the estimate after disclosure control
        case when is_suppressed then null else published_numerator end as numerator,
        case when is_suppressed and measure_kind <> 'rate' then null else published_denominator end
            as denominator,
        multiplier::integer as multiplier,
        trim_scale(round(value, 4)) as value,
        trim_scale(round(case when not is_suppressed then lower_95 end, 4)) as lower_95,
        trim_scale(round(case when not is_suppressed then upper_95 end, 4)) as upper_95,
        trim_scale(round(case when not is_suppressed then lower_998 end, 4)) as lower_998,
        trim_scale(round(case when not is_suppressed then upper_998 end, 4)) as upper_998,
        case
            when is_suppressed then null
            when measure_kind = 'proportion' then 'wilson'
            when measure_kind = 'rate' and published_numerator >= 10 then 'byar'
            when measure_kind = 'rate' then 'exact_poisson'
            else 'difference_of_means'
        end as ci_method,
        is_suppressed,
        suppression_reason,

        ----------  difference from the reference group (MOVER 95% CI)
        case when stratifier <> 'all' then reference_group_code end as reference_group_code,
        trim_scale(round(case when stratifier <> 'all' then value - reference_value end, 4))
            as difference_from_reference,
        trim_scale(round(case
            when stratifier <> 'all' and group_code <> reference_group_code
                then {{ mover_difference_lower(
                    'value', 'lower_95', 'reference_value', 'reference_upper_95'
                ) }}
        end, 4)) as difference_lower_95,
        trim_scale(round(case
            when stratifier <> 'all' and group_code <> reference_group_code
                then {{ mover_difference_upper(
                    'value', 'upper_95', 'reference_value', 'reference_lower_95'
                ) }}
        end, 4)) as difference_upper_95

    from compared

)

select * from final
