{#-
    Feed health, one row per feed of the registry (also feeds that never sent anything): files
    received and their fate, rows accepted and rejected, on-time submissions, freshness of the data
    and the latest quality-gate outcome for the raw table the feed loads into.

    Freshness is measured against `as_of_date`: the dbt var `as_of_date` (the run's logical date,
    so a rerun for the same day gives the same table), else current_date — never now().
-#}

{%- set as_of_date = var('as_of_date', none) -%}

with

feeds as (

    select * from {{ ref('stg_ops__feeds') }}

),

submissions as (

    select * from {{ ref('fct_feed_submissions') }}

),

latest_gate as (

    -- the latest gate over the feed's raw table (one view, also read after the gate by
    -- knowdo.feed_health.show_gate_in_feed_health)
    select * from {{ ref('stg_ops__feed_latest_raw_gate') }}

),

----------  per feed counts

per_feed as (

    select
        feed_id,
        count(*) as files_received,
        count(*) filter (where batch_status = 'loaded') as files_loaded,
        count(*) filter (where batch_status = 'failed') as files_failed,
        count(*) filter (where batch_status = 'superseded') as files_superseded,
        -- rows that count today: those of the batches still loaded
        coalesce(sum(rows_loaded) filter (where batch_status = 'loaded'), 0)::bigint as rows_loaded,
        coalesce(sum(rows_rejected) filter (where batch_status = 'loaded'), 0)::bigint as rows_rejected,
        coalesce(sum(rows_out_of_scope) filter (where batch_status = 'loaded'), 0)::bigint
            as rows_out_of_scope,
        count(*) filter (where timeliness = 'on_time') as submitted_on_time,
        count(*) filter (where timeliness = 'late') as submitted_late,
        count(*) filter (where timeliness = 'unknown') as submitted_timeliness_unknown,
        max(received_at) as last_received_at,
        max(last_period_start) filter (where batch_status = 'loaded') as last_period_start,
        max(last_period_end) filter (where batch_status = 'loaded') as last_period_end,
        max((received_at at time zone 'UTC')::date) filter (where batch_status = 'loaded')
            as last_loaded_received_on

    from submissions
    group by feed_id

),

joined as (

    select
        f.feed_id,
        f.publisher_name,
        f.publisher_kind,
        f.country_code,
        f.feed_domain,
        f.feed_format,
        f.feed_schedule,
        f.due_within_days,
        f.is_in_registry,
        coalesce(p.files_received, 0) as files_received,
        coalesce(p.files_loaded, 0) as files_loaded,
        coalesce(p.files_failed, 0) as files_failed,
        coalesce(p.files_superseded, 0) as files_superseded,
        coalesce(p.rows_loaded, 0) as rows_loaded,
        coalesce(p.rows_rejected, 0) as rows_rejected,
        coalesce(p.rows_out_of_scope, 0) as rows_out_of_scope,
        coalesce(p.submitted_on_time, 0) as submitted_on_time,
        coalesce(p.submitted_late, 0) as submitted_late,
        coalesce(p.submitted_timeliness_unknown, 0) as submitted_timeliness_unknown,
        p.last_received_at,
        p.last_period_start,
        p.last_period_end,
        p.last_loaded_received_on,
        -- one interval of the schedule (knowdo.schedules, via ops.feeds); NULL: no schedule
        f.schedule_interval,
        g.last_gate_run_id,
        g.last_gate_checked_at,
        g.last_gate_success,
        g.last_gate_published,
        {% if as_of_date %}'{{ as_of_date }}'::date{% else %}current_date{% endif %} as as_of_date

    from feeds as f
    left join per_feed as p on f.feed_id = p.feed_id
    left join latest_gate as g on f.feed_id = g.feed_id

),

----------  freshness

freshness as (

    select
        joined.*,
        -- data with periods is as fresh as the last day it covers; files without periods (IATI,
        -- 360Giving) are as fresh as the last one loaded
        case
            when joined.last_period_end is not null then 'period'
            when joined.last_loaded_received_on is not null then 'received'
        end as freshness_basis,
        coalesce(joined.last_period_end, joined.last_loaded_received_on) as freshness_reference_date

    from joined

),

final as (

    select

        ----------  feed and publisher (country_code: row-level security key)
        feed_id,
        publisher_name,
        publisher_kind,
        country_code,
        feed_domain as domain,
        feed_format as format,
        feed_schedule as schedule,
        due_within_days,
        is_in_registry,

        ----------  files
        files_received,
        files_loaded,
        files_failed,
        files_superseded,

        ----------  rows (of the batches loaded now)
        rows_loaded,
        rows_rejected,
        -- outside the feed's mapping: not errors, so not in the rejection rate
        rows_out_of_scope,
        case
            when rows_loaded + rows_rejected > 0
                then round(100.0 * rows_rejected / (rows_loaded + rows_rejected), 4)::numeric(9, 4)
        end as rejection_rate,

        ----------  timeliness
        submitted_on_time,
        submitted_late,
        submitted_timeliness_unknown,

        ----------  freshness
        last_received_at,
        last_period_start,
        last_period_end,
        as_of_date,
        freshness_basis,
        as_of_date - freshness_reference_date as freshness_days,
        (freshness_reference_date + schedule_interval)::date + due_within_days as next_due_on,
        case
            -- no schedule: no file is ever due (knowdo.feed_health alerts nothing either)
            when schedule_interval is null then 'unscheduled'
            when freshness_reference_date is null then 'never'
            when as_of_date > (freshness_reference_date + schedule_interval)::date + due_within_days
                then 'stale'
            else 'fresh'
        end as freshness_status,

        ----------  quality gate (latest run over the feed's raw table)
        case
            when last_gate_run_id is null then 'not_checked'
            when last_gate_success then 'passed'
            else 'failed'
        end as last_gate_status,
        last_gate_run_id,
        last_gate_checked_at,
        last_gate_published

    from freshness

)

select * from final
