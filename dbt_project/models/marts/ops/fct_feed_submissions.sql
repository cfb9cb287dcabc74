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

----------  how long one period of the batch lasts

labelled as (

    select
        batches.*,
        -- the period labels of every format end in the period itself, after an optional
        -- `<scope>:` prefix (DHIS2 202512, templates GHA:2025 or KD-NGO-0042:GHA:2025-12, NHS
        -- 2024-04-01/2025-03-31); all of a batch's periods share one shape
        regexp_replace(batches.batch_periods[cardinality(batches.batch_periods)], '^.*:', '')
            as last_period_label

    from batches

),

with_period_length as (

    select
        labelled.*,
        case
            -- every DHIS2 period type (src/knowdo/periods.py)
            when labelled.last_period_label ~ '^\d{8}$' then interval '1 day'
            when labelled.last_period_label ~ '^\d{4}(Wed|Thu|Sat|Sun)?W\d{1,2}$' then interval '7 days'
            when labelled.last_period_label ~ '^\d{4}BiW\d{1,2}$' then interval '14 days'
            when labelled.last_period_label ~ '^(\d{6}|\d{4}-\d{2})$' then interval '1 month'
            when labelled.last_period_label ~ '^\d{6}B$' then interval '2 months'
            when labelled.last_period_label ~ '^\d{4}Q[1-4]$' then interval '3 months'
            when labelled.last_period_label ~ '^\d{4}(April|Nov)?S[12]$' then interval '6 months'
            when labelled.last_period_label ~ '^\d{4}(April|July|Oct|Nov)?$' then interval '1 year'
        end as label_period_length

    from labelled

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
        case
            -- NHS-style labels carry their own last day
            when b.last_period_label ~ '^\d{4}-\d{2}-\d{2}/\d{4}-\d{2}-\d{2}$'
                then split_part(b.last_period_label, '/', 2)::date
            else (b.last_period_start + coalesce(
                b.label_period_length,
                -- a label of unknown shape: assume one period per schedule interval
                {{ schedule_interval('f.feed_schedule') }}
            ))::date - 1
        end as last_period_end

    from with_period_length as b
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
