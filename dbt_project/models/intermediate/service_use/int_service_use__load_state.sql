{#-
    The load state of every month that has service-use data: which load batches (ops.load_batches)
    its figures are built from. The incremental service-use models store this key on their rows and
    rebuild exactly the months whose key changed since they were built (macros/incremental): a new
    month, a corrected resend of an old one (the superseding batch is newer, the superseded one
    drops out), a late commit of a batch loaded concurrently (the count changes), or a new load of
    the population of the month's year (new denominators).

    A table, built once at the start of a run, so every model of the run compares against the same
    state; a model reads its rows later, so what it builds is never older than the key it stores
    (a batch committed in between only causes one more rebuild of its months on the next run).
-#}

{{ config(materialized='table') }}

with

load_batches as (

    select * from {{ ref('stg_ops__load_batches') }}
    where batch_status = 'loaded'

),

service_use_batch_months as (

    -- every month between a batch's first and last period: a resend of non-adjacent months
    -- marks the months between as changed too (a rebuild too many, never one too few)
    select
        load_batches.batch_id,
        month::date as period_start
    from load_batches
    inner join lateral generate_series(
        date_trunc('month', load_batches.first_period_start),
        load_batches.last_period_start,
        interval '1 month'
    ) as month on true
    where load_batches.raw_table in ('raw.dhis2_data_values', 'raw.mhsds_measures')

),

population_batch_years as (

    -- denominators are joined by calendar year: a population load counts for every month of the
    -- years it covers
    select
        batch_id,
        extract(year from first_period_start)::integer as first_year,
        extract(year from last_period_start)::integer as last_year
    from load_batches
    where raw_table = 'raw.template_population'

),

months as (

    select distinct period_start from service_use_batch_months

),

month_batches as (

    select
        period_start,
        batch_id
    from service_use_batch_months

    union all

    select
        months.period_start,
        population_batch_years.batch_id
    from months
    inner join population_batch_years
        on extract(year from months.period_start)::integer
        between population_batch_years.first_year and population_batch_years.last_year

),

final as (

    select
        period_start,
        max(batch_id)::bigint as source_batch_id,
        count(*)::integer as source_batch_count
    from month_batches
    group by period_start

)

select * from final
