{#-
    One row per file received (load batch), with when it was submitted, the last day of data it
    covers, when it was due and whether it arrived on time. The Data health dashboard lists late
    and failed files from here; mart_feed_health counts them per feed.
-#}

with

batches as (

    select * from {{ ref('stg_ops__load_batches') }}

),

landed_files as (

    select * from {{ ref('stg_ops__landed_files') }}

),

feeds as (

    select * from {{ ref('stg_ops__feeds') }}

),

joined as (

    select

        ----------  ids
        b.batch_id,
        b.feed_id,

        ----------  feed and publisher (country_code: row-level security key)
        f.publisher_name,
        f.publisher_kind,
        f.country_code,
        f.due_within_days,

        ----------  file
        b.file_name,
        b.file_format,
        b.batch_status,
        b.error_message,
        b.superseded_by_batch_id,
        b.rows_read,
        b.rows_loaded,
        b.rows_rejected,
        b.rows_out_of_scope,

        ----------  when
        l.received_at,
        b.submitted_at,
        coalesce(b.submitted_at, l.received_at) as submission_at,
        case when b.submitted_at is not null then 'publisher' else 'received' end
            as submission_time_source,

        ----------  what it covers
        b.first_period_start,
        b.last_period_start,
        b.last_period_end

    from batches as b
    left join landed_files as l on b.file_sha256 = l.file_sha256
    left join feeds as f on b.feed_id = f.feed_id

),

----------  the on-time rule

timed as (

    select
        joined.*,
        joined.last_period_end + joined.due_within_days as due_on,
        (joined.submission_at at time zone 'UTC')::date as submission_date

    from joined

),

final as (

    select
        batch_id,
        feed_id,
        publisher_name,
        publisher_kind,
        country_code,
        file_name,
        file_format,
        batch_status,
        error_message,
        superseded_by_batch_id,
        rows_read,
        rows_loaded,
        rows_rejected,
        rows_out_of_scope,
        received_at,
        submitted_at,
        submission_at,
        submission_time_source,
        first_period_start,
        last_period_start,
        last_period_end,
        due_within_days,
        due_on,
        case
            when due_on is null or submission_date is null then 'unknown'
            when submission_date <= due_on then 'on_time'
            else 'late'
        end as timeliness,
        case
            when due_on is null or submission_date is null then null
            else greatest(submission_date - due_on, 0)
        end as days_late

    from timed

)

select * from final
