-- WHO GHO (issue 13): the older GHO CSV layout (`GHO (CODE)`, `YEAR (DISPLAY)`, `Numeric`, ...)
-- is read too. Idempotent; applied as knowdo_loader on new and existing warehouses alike.
alter table raw.who_gho_values drop constraint if exists who_gho_values_export_layout_check;
alter table raw.who_gho_values add constraint who_gho_values_export_layout_check
    check (export_layout in ('api', 'odata', 'portal', 'athena'));
