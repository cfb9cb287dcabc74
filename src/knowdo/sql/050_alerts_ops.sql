-- Issue 12: the watchdog (knowdo.watchdog) records a database outage and a stalled Airflow run.
alter table ops.alerts drop constraint if exists alerts_kind_check;
alter table ops.alerts add constraint alerts_kind_check
    check (kind in ('gate_failed', 'stale_feed', 'late_submitter', 'task_failed', 'db_outage', 'stalled_run'));
