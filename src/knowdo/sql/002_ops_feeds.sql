-- The feed registry as a table (synced from feeds/registry.yml on every ingest run), and what each
-- batch says about itself: when the publisher submitted it and which periods it covers.

create table if not exists ops.feeds (
    feed_id           text primary key,
    publisher_name    text not null,
    publisher_kind    text not null,
    country_code      text,
    domain            text not null,
    format            text not null,
    schedule          text,
    due_within_days   integer not null,
    source            jsonb not null,
    in_registry       boolean not null default true,
    synced_at         timestamptz not null default now()
);
grant select on ops.feeds to knowdo_transformer;

alter table ops.load_batches add column if not exists submitted_at timestamptz;
alter table ops.load_batches add column if not exists period_start date;
alter table ops.load_batches add column if not exists period_end date;
comment on column ops.load_batches.submitted_at is
    'when the publisher says it completed the submission (e.g. DHIS2 completeDate); NULL when the format does not say';
