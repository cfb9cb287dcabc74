-- Schemas, roles and grants of the KnowDo warehouse (DESIGN.md "Warehouse").
-- Idempotent: run by `make setup` on every start; safe on an existing production database too.
-- Passwords arrive as psql variables (-v loader_pw=... etc.), never stored here.

\set ON_ERROR_STOP on

select format('create role %I login', r) from unnest(array['knowdo_loader', 'knowdo_transformer',
  'knowdo_analyst', 'knowdo_superset']) as r
where not exists (select 1 from pg_roles where rolname = r) \gexec

alter role knowdo_loader with login password :'loader_pw';
alter role knowdo_transformer with login password :'transformer_pw';
alter role knowdo_analyst with login password :'analyst_pw';
alter role knowdo_superset with login password :'superset_pw';

-- A read-only group role for everything that may read published marts (analysts, Superset).
select 'create role knowdo_marts_reader nologin'
where not exists (select 1 from pg_roles where rolname = 'knowdo_marts_reader') \gexec
grant knowdo_marts_reader to knowdo_analyst, knowdo_superset;
alter role knowdo_analyst set default_transaction_read_only = on;
alter role knowdo_superset set default_transaction_read_only = on;

revoke all on database :"warehouse_db" from public;
grant connect on database :"warehouse_db" to knowdo_loader, knowdo_transformer, knowdo_marts_reader;
grant create on database :"warehouse_db" to knowdo_transformer;
-- dbt unit tests build their fixtures as temporary tables
grant temporary on database :"warehouse_db" to knowdo_transformer;
revoke create on schema public from public;

create schema if not exists raw authorization knowdo_loader;
create schema if not exists ops authorization knowdo_loader;
create schema if not exists staging authorization knowdo_transformer;
create schema if not exists intermediate authorization knowdo_transformer;
create schema if not exists restricted authorization knowdo_transformer;
create schema if not exists marts_candidate authorization knowdo_transformer;
create schema if not exists marts authorization knowdo_transformer;
create schema if not exists stats authorization knowdo_transformer;
create schema if not exists seeds authorization knowdo_transformer;

-- the transformer reads what the loader wrote
grant usage on schema raw, ops to knowdo_transformer;
grant select on all tables in schema raw, ops to knowdo_transformer;
alter default privileges for role knowdo_loader in schema raw grant select on tables to knowdo_transformer;
alter default privileges for role knowdo_loader in schema ops grant select on tables to knowdo_transformer;
-- the publish step records quality-gate outcomes in ops
grant usage on schema ops to knowdo_transformer;

-- readers: marts and the statistics functions only; never raw, ops, staging, restricted, candidates
revoke all on schema raw, ops, staging, intermediate, restricted, marts_candidate, seeds from knowdo_marts_reader;
grant usage on schema marts, stats to knowdo_marts_reader;
grant select on all tables in schema marts to knowdo_marts_reader;
alter default privileges for role knowdo_transformer in schema marts grant select on tables to knowdo_marts_reader;
grant execute on all functions in schema stats to knowdo_marts_reader;
alter default privileges for role knowdo_transformer in schema stats grant execute on functions to knowdo_marts_reader;
