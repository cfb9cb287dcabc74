{#-
    DHIS2 service-use events by month x indicator x region x sex x age band: the one model of the
    chain that reads the raw DHIS2 values (int_service_use__dhis2_monthly and
    int_service_use__dhis2_age_sex_cells build on it). Only the current load of a feed's period
    counts (the latest loaded batch with values for it: a corrected resend wins, failed and
    superseded batches stay in raw for audit); deleted and empty values are dropped.

    One pass over the raw rows: they are summed per batch first (a hash aggregate over the narrow
    columns it needs), and the current batch of each feed and period is picked from those sums, so
    the raw rows are neither materialised nor read twice.

    Incremental like the models above it: each run rebuilds only the months whose load state
    changed (macros/incremental/service_use_periods.sql), reading only the batches that cover them.
-#}

{#- The planner cannot count the groups of batch_cells: it multiplies the distinct values of
    columns that go together (batch, period) and expects ~10% of the raw rows as groups, so it
    prices a hash table too big for hash_mem and sorts every raw row instead (spilling to disk past
    ~50M rows: 120 s instead of 27 s at 88M raw rows; 1.0 s instead of 0.35 s for a month). The
    groups are few (one per batch and cell), so hashing is right at every scale: this model's
    transaction allows hash tables 64 x work_mem (256 MB with the default 4 MB; `set local`: no
    other model is affected). -#}
{{ config(**service_use_incremental_config(pre_hooks=['set local hash_mem_multiplier = 64'])) }}

with

load_state as (

    select * from {{ ref('int_service_use__load_state') }}

),

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

geographies as (

    select * from {{ ref('ref_geography') }}

),

data_values as (

    select * from {{ ref('stg_dhis2__data_values') }}
    where
        period_type = 'month'
        and {{ service_use_raw_rows_to_build('raw.dhis2_data_values') }}

),

batch_cells as (

    -- every batch's sums, kept apart until the current batch is known; a batch whose values for
    -- a period were all deleted still supersedes the earlier ones (published_values = 0)
    select
        batch_id,
        feed_id,
        dhis2_period,
        period_start,
        indicator_code,
        geography_code,
        sex_code,
        age_band_code,
        sum(data_value) filter (where not is_deleted and data_value is not null) as event_count,
        count(*) filter (where not is_deleted and data_value is not null) as published_values
    from data_values
    group by 1, 2, 3, 4, 5, 6, 7, 8

),

current_batch_cells as (

    -- a corrected resend wins for every period it covers, even when it does not cover all the
    -- periods of the batch it corrects: the latest loaded batch per feed and period counts
    {{ current_batch_rows('batch_cells', ['dhis2_period']) }}

),

region_cells as (

    -- national figures are built from the regions downstream, so only region-level values enter;
    -- feeds reporting the same region and month add up
    select
        current_batch_cells.period_start,
        current_batch_cells.indicator_code,
        current_batch_cells.geography_code,
        current_batch_cells.sex_code,
        current_batch_cells.age_band_code,
        sum(current_batch_cells.event_count) as event_count
    from current_batch_cells
    inner join geographies
        on current_batch_cells.geography_code = geographies.geography_code
    where
        current_batch_cells.published_values > 0
        and geographies.geography_level = 'region'
    group by 1, 2, 3, 4, 5

),

final as (

    select
        region_cells.*,
        load_state.source_batch_id,
        load_state.source_batch_count
    from region_cells
    left join load_state
        on region_cells.period_start = load_state.period_start

)

select * from final
