-- Raw tables of the service-use, outcome and reference feeds: WHO GHO CSV exports, NHS Talking
-- Therapies (monthly and annual) and MHSDS monthly CSVs. DHIS2 CSV shares raw.dhis2_data_values.
-- Applied by `knowdo db migrate` as the loader role (owner of raw). Idempotent.

-- WHO Global Health Observatory: one row per published fact (indicator x location x year x
-- dimensions), from any of the three export layouts (export_layout: api | odata | portal).
-- A fact with no number is kept: value_text holds a categorical answer ("Yes"), or is_suppressed
-- marks it missing ("No data", "*", empty) - never zero.
create table if not exists raw.who_gho_values (
    batch_id              bigint not null,
    file_sha256           text not null,
    row_number            bigint not null,
    feed_id               text not null,
    export_layout         text not null check (export_layout in ('api', 'odata', 'portal')),
    indicator_code        text not null,
    indicator_name        text,
    spatial_type          text,               -- COUNTRY, REGION, WORLDBANKINCOMEGROUP, GLOBAL, ...
    spatial_code          text not null,
    country_code          text,               -- ISO 3166-1 alpha-3, only when spatial_type is a country
    parent_location_code  text,               -- WHO region (AFR, EUR, ...) where the export gives it
    period                integer not null,   -- year
    period_start          date,
    period_end            date,
    dim1_type             text,
    dim1_code             text,
    dim2_type             text,
    dim2_code             text,
    dim3_type             text,
    dim3_code             text,
    data_source_code      text,
    value_numeric         numeric,
    value_low             numeric,
    value_high            numeric,
    value_text            text,               -- the display value as published
    is_suppressed         boolean not null,
    comments              text,
    date_modified         timestamptz
);
create index if not exists who_gho_values_batch on raw.who_gho_values (batch_id);

-- NHS Talking Therapies: one row per measure value. Monthly files are long (measure_id M001...);
-- annual files are wide and unpivoted here, one row per measure column, with the VariableType
-- breakdown (ethnicity, IMD decile, ...) in breakdown / breakdown_group / breakdown_subgroup.
-- Several rows share the row_number of the annual record they come from.
create table if not exists raw.nhs_talking_therapies_measures (
    batch_id                bigint not null,
    file_sha256             text not null,
    row_number              bigint not null,
    feed_id                 text not null,
    file_layout             text not null check (file_layout in ('monthly', 'annual')),
    reporting_period_start  date,             -- NULL when an annual feed declares no period
    reporting_period_end    date,
    org_level               text,             -- GROUP_TYPE / OrgType: England, ICB, Provider, ...
    org_code                text,
    org_name                text,
    secondary_org_code      text,             -- monthly ORG_CODE2 (provider)
    secondary_org_name      text,
    breakdown               text,             -- annual VariableType
    breakdown_group         text,             -- annual VariableA (e.g. an ethnic group, IMD decile)
    breakdown_subgroup      text,             -- annual VariableB
    measure_id              text,             -- monthly only
    measure_name            text,
    measure_value           numeric,          -- NULL when suppressed, never zero
    is_suppressed           boolean not null,
    raw_value               text              -- the cell as published ('*', '12', ...)
);
create index if not exists nhs_talking_therapies_measures_batch
    on raw.nhs_talking_therapies_measures (batch_id);

-- NHS Mental Health Services Data Set monthly statistics: one row per published measure value.
create table if not exists raw.mhsds_measures (
    batch_id                     bigint not null,
    file_sha256                  text not null,
    row_number                   bigint not null,
    feed_id                      text not null,
    reporting_period_start       date not null,
    reporting_period_end         date not null,
    status                       text,        -- Performance, Provisional, Final
    breakdown                    text,        -- e.g. England; Provider; CCG - GP Practice or Residence
    primary_level                text,
    primary_level_description    text,
    secondary_level              text,
    secondary_level_description  text,
    measure_id                   text not null,
    measure_name                 text,
    measure_value                numeric,     -- NULL when suppressed, never zero
    is_suppressed                boolean not null,
    raw_value                    text
);
create index if not exists mhsds_measures_batch on raw.mhsds_measures (batch_id);
