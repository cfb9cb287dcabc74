{#-
    Rejected rows per feed and reason, for the Data health dashboard's "top rejection reasons".
    Reasons are plain-language sentences that often end in specifics (`duplicate key: ... (row
    12)`); the reason group is the text before the first ':' (the whole text when it has none), so
    one kind of fault is one row however many rows it hit.
-#}

with

rejected_rows as (

    select * from {{ ref('stg_ops__rejected_rows') }}

),

submissions as (

    select * from {{ ref('fct_feed_submissions') }}

),

feeds as (

    select * from {{ ref('stg_ops__feeds') }}

),

grouped_reasons as (

    select
        s.feed_id,
        btrim(split_part(r.rejection_reason, ':', 1)) as rejection_reason,
        r.field_name,
        r.batch_id,
        s.batch_status,
        r.source_row_number,
        r.rejected_at

    from rejected_rows as r
    inner join submissions as s on r.batch_id = s.batch_id

),

aggregated as (

    select
        feed_id,
        rejection_reason,
        count(*) as rejections,
        count(distinct row(batch_id, source_row_number)) as rows_rejected,
        count(distinct row(batch_id, source_row_number)) filter (where batch_status = 'loaded')
            as rows_rejected_in_loaded_files,
        count(distinct batch_id) as files_affected,
        string_agg(distinct field_name, ', ' order by field_name) as fields,
        min(rejected_at) as first_rejected_at,
        max(rejected_at) as last_rejected_at

    from grouped_reasons
    group by feed_id, rejection_reason

),

final as (

    select
        md5(a.feed_id || '|' || a.rejection_reason) as rejection_reason_key,
        a.feed_id,
        f.publisher_name,
        f.country_code,
        a.rejection_reason,
        a.fields,
        a.rejections,
        a.rows_rejected,
        a.rows_rejected_in_loaded_files,
        a.files_affected,
        -- 1 = the feed's most frequent reason (ties share a rank)
        rank() over (partition by a.feed_id order by a.rows_rejected desc)::integer
            as reason_rank,
        a.first_rejected_at,
        a.last_rejected_at

    from aggregated as a
    left join feeds as f on a.feed_id = f.feed_id

)

select * from final
