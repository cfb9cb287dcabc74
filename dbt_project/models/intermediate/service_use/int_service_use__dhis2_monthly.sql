{#-
    Incremental: each run rebuilds only the months whose load state changed (new month, corrected
    resend, new population load; macros/incremental/service_use_periods.sql), reading only the
    load batches that cover them; `dbt run --full-refresh` rebuilds every month.
-#}

{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period_start',
    on_schema_change='append_new_columns',
    indexes=[{'columns': ['period_start', 'source_batch_id', 'source_batch_count']}],
    pre_hook="{{ delete_stale_service_use_periods() }}",
) }}

with

load_state as (

    select * from {{ ref('int_service_use__load_state') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

data_values as (

    -- monthly periods only, here rather than below: the planner then sizes this CTE (a filter
    -- on a CTE scan is guessed at 0.5%, which chose a nested loop over it)
    select * from {{ ref('stg_dhis2__data_values') }}
    where
        period_type = 'month'
        and {{ service_use_raw_rows_to_build('raw.dhis2_data_values') }}

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

current_batches as (

    -- a corrected resend wins for every period it covers, even when it does not cover all the
    -- periods of the batch it corrects: the latest loaded batch per feed and period counts
    select
        data_values.feed_id,
        data_values.dhis2_period,
        max(data_values.batch_id) as batch_id
    from data_values
    inner join load_batches
        on data_values.batch_id = load_batches.batch_id
    where load_batches.batch_status = 'loaded'
    group by data_values.feed_id, data_values.dhis2_period

),

published_values as (

    -- failed and superseded batches stay in raw for audit; only the current load of a period counts
    select data_values.*
    from data_values
    inner join current_batches
        on
            data_values.batch_id = current_batches.batch_id
            and data_values.feed_id = current_batches.feed_id
            and data_values.dhis2_period = current_batches.dhis2_period
    where
        not data_values.is_deleted
        and data_values.data_value is not null

),

region_cells as (

    -- national figures are built from the regions below, so only region-level values enter
    select
        published_values.period_start,
        published_values.indicator_code,
        published_values.geography_code,
        published_values.sex_code,
        published_values.age_band_code,
        sum(published_values.data_value) as event_count
    from published_values
    inner join geographies
        on published_values.geography_code = geographies.geography_code
    where geographies.geography_level = 'region'
    group by 1, 2, 3, 4, 5

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

national_rows as (

    -- the country is the sum of its reporting regions; the denominator is their population, so a
    -- region that did not report lowers neither numerator nor rate
    select
        region_rows.period_start,
        region_rows.indicator_code,
        geographies.parent_code as geography_code,
        'national' as geography_level,
        region_rows.stratifier,
        region_rows.group_code,
        sum(region_rows.numerator)::bigint as numerator,
        case
            when count(region_rows.denominator) = count(*) then sum(region_rows.denominator)
        end::bigint as denominator,
        count(*)::integer as reporting_geographies
    from region_rows
    inner join geographies
        on region_rows.geography_code = geographies.geography_code
    group by 1, 2, 3, 5, 6

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
        indicator_code,
        geography_code,
        geography_level,
        stratifier,
        group_code,
        numerator,
        denominator,
        reporting_geographies,
        load_state.source_batch_id,
        load_state.source_batch_count
    from unioned
    left join load_state
        on unioned.period_start = load_state.period_start

)

select * from final
