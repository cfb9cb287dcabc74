{#-
    Inequality summary measures (the WHO HEAT set) per indicator x period x geography x dimension,
    computed by stats.inequality_measures from PUBLISHED estimates:
    - fct_service_use: service-use rates by every stratifier of ref_stratifier_groups (sex, age band,
      and England's ethnicity / IMD breakdowns such as MHSDS), plus a country's regions as the
      non-ordered `subnational_region` dimension of its national figure;
    - fct_outcomes: NHS Talking Therapies access and outcomes of England's ICBs (ARC geographies) by
      ethnicity and IMD decile, and by IMD quintile summed from the published deciles.

    Why the published figures and not restricted data: a summary measure is a function of the group
    estimates, and several (D, MDB, BGV with its CI) can be solved back for a group's count. Computed
    from unrounded counts they would leak what disclosure control withholds; computed from the
    published (rounded, suppressed) estimates they reveal nothing the marts do not already show. A
    set with any suppressed group gets NULL measures with the reason.
-#}

with

service_use as (

    select * from {{ ref('fct_service_use') }}

),

outcomes as (

    select * from {{ ref('fct_outcomes') }}

),

indicators as (

    select * from {{ ref('ref_indicators') }}

),

interventions as (

    select * from {{ ref('ref_interventions') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

icb_arcs as (

    select * from {{ ref('ref_icb_arcs') }}

),

inequality_measures as (

    select * from {{ ref('ref_inequality_measures') }}

),

-- the outcome measures of fct_outcomes as indicators (ref_indicators holds service-use indicators):
-- every one is favourable, a higher access or recovery is better
outcome_measures as (

    select * from (
        values
        ('access_rate', 'access per 100,000 adults', true),
        ('recovery', 'recovery (%)', true),
        ('reliable_improvement', 'reliable improvement (%)', true),
        ('reliable_recovery', 'reliable recovery (%)', true)
    ) as measures (measure, measure_label, is_favourable)

),

-- one row per subgroup: the published estimate, its standard error and the group's population
service_use_groups as (

    select
        'fct_service_use' as source_model,
        null::text as intervention_code,
        null::text as outcome_measure,
        service_use.indicator_code,
        service_use.period_start,
        service_use.period_type,
        service_use.country_code,
        -- ARC rows carry the ARC's code as their geography; ICB rows belong to the ICB's ARC
        case
            when service_use.geography_level = 'arc' then service_use.geography_code
            else icb_arcs.arc_code
        end as arc_code,
        service_use.geography_code,
        service_use.geography_level,
        service_use.stratifier,
        stratifier_groups.is_ordered,
        service_use.group_code,
        service_use.group_order,
        service_use.is_reference_group,
        service_use.value,
        -- Poisson standard error of a rate: multiplier x sqrt(count) / population
        service_use.multiplier * sqrt(service_use.numerator::numeric)
        / nullif(service_use.denominator, 0) as standard_error,
        service_use.denominator::numeric as population
    from service_use
    inner join stratifier_groups
        on service_use.stratifier = stratifier_groups.stratifier
        and service_use.group_code = stratifier_groups.group_code
    -- England figures by ICB or ARC carry the ARC (row-level security key)
    left join icb_arcs
        on service_use.geography_code = icb_arcs.icb_code
    where
        service_use.stratifier <> 'all'
        -- "not stated" is missing information, not a population group to compare
        and service_use.group_code <> 'not_stated'

),

-- the regions of a country as a non-ordered dimension of the national figure (HEAT's
-- "subnational region"), from the regions' published totals
subnational_region_groups as (

    select
        'fct_service_use' as source_model,
        null::text as intervention_code,
        null::text as outcome_measure,
        indicator_code,
        period_start,
        period_type,
        country_code,
        null::text as arc_code,
        country_code as geography_code,
        'national' as geography_level,
        'subnational_region' as stratifier,
        false as is_ordered,
        geography_code as group_code,
        0 as group_order,
        false as is_reference_group,
        value,
        multiplier * sqrt(numerator::numeric) / nullif(denominator, 0) as standard_error,
        denominator::numeric as population
    from service_use
    where stratifier = 'all' and geography_level = 'region'

),

talking_therapies as (

    select
        outcomes.*,
        stratifier_groups.is_ordered,
        stratifier_groups.parent_group_code
    from outcomes
    inner join stratifier_groups
        on outcomes.stratifier = stratifier_groups.stratifier
        and outcomes.group_code = stratifier_groups.group_code
    inner join outcome_measures
        on outcomes.measure = outcome_measures.measure
    where
        outcomes.intervention_code = 'talking_therapies'
        and outcomes.arc_code is not null
        and outcomes.stratifier <> 'all'
        and outcomes.group_code <> 'not_stated'

),

outcome_groups as (

    select
        'fct_outcomes' as source_model,
        intervention_code,
        measure as outcome_measure,
        intervention_code || '__' || measure as indicator_code,
        period_start,
        period_type,
        country_code,
        arc_code,
        geography_code,
        geography_level,
        stratifier,
        is_ordered,
        group_code,
        group_order,
        is_reference_group,
        value,
        {{ published_standard_error('measure_kind', 'numerator', 'denominator', 'multiplier') }}
            as standard_error,
        denominator::numeric as population
    from talking_therapies

),

-- IMD quintiles from the published deciles (ref_stratifier_groups: a decile's parent is its
-- quintile): counts and populations summed, so a quintile with a suppressed decile is suppressed
imd_quintile_counts as (

    select
        talking_therapies.intervention_code,
        talking_therapies.measure,
        talking_therapies.measure_kind,
        talking_therapies.period_start,
        talking_therapies.period_type,
        talking_therapies.country_code,
        talking_therapies.arc_code,
        talking_therapies.geography_code,
        talking_therapies.geography_level,
        talking_therapies.parent_group_code as group_code,
        max(talking_therapies.multiplier) as multiplier,
        -- sum() skips NULLs: a suppressed decile must make the quintile NULL, not smaller
        case
            when bool_and(talking_therapies.numerator is not null and talking_therapies.value is not null)
                then sum(talking_therapies.numerator)
        end as numerator,
        case
            when bool_and(talking_therapies.denominator is not null)
                then sum(talking_therapies.denominator)
        end as denominator
    from talking_therapies
    where talking_therapies.stratifier = 'imd_decile'
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10

),

imd_quintile_groups as (

    select
        'fct_outcomes' as source_model,
        counts.intervention_code,
        counts.measure as outcome_measure,
        counts.intervention_code || '__' || counts.measure as indicator_code,
        counts.period_start,
        counts.period_type,
        counts.country_code,
        counts.arc_code,
        counts.geography_code,
        counts.geography_level,
        'imd_quintile' as stratifier,
        stratifier_groups.is_ordered,
        counts.group_code,
        stratifier_groups.group_order,
        stratifier_groups.is_reference as is_reference_group,
        counts.multiplier::numeric * counts.numerator / nullif(counts.denominator, 0) as value,
        {{ published_standard_error(
            'counts.measure_kind', 'counts.numerator', 'counts.denominator', 'counts.multiplier'
        ) }} as standard_error,
        counts.denominator::numeric as population
    from imd_quintile_counts as counts
    inner join stratifier_groups
        on stratifier_groups.stratifier = 'imd_quintile'
        and counts.group_code = stratifier_groups.group_code

),

subgroups as (

    select * from service_use_groups
    union all
    select * from subnational_region_groups
    union all
    select * from outcome_groups
    union all
    select * from imd_quintile_groups

),

subgroup_sets as (

    -- arrays in the dimension's order: ordered dimensions from group_order 1 (most
    -- disadvantaged: IMD decile or quintile 1, the most deprived; the youngest age band) upwards,
    -- as stats.inequality_measures expects
    select
        source_model,
        intervention_code,
        outcome_measure,
        indicator_code,
        period_start,
        period_type,
        country_code,
        arc_code,
        geography_code,
        geography_level,
        stratifier,
        bool_and(is_ordered) as is_ordered,
        count(*) as group_count,
        array_agg(group_code order by group_order, group_code) as group_codes,
        array_agg(value order by group_order, group_code) as estimates,
        array_agg(standard_error order by group_order, group_code) as standard_errors,
        array_agg(population order by group_order, group_code) as populations,
        array_agg(coalesce(is_reference_group, false) order by group_order, group_code)
            as reference_flags
    from subgroups
    group by 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11

),

described_sets as (

    select
        subgroup_sets.*,
        coalesce(
            indicators.indicator_name,
            interventions.intervention_name || ': ' || outcome_measures.measure_label
        ) as indicator_name,
        coalesce(indicators.is_favourable, outcome_measures.is_favourable, true) as is_favourable
    from subgroup_sets
    left join indicators
        on subgroup_sets.indicator_code = indicators.indicator_code
    left join interventions
        on subgroup_sets.intervention_code = interventions.intervention_code
    left join outcome_measures
        on subgroup_sets.outcome_measure = outcome_measures.measure
    -- an indicator nobody described is not summarised (ref_indicators, or a known outcome measure)
    where indicators.indicator_code is not null or outcome_measures.measure is not null

),

measured as (

    select
        described_sets.*,
        measures.measure,
        measures.value,
        measures.lower,
        measures.upper,
        measures.group_1,
        measures.group_2,
        measures.method,
        measures.not_applicable_reason
    from described_sets
    cross join lateral stats.inequality_measures(
        described_sets.estimates,
        described_sets.standard_errors,
        described_sets.populations,
        described_sets.is_ordered,
        -- ordered dimensions compare their ends; a reference group only steers non-ordered ones
        case when described_sets.is_ordered then null else described_sets.reference_flags end,
        described_sets.is_favourable,
        0.95
    ) as measures

),

final as (

    select

        ----------  key and grain
        md5(concat_ws(
            '|',
            measured.indicator_code, measured.period_start, measured.geography_code,
            measured.stratifier, measured.measure
        )) as inequality_measure_key,
        measured.indicator_code,
        measured.period_start,
        measured.period_type,
        measured.country_code,
        measured.geography_code,
        measured.geography_level,
        measured.stratifier,
        measured.measure,

        ----------  description
        measured.indicator_name,
        inequality_measures.measure_name,
        inequality_measures.measure_kind,
        measured.is_ordered as is_ordered_dimension,
        measured.is_favourable as is_favourable_indicator,
        measured.group_count::integer as group_count,

        ----------  the measure
        trim_scale(round(measured.value, 6)) as value,
        trim_scale(round(measured.lower, 6)) as lower_95,
        trim_scale(round(measured.upper, 6)) as upper_95,
        measured.group_codes[measured.group_1] as group_1_code,
        measured.group_codes[measured.group_2] as group_2_code,
        measured.method,
        measured.not_applicable_reason,

        ----------  where it comes from, access key, latest period
        measured.source_model,
        measured.arc_code,
        measured.period_start = max(measured.period_start) over (
            partition by measured.source_model, measured.country_code
        ) as is_latest_period

    from measured
    inner join inequality_measures
        on measured.measure = inequality_measures.measure

)

select * from final
