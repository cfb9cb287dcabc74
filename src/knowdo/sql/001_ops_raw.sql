-- Landing manifest, load batches, rejected rows and the raw tables of the first feed family.
-- Applied by `knowdo db migrate` as the loader role (owner of raw and ops). Idempotent.

create table if not exists ops.schema_migrations (
    version     text primary key,
    applied_at  timestamptz not null default now()
);

-- One row per received file (content-addressed: the same bytes are one file whatever their name).
create table if not exists ops.landed_files (
    file_sha256   text primary key,
    feed_id       text not null,
    file_name     text not null,
    size_bytes    bigint not null,
    landing_path  text not null,
    received_at   timestamptz not null default now()
);

-- One load batch per (feed, file). status: loading -> loaded | failed; loaded -> superseded when a
-- corrected resend for the same feed and period set arrives.
create table if not exists ops.load_batches (
    batch_id        bigint generated always as identity primary key,
    feed_id         text not null,
    file_sha256     text not null references ops.landed_files (file_sha256),
    file_name       text not null,
    format          text not null,
    raw_table       text,
    status          text not null check (status in ('loading', 'loaded', 'failed', 'superseded')),
    error           text,
    rows_read       bigint not null default 0,
    rows_loaded     bigint not null default 0,
    rows_rejected   bigint not null default 0,
    periods         text[],
    superseded_by   bigint references ops.load_batches (batch_id),
    started_at      timestamptz not null default now(),
    finished_at     timestamptz,
    unique (feed_id, file_sha256)
);

create table if not exists ops.rejected_rows (
    batch_id      bigint not null references ops.load_batches (batch_id),
    file_sha256   text not null,
    row_number    bigint not null,
    field         text,
    value         text,
    reason        text not null,
    rejected_at   timestamptz not null default now()
);
create index if not exists rejected_rows_batch on ops.rejected_rows (batch_id);

-- Outcome of every quality gate (written by the publish step, read by the data-health dashboard).
create table if not exists ops.quality_gate_runs (
    run_id          text not null,
    checked_at      timestamptz not null default now(),
    suite_name      text not null,
    success         boolean not null,
    evaluated       integer not null,
    failed          integer not null,
    failures        jsonb,
    published       boolean not null default false,
    primary key (run_id, suite_name)
);
grant select, insert, update on ops.quality_gate_runs to knowdo_transformer;

-- DHIS2 dataValueSets (JSON and CSV): one row per data value, as sent, plus the KnowDo codes the
-- feed's registry mapping gives its ids.
create table if not exists raw.dhis2_data_values (
    batch_id                bigint not null,
    file_sha256             text not null,
    row_number              bigint not null,
    feed_id                 text not null,
    data_element            text not null,
    period                  text not null,
    org_unit                text not null,
    category_option_combo   text,
    attribute_option_combo  text,
    value                   numeric,
    deleted                 boolean not null default false,
    stored_by               text,
    last_updated            timestamptz,
    comment                 text,
    indicator_code          text not null,
    geography_code          text not null,
    sex_code                text,
    age_band_code           text,
    period_start            date not null,
    period_type             text not null check (period_type in ('month', 'quarter', 'year'))
);
create index if not exists dhis2_data_values_batch on raw.dhis2_data_values (batch_id);
