-- Raw tables of the funding formats: IATI activity XML and 360Giving grants (JSON and CSV).
-- Applied by `knowdo db migrate` as the loader role (owner of raw). Idempotent.

-- IATI activity XML 2.01-2.03: one row per iati-activity, as published. Nested lists are jsonb:
--   participating_orgs   [{ref, name, role, type}]
--   sectors              [{vocabulary, code, percentage}]          (vocabulary '1' when not given)
--   recipient_countries  [{code, percentage}]
--   recipient_regions    [{code, vocabulary, percentage}]
--   transactions         [{type, date, value, currency, value_date, provider_org_ref,
--                          provider_org_name, receiver_org_ref, receiver_org_name, description,
--                          sectors, recipient_countries, recipient_regions}]
--   warnings             [{field, reason}]: e.g. percentages that do not add up to 100
-- Empty attributes (percentage="", value="") are null; a transaction without a currency uses the
-- activity's default_currency downstream.
create table if not exists raw.iati_activities (
    batch_id                bigint not null,
    file_sha256             text not null,
    row_number              bigint not null,
    feed_id                 text not null,
    iati_identifier         text not null,
    iati_version            text not null,
    default_currency        text,
    activity_status         text,
    title                   text,
    reporting_org_ref       text,
    reporting_org_name      text,
    reporting_org_type      text,
    participating_orgs      jsonb not null,
    sectors                 jsonb not null,
    recipient_countries     jsonb not null,
    recipient_regions       jsonb not null,
    transactions            jsonb not null,
    is_mental_health        boolean not null,
    activity_date_start     date,
    last_updated_datetime   timestamptz,
    warnings                jsonb not null default '[]'
);
create index if not exists iati_activities_batch on raw.iati_activities (batch_id);

-- 360Giving grants (JSON package or spreadsheet CSV): one row per grant. The columns take the first
-- recipient, funder, programme and planned dates; `extra` keeps every other field as sent (for CSV,
-- keyed by column title), so nothing of the file is lost.
create table if not exists raw.threesixtygiving_grants (
    batch_id                    bigint not null,
    file_sha256                 text not null,
    row_number                  bigint not null,
    feed_id                     text not null,
    grant_id                    text not null,
    title                       text,
    description                 text,
    currency                    text,
    amount_awarded              numeric not null check (amount_awarded >= 0),
    award_date                  date not null,
    recipient_org_id            text,
    recipient_org_name          text,
    funding_org_id              text,
    funding_org_name            text,
    grant_programme_title       text,
    beneficiary_country_codes   text[],
    planned_start_date          date,
    planned_end_date            date,
    classifications             jsonb,
    extra                       jsonb not null default '{}'
);
create index if not exists threesixtygiving_grants_batch on raw.threesixtygiving_grants (batch_id);
