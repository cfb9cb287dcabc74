-- The quality gate records what it audited (layer, table, fingerprint of the audited candidate,
-- checks it could not run and why) so publish can refuse a candidate that changed after its audit
-- and the data-health dashboard can show every outcome. Idempotent; applied as knowdo_loader.

alter table ops.quality_gate_runs add column if not exists layer text;
alter table ops.quality_gate_runs add column if not exists table_name text;
alter table ops.quality_gate_runs add column if not exists fingerprint text;
alter table ops.quality_gate_runs add column if not exists notes jsonb;
alter table ops.quality_gate_runs add column if not exists data_docs text;
create index if not exists quality_gate_runs_checked_at on ops.quality_gate_runs (checked_at desc);

-- Every alert sent (failed gate, stale feed, late submitter): what, about which feed or run, and
-- which notifiers delivered it, for the data-health dashboard and to avoid repeating an alert.
create table if not exists ops.alerts (
    alert_id      bigint generated always as identity primary key,
    raised_at     timestamptz not null default now(),
    kind          text not null check (kind in ('gate_failed', 'stale_feed', 'late_submitter', 'task_failed')),
    subject       text not null,
    about         text,
    body          text not null,
    delivered_by  text[] not null default '{}',
    failed_by     text[] not null default '{}'
);
create index if not exists alerts_kind_about on ops.alerts (kind, about, raised_at desc);

grant select, insert, update on ops.quality_gate_runs to knowdo_transformer;
grant select, insert on ops.alerts to knowdo_transformer;
