with

source as (

    select * from {{ source('ops', 'load_batches') }}

),

renamed as (

    select

        ----------  ids
        batch_id::bigint as batch_id,
        feed_id,
        file_sha256,
        superseded_by as superseded_by_batch_id,

        ----------  file
        file_name,
        format as file_format,
        raw_table,
        periods as batch_periods,

        ----------  outcome
        status as batch_status,
        error as error_message,
        rows_read,
        rows_loaded,
        rows_rejected,
        rows_out_of_scope,

        ----------  what the batch says about itself
        -- period_end is the first day of the LAST period the file covers (the loader records the
        -- latest period start), not the last day covered
        period_start as first_period_start,
        period_end as last_period_start,
        -- the last day of data the batch covers, by knowdo.schedules (the loader and the registry
        -- sync write it): the one deadline rule, read here rather than written again in SQL
        last_day_covered as last_period_end,
        submitted_at,

        ----------  timestamps
        started_at,
        finished_at

    from source

)

select * from renamed
