-- Issue 14: the feed-deadline rule in one place (knowdo.schedules). What it computes is stored, and
-- the dbt models only read it: each feed's schedule interval (NULL: no schedule, nothing is due)
-- written by the registry sync, and the last day of data each batch covers written by the loader
-- (and recomputed by the registry sync, since a label of unknown shape counts one schedule interval).

alter table ops.feeds add column if not exists schedule_interval interval;
comment on column ops.feeds.schedule_interval is
    'one interval of the feed''s schedule (knowdo.schedules.schedule_interval); NULL without a schedule';

alter table ops.load_batches add column if not exists last_day_covered date;
comment on column ops.load_batches.last_day_covered is
    'last day of the latest period the batch covers (knowdo.schedules.last_day_covered); NULL when it covers no period';
