-- Issue 14 item 6: "the latest quality gate over a feed's raw table" written once. The dbt model
-- mart_feed_health reads this view when it is built (before its run's gate), and
-- knowdo.feed_health.show_gate_in_feed_health reads it again after the gate, to bring the gate's
-- outcome into the published mart in the same run.
create or replace view ops.feed_latest_raw_gate as
with feed_tables as (
    -- the raw table a feed loads into, from its latest batch
    select distinct on (feed_id)
        feed_id,
        split_part(raw_table, '.', 2) as raw_table_name
    from ops.load_batches
    where raw_table is not null
    order by feed_id, batch_id desc
),
latest_gate as (
    -- the gate records tables schema-qualified (raw.dhis2_data_values): match on the name
    select distinct on (regexp_replace(table_name, '^.*[.]', ''))
        regexp_replace(table_name, '^.*[.]', '') as checked_table,
        run_id,
        checked_at,
        success,
        published
    from ops.quality_gate_runs
    where layer = 'raw'
    order by regexp_replace(table_name, '^.*[.]', ''), checked_at desc, run_id desc
)
select t.feed_id, t.raw_table_name, g.run_id, g.checked_at, g.success, g.published
from feed_tables t
join latest_gate g on g.checked_table = t.raw_table_name;

comment on view ops.feed_latest_raw_gate is
    'per feed: the latest quality-gate run over the raw table the feed loads into (none: never checked)';
grant select on ops.feed_latest_raw_gate to knowdo_transformer;
