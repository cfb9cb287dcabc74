-- DHIS2 as ministries send it (issue 13): values outside a feed's mapping are out of scope, not
-- errors; every DHIS2 period type. Idempotent; applied as knowdo_loader on new and existing
-- warehouses alike (`knowdo db migrate`).

-- rows of a file the feed does not take (ids outside its mapping): neither loaded nor rejected
alter table ops.load_batches add column if not exists rows_out_of_scope bigint not null default 0;
comment on column ops.load_batches.rows_out_of_scope is
    'rows outside the feed''s mapping (DHIS2 data elements, org units or category option combos it does not map): counted here and in ops.out_of_scope_ids, never in ops.rejected_rows';

-- which ids made those rows out of scope, with how many rows each (a row with two unmapped ids
-- counts under both)
create table if not exists ops.out_of_scope_ids (
    batch_id    bigint not null references ops.load_batches (batch_id),
    id_kind     text not null check (id_kind in ('data_element', 'org_unit', 'category_option_combo')),
    source_id   text not null,
    row_count   bigint not null check (row_count > 0),
    primary key (batch_id, id_kind, source_id)
);
grant select on ops.out_of_scope_ids to knowdo_transformer;

-- every DHIS2 fixed period type (src/knowdo/periods.py), with its last day
alter table raw.dhis2_data_values drop constraint if exists dhis2_data_values_period_type_check;
alter table raw.dhis2_data_values add constraint dhis2_data_values_period_type_check check (
    period_type in ('day', 'week', 'week_wednesday', 'week_thursday', 'week_saturday',
                    'week_sunday', 'biweek', 'month', 'bimonth', 'quarter', 'sixmonth',
                    'sixmonth_april', 'sixmonth_november', 'year', 'financial_april',
                    'financial_july', 'financial_october', 'financial_november'));
alter table raw.dhis2_data_values add column if not exists period_end date;
comment on column raw.dhis2_data_values.period_end is
    'last day of the DHIS2 period (NULL for rows loaded before every period type was read)';
