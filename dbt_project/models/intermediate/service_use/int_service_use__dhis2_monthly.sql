{#-
    Built on int_service_use__dhis2_region_cells, the chain's one reader of the raw DHIS2 values.
    Incremental: each run rebuilds only the months whose load state changed (new month, corrected
    resend, new population load; macros/incremental/service_use_periods.sql); `dbt run
    --full-refresh` rebuilds every month.
-#}

{{ config(**service_use_incremental_config()) }}

with

load_state as (

    select * from {{ ref('int_service_use__load_state') }}

),

region_cells as (

    -- the current load's events per region and cell (int_service_use__dhis2_region_cells); the
    -- national figures are built from these regions below
    select
        period_start,
        indicator_code,
        geography_code,
        sex_code,
        age_band_code,
        event_count
    from {{ ref('int_service_use__dhis2_region_cells') }}
    where {{ is_service_use_period_to_build('period_start') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

population_by_group as (

    -- the population feed's current load (int_population__by_group), regions only: national
    -- denominators are the sum of the reporting regions below
    select
        geography_code,
        population_year as year,
        stratifier,
        group_code,
        population
    from {{ ref('int_population__by_group') }}
    where geography_level = 'region'

),

stratifier_groups as (

    select * from {{ ref('ref_stratifier_groups') }}

),

region_numerators as (

    select
        period_start,
        indicator_code,
        geography_code,
        'all' as stratifier,
        'all' as group_code,
        sum(event_count) as numerator
    from region_cells
    group by 1, 2, 3

    union all

    select
        period_start,
        indicator_code,
        geography_code,
        'sex' as stratifier,
        sex_code as group_code,
        sum(event_count) as numerator
    from region_cells
    where sex_code is not null
    group by 1, 2, 3, 5

    union all

    select
        period_start,
        indicator_code,
        geography_code,
        'age_band' as stratifier,
        age_band_code as group_code,
        sum(event_count) as numerator
    from region_cells
    where age_band_code is not null
    group by 1, 2, 3, 5

),

reported_strata as (

    -- a region-month-stratifier that sent at least one value
    select distinct
        period_start,
        indicator_code,
        geography_code,
        stratifier
    from region_numerators

),

region_scaffold as (

    -- DHIS2 omits zero values: every group of a stratifier a region reported gets a row, with 0
    -- events when none were sent
    select
        reported_strata.period_start,
        reported_strata.indicator_code,
        reported_strata.geography_code,
        stratifier_groups.stratifier,
        stratifier_groups.group_code
    from reported_strata
    inner join stratifier_groups
        on reported_strata.stratifier = stratifier_groups.stratifier

),

region_rows as (

    select
        region_scaffold.period_start,
        region_scaffold.indicator_code,
        region_scaffold.geography_code,
        'region' as geography_level,
        region_scaffold.stratifier,
        region_scaffold.group_code,
        round(coalesce(region_numerators.numerator, 0))::bigint as numerator,
        population_by_group.population::bigint as denominator,
        1 as reporting_geographies
    from region_scaffold
    left join region_numerators
        on region_scaffold.period_start = region_numerators.period_start
        and region_scaffold.indicator_code = region_numerators.indicator_code
        and region_scaffold.geography_code = region_numerators.geography_code
        and region_scaffold.stratifier = region_numerators.stratifier
        and region_scaffold.group_code = region_numerators.group_code
    left join population_by_group
        on region_scaffold.geography_code = population_by_group.geography_code
        and extract(year from region_scaffold.period_start)::integer = population_by_group.year
        and region_scaffold.stratifier = population_by_group.stratifier
        and region_scaffold.group_code = population_by_group.group_code

),

-- the country is the sum of its reporting regions; the denominator is their population, so a
-- region that did not report lowers neither numerator nor rate
national_rows as (

    {{ dhis2_national_rows(
        'region_rows', ['stratifier', 'group_code'], 'numerator', 'denominator',
        reporting_geographies=true
    ) }}

),

unioned as (

    select * from region_rows
    union all
    select * from national_rows

),

final as (

    select
        unioned.period_start,
        'month' as period_type,
        extract(year from unioned.period_start)::integer as period_year,
        unioned.indicator_code,
        unioned.geography_code,
        unioned.geography_level,
        unioned.stratifier,
        unioned.group_code,
        unioned.numerator,
        unioned.denominator,
        unioned.reporting_geographies,
        load_state.source_batch_id,
        load_state.source_batch_count
    from unioned
    left join load_state
        on unioned.period_start = load_state.period_start

)

select * from final
