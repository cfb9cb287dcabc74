{#-
    Inequality summary measures (the WHO HEAT set) per indicator x month x geography x dimension,
    computed by stats.inequality_measures from the PUBLISHED service-use rates of fct_service_use.

    Why the published figures and not restricted.service_use_unrounded: a summary measure is a
    function of the group rates, and several (D, MDB, BGV with its CI) can be solved back for a
    group's count. Computed from unrounded regional counts they would leak what disclosure control
    withholds; computed from the published (rounded, suppressed) rates they reveal nothing the mart
    does not already show. National rows are published unrounded, so national measures are exact.
    A set with any suppressed group gets NULL measures with the reason.
-#}

with

service_use as (

    select * from {{ ref('fct_service_use') }}

),

indicators as (

    select * from {{ ref('ref_indicators') }}

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

inequality_measures as (

    select * from {{ ref('ref_inequality_measures') }}

),

-- one row per subgroup: the published rate, its Poisson standard error and population
sex_and_age_groups as (

    select
        service_use.indicator_code,
        service_use.period_start,
        service_use.period_type,
        service_use.country_code,
        service_use.geography_code,
        service_use.geography_level,
        service_use.stratifier,
        stratifier_groups.is_ordered,
        service_use.group_code,
        service_use.group_order,
        service_use.is_reference_group,
        service_use.numerator,
        service_use.denominator,
        service_use.multiplier,
        service_use.value
    from service_use
    inner join stratifier_groups
        on service_use.stratifier = stratifier_groups.stratifier
        and service_use.group_code = stratifier_groups.group_code
    where
        service_use.stratifier <> 'all'
        -- "not stated" is missing information, not a population group to compare
        and service_use.group_code <> 'not_stated'

),

-- the regions of a country as a non-ordered dimension of the national figure (HEAT's
-- "subnational region"), from the regions' published totals
subnational_region_groups as (

    select
        indicator_code,
        period_start,
        period_type,
        country_code,
        country_code as geography_code,
        'national' as geography_level,
        'subnational_region' as stratifier,
        false as is_ordered,
        geography_code as group_code,
        0 as group_order,
        false as is_reference_group,
        numerator,
        denominator,
        multiplier,
        value
    from service_use
    where stratifier = 'all' and geography_level = 'region'

),

subgroups as (

    select * from sex_and_age_groups
    union all
    select * from subnational_region_groups

),

subgroup_sets as (

    -- arrays in the dimension's order: ordered dimensions from group_order 1 (most
    -- disadvantaged, or youngest for age) upwards, as stats.inequality_measures expects
    select
        indicator_code,
        period_start,
        period_type,
        country_code,
        geography_code,
        geography_level,
        stratifier,
        bool_and(is_ordered) as is_ordered,
        count(*) as group_count,
        array_agg(group_code order by group_order, group_code) as group_codes,
        array_agg(value order by group_order, group_code) as estimates,
        -- Poisson standard error of a rate: multiplier x sqrt(count) / population
        array_agg(
            multiplier * sqrt(numerator::numeric) / nullif(denominator, 0)
            order by group_order, group_code
        ) as standard_errors,
        array_agg(denominator::numeric order by group_order, group_code) as populations,
        array_agg(coalesce(is_reference_group, false) order by group_order, group_code)
            as reference_flags
    from subgroups
    group by 1, 2, 3, 4, 5, 6, 7

),

measured as (

    select
        subgroup_sets.*,
        indicators.indicator_name,
        coalesce(indicators.is_favourable, true) as is_favourable,
        measures.measure,
        measures.value,
        measures.lower,
        measures.upper,
        measures.group_1,
        measures.group_2,
        measures.method,
        measures.not_applicable_reason
    from subgroup_sets
    inner join indicators
        on subgroup_sets.indicator_code = indicators.indicator_code
    cross join lateral stats.inequality_measures(
        subgroup_sets.estimates,
        subgroup_sets.standard_errors,
        subgroup_sets.populations,
        subgroup_sets.is_ordered,
        -- ordered dimensions compare their ends; a reference group only steers non-ordered ones
        case when subgroup_sets.is_ordered then null else subgroup_sets.reference_flags end,
        coalesce(indicators.is_favourable, true),
        0.95
    ) as measures

),

final as (

    select

        ----------  key and grain
        md5(concat_ws('|',
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
        measured.not_applicable_reason

    from measured
    inner join inequality_measures
        on measured.measure = inequality_measures.measure

)

select * from final
