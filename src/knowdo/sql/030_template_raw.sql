-- Raw tables of KnowDo's own CSV templates, one per contract (feeds/contracts/<template>.v1.yml).
-- Columns: the loader's batch columns, the contract's columns in contract order (code/text -> text,
-- integer -> bigint, decimal -> numeric, date/month -> date with months as their first day,
-- year -> integer; required and never suppressed -> not null), then the contract version the file
-- was read with and, where the contract lets counts be suppressed, which columns were. Written by
-- hand; tests/unit/test_contracts.py fails when a contract and this file drift apart.
-- A new major contract version gets its own table (raw.template_<name>_v2) in a new migration.

create table if not exists raw.template_ministry_budget (
    batch_id            bigint not null,
    file_sha256         text not null,
    row_number          bigint not null,
    feed_id             text not null,
    country_code        text not null,
    fiscal_year         integer not null,
    budget_line         text not null,
    area_of_need        text not null,
    amount              numeric not null,
    currency            text not null,
    amount_type         text not null,
    source_document     text,
    contract_version    text not null
);
create index if not exists template_ministry_budget_batch on raw.template_ministry_budget (batch_id);
comment on table raw.template_ministry_budget is
    'KnowDo ministry-budget CSV template (feeds/contracts/ministry-budget.v1.yml), as sent.';

create table if not exists raw.template_ngo_service_use (
    batch_id            bigint not null,
    file_sha256         text not null,
    row_number          bigint not null,
    feed_id             text not null,
    organisation_id     text not null,
    country_code        text not null,
    geography_code      text not null,
    period              date not null,
    intervention_code   text not null,
    stratifier          text not null,
    group_code          text not null,
    people_reached      bigint,
    sessions_delivered  bigint,
    contract_version    text not null,
    suppressed_columns  text[] not null default '{}'
);
create index if not exists template_ngo_service_use_batch on raw.template_ngo_service_use (batch_id);
comment on table raw.template_ngo_service_use is
    'KnowDo ngo-service-use CSV template (feeds/contracts/ngo-service-use.v1.yml), as sent.';

create table if not exists raw.template_ngo_outcomes (
    batch_id                    bigint not null,
    file_sha256                 text not null,
    row_number                  bigint not null,
    feed_id                     text not null,
    organisation_id             text not null,
    country_code                text not null,
    period                      date not null,
    intervention_code           text not null,
    instrument                  text not null,
    stratifier                  text not null,
    group_code                  text not null,
    people_assessed             bigint,
    mean_score_before           numeric,
    mean_score_after            numeric,
    people_reliably_improved    bigint,
    people_recovered            bigint,
    contract_version            text not null,
    suppressed_columns          text[] not null default '{}'
);
create index if not exists template_ngo_outcomes_batch on raw.template_ngo_outcomes (batch_id);
comment on table raw.template_ngo_outcomes is
    'KnowDo ngo-outcomes CSV template (feeds/contracts/ngo-outcomes.v1.yml), as sent.';

create table if not exists raw.template_population (
    batch_id            bigint not null,
    file_sha256         text not null,
    row_number          bigint not null,
    feed_id             text not null,
    geography_code      text not null,
    year                integer not null,
    sex                 text not null,
    age_band            text not null,
    ethnicity           text,
    imd_decile          text,
    population          bigint not null,
    source              text not null,
    contract_version    text not null
);
create index if not exists template_population_batch on raw.template_population (batch_id);
comment on table raw.template_population is
    'KnowDo population CSV template (feeds/contracts/population.v1.yml), as sent.';

create table if not exists raw.template_prevalence (
    batch_id            bigint not null,
    file_sha256         text not null,
    row_number          bigint not null,
    feed_id             text not null,
    geography_code      text not null,
    year                integer not null,
    condition           text not null,
    sex                 text not null,
    age_band            text not null,
    prevalence_percent  numeric not null,
    lower_percent       numeric,
    upper_percent       numeric,
    source              text not null,
    contract_version    text not null
);
create index if not exists template_prevalence_batch on raw.template_prevalence (batch_id);
comment on table raw.template_prevalence is
    'KnowDo prevalence CSV template (feeds/contracts/prevalence.v1.yml), as sent.';
