{#-
    DHIS2 service-use events by month x region (and country) x indicator x sex x age band, with the
    cell's population: the inputs of the age-standardised rates
    (restricted.restricted_service_use__unrounded).
    Built on int_service_use__dhis2_region_cells (the latest loaded batch per feed and period,
    deleted values dropped), like int_service_use__dhis2_monthly: zero events for cells a
    reporting region-month sent nothing for (DHIS2 omits zeros), the country = the sum of its
    reporting regions and their population. Incremental by month, like
    int_service_use__dhis2_monthly.
-#}

{{ config(**service_use_incremental_config()) }}

with

load_state as (

    select * from {{ ref('int_service_use__load_state') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

population_cells as (

    select * from {{ ref('int_population__cells') }}
    where geography_level = 'region' and breakdown = 'none'

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

region_cells as (

    -- the current load's events per region and cell (int_service_use__dhis2_region_cells); only
    -- values with both a sex and an age band can be standardised
    select
        period_start,
        indicator_code,
        geography_code,
        sex_code,
        age_band_code,
        event_count
    from {{ ref('int_service_use__dhis2_region_cells') }}
    where
        {{ is_service_use_period_to_build('period_start') }}
        and sex_code is not null
        and age_band_code is not null

),

reporting_region_months as (

    select distinct
        period_start,
        indicator_code,
        geography_code
    from region_cells

),

sexes as (

    select group_code from stratifier_groups
    where stratifier = 'sex'

),

age_bands as (

    select group_code from stratifier_groups
    where stratifier = 'age_band'

),

scaffold as (

    select
        reporting_region_months.*,
        sexes.group_code as sex_code,
        age_bands.group_code as age_band_code
    from reporting_region_months
    cross join sexes
    cross join age_bands

),

filled_cells as (

    -- zero rows for every scaffold cell plus the reported events, summed: a union, not a join,
    -- because the planner cannot size these CTEs and a nested-loop join took minutes
    select
        period_start,
        indicator_code,
        geography_code,
        sex_code,
        age_band_code,
        round(sum(event_count))::bigint as event_count
    from (
        select
            period_start,
            indicator_code,
            geography_code,
            sex_code,
            age_band_code,
            0 as event_count
        from scaffold
        union all
        select
            period_start,
            indicator_code,
            geography_code,
            sex_code,
            age_band_code,
            event_count
        from region_cells
    ) as cells
    group by 1, 2, 3, 4, 5

),

region_rows as (

    select
        filled_cells.period_start,
        filled_cells.indicator_code,
        filled_cells.geography_code,
        'region' as geography_level,
        filled_cells.sex_code,
        filled_cells.age_band_code,
        filled_cells.event_count,
        population_cells.population::bigint as population
    from filled_cells
    left join population_cells
        on filled_cells.geography_code = population_cells.geography_code
        and extract(year from filled_cells.period_start)::integer = population_cells.population_year
        and filled_cells.sex_code = population_cells.sex_code
        and filled_cells.age_band_code = population_cells.age_band_code

),

national_rows as (

    -- the country is the sum of its reporting regions and of their population
    {{ dhis2_national_rows('region_rows', ['sex_code', 'age_band_code'], 'event_count', 'population') }}

),

unioned as (

    select * from region_rows
    union all
    select * from national_rows

),

final as (

    select
        unioned.*,
        load_state.source_batch_id,
        load_state.source_batch_count
    from unioned
    left join load_state
        on unioned.period_start = load_state.period_start

)

select * from final
