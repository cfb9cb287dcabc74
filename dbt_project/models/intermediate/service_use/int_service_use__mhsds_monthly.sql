{#-
    MHSDS monthly statistics (NHS England) in the service-use chain: the measures relevant to the
    Patient and Carer Race Equality Framework (PCREF), per month x place x indicator x ethnic group,
    with the adult population of the group as denominator. Places are England's ICBs as published
    and the NIHR ARCs they belong to (ref_icb_arcs): an ARC row is the sum of its ICBs.
    The columns up to reporting_geographies are those of int_service_use__dhis2_monthly, so the
    model is one union branch of restricted.restricted_service_use__unrounded.
-#}

with

measures as (

    select * from {{ ref('stg_nhs__mhsds_measures') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

icb_arcs as (

    select * from {{ ref('ref_icb_arcs') }}

),

england_geographies as (

    select * from {{ ref('ref_england_geography') }}

),

population as (

    -- the population feed's ICB cells (adults; int_population__by_group, current load)
    select * from {{ ref('int_population__by_group') }}
    where geography_level = 'icb'

),

current_batch_measures as (

    -- a corrected resend wins for the month it covers: the latest loaded batch per feed and month
    {{ current_batch_rows('measures', ['reporting_period_start']) }}

),

current_measures as (

    select
        current_batch_measures.*,
        -- `ICB - GP Practice or Residence; Ethnicity (Higher Level)` -> place part and breakdown part
        trim(split_part(current_batch_measures.breakdown, ';', 1)) as place_breakdown,
        nullif(trim(split_part(current_batch_measures.breakdown, ';', 2)), '') as group_breakdown
    from current_batch_measures

),

mapped as (

    -- MHSDS measure ids -> KnowDo indicators (ref_indicators); NHS ethnic labels -> the five ONS
    -- 2021 high-level groups of ref_stratifier_groups (unknown or not stated -> not_stated)
    select
        reporting_period_start as period_start,
        case measure_id
            when 'MHS01' then 'mhsds_people_in_contact'
            when 'MHS08' then 'mha_people_subject_to_act'
            when 'MHS09' then 'mha_people_detained'
            when 'MHS10' then 'mha_people_on_cto'
        end as indicator_code,
        primary_level as geography_code,
        case when group_breakdown is null then 'all' else 'ethnicity' end as stratifier,
        case
            when group_breakdown is null then 'all'
            when secondary_level ilike 'white%' then 'white'
            when secondary_level ilike 'asian%' then 'asian'
            when secondary_level ilike 'black%' then 'black'
            when secondary_level ilike 'mixed%' then 'mixed'
            when secondary_level ilike 'other%' then 'other'
            else 'not_stated'
        end as group_code,
        measure_value,
        is_suppressed
    from current_measures
    where
        -- ICB of residence (the CCG breakdown before July 2022 has no ICB code)
        place_breakdown in ('ICB - GP Practice or Residence', 'ICB of Residence')
        and (group_breakdown is null or group_breakdown ilike 'Ethnicity (Higher Level)')

),

icb_rows as (

    select
        mapped.period_start,
        mapped.indicator_code,
        mapped.geography_code,
        'icb' as geography_level,
        mapped.stratifier,
        mapped.group_code,
        -- a value NHS England suppressed (`*`, under 5) stays unknown: NULL, never zero
        sum(mapped.measure_value) as numerator,
        bool_or(mapped.is_suppressed) as is_publisher_suppressed,
        icb_arcs.arc_code
    from mapped
    inner join england_geographies
        on mapped.geography_code = england_geographies.geography_code
        and england_geographies.geography_level = 'icb'
    left join icb_arcs
        on mapped.geography_code = icb_arcs.icb_code
    where mapped.indicator_code is not null
    group by 1, 2, 3, 5, 6, 9

),

icb_rows_with_population as (

    select
        icb_rows.*,
        population.population as denominator
    from icb_rows
    left join population
        on icb_rows.geography_code = population.geography_code
        and extract(year from icb_rows.period_start)::integer = population.population_year
        and icb_rows.stratifier = population.stratifier
        and icb_rows.group_code = population.group_code

),

arc_rows as (

    -- the ARC is the sum of its ICBs; unknown when any ICB's value was suppressed or any ICB's
    -- population is missing
    select
        period_start,
        indicator_code,
        arc_code as geography_code,
        'arc' as geography_level,
        stratifier,
        group_code,
        case when not bool_or(is_publisher_suppressed) then sum(numerator) end as numerator,
        bool_or(is_publisher_suppressed) as is_publisher_suppressed,
        arc_code,
        case when count(denominator) = count(*) then sum(denominator) end as denominator,
        count(*)::integer as reporting_geographies
    from icb_rows_with_population
    where arc_code is not null
    group by 1, 2, 3, 5, 6, 9

),

unioned as (

    select
        period_start,
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        numerator,
        is_publisher_suppressed,
        arc_code,
        denominator,
        1 as reporting_geographies
    from icb_rows_with_population

    union all

    select
        period_start,
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        numerator,
        is_publisher_suppressed,
        arc_code,
        denominator,
        reporting_geographies
    from arc_rows

),

final as (

    select
        ----------  the columns of int_service_use__dhis2_monthly
        period_start,
        'month' as period_type,
        extract(year from period_start)::integer as period_year,
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        round(numerator)::bigint as numerator,
        denominator::bigint as denominator,
        reporting_geographies,

        ----------  MHSDS only
        arc_code,
        is_publisher_suppressed
    from unioned

)

select * from final
