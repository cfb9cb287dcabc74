-- Issue 15: the implementation registry template (feeds/contracts/implementation-registry.v1.yml),
-- as 030_template_raw.sql does for the other templates: the loader's batch columns, the contract's
-- columns in contract order, the contract version. No suppressible column. Written by hand;
-- tests/unit/test_contracts.py fails when the contract and this file drift apart.

create table if not exists raw.template_implementation_registry (
    batch_id                bigint not null,
    file_sha256             text not null,
    row_number              bigint not null,
    feed_id                 text not null,
    project_code            text not null,
    project_name            text not null,
    intervention_code       text not null,
    country_code            text not null,
    site_level              text not null,
    site_code               text not null,
    pilot_date              date,
    go_live_date            date not null,
    scale_up_date           date,
    de_implementation_date  date,
    comparison_sites        text not null,
    outcome_indicator       text not null,
    stratifier              text not null,
    contract_version        text not null
);
create index if not exists template_implementation_registry_batch
    on raw.template_implementation_registry (batch_id);
comment on table raw.template_implementation_registry is
    'KnowDo implementation-registry CSV template (feeds/contracts/implementation-registry.v1.yml), as sent.';
