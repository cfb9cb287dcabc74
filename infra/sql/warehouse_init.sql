-- Schemas, roles and grants of the KnowDo warehouse (docs/architecture.md, "The warehouse").
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

-- --- issue 11: reader roles' limits -------------------------------------------------------------
-- From infra/local/env.sh (KNOWDO_VIEWER_*, KNOWDO_ANALYST_*), passed by stack.sh as psql variables.
-- Viewers (Superset's role) get seconds, analysts minutes; a query cannot lift them: SET is a statement,
-- never part of a chart's expression, and set_config is revoked below.
alter role knowdo_superset set statement_timeout = :'viewer_statement_timeout';
alter role knowdo_superset set idle_in_transaction_session_timeout = :'viewer_idle_in_transaction_timeout';
alter role knowdo_superset connection limit :viewer_connection_limit;
alter role knowdo_analyst set statement_timeout = :'analyst_statement_timeout';
alter role knowdo_analyst set idle_in_transaction_session_timeout = :'analyst_idle_in_transaction_timeout';
alter role knowdo_analyst connection limit :analyst_connection_limit;

-- --- issue 11: functions no reader may run -------------------------------------------------------
-- Found in pg_proc by the C symbol they run, so every overload and any other name for one is caught:
--   * what executes a query given as text or reads whole tables past a row filter written in the
--     query: the *_to_xml family (query/cursor/table/schema/database, with their *xmlschema forms),
--     ts_stat (runs its argument), ts_rewrite(tsquery, text) (runs its argument);
--   * what changes a setting or the role a row filter relies on: set_config (SET is a statement and
--     cannot appear inside a chart's expression; set_config can);
--   * what lets a reader write or hold something others depend on: large objects (lo_*, loread,
--     lowrite), advisory locks, WAL messages, signalling other sessions of the same role;
--   * anything of the dblink library (runs SQL on another connection), should it ever be installed.
-- The whole family is found again on every run, so a function added by a new PostgreSQL version or
-- an extension under a known symbol is revoked too (tests/security/test_function_privileges.py).
-- REVOKE by a role that does not own a function only warns: the block fails instead when anything
-- is left, so a deployment never believes it is closed when it is not.
do $$
declare
  fn regprocedure;
  left_open text := '';
begin
  for fn in
    select p.oid::regprocedure
    from pg_proc as p
    join pg_language as l on l.oid = p.prolang
    where l.lanname in ('internal', 'c')
      and (p.prosrc ~ '^(query|cursor|table|schema|database)_to_xml(schema|_and_xmlschema)?$'
        or p.prosrc in ('ts_stat1', 'ts_stat2', 'tsquery_rewrite_query', 'set_config_by_name',
                        'pg_terminate_backend', 'pg_cancel_backend', 'pg_read_file',
                        'pg_logical_emit_message_text', 'pg_logical_emit_message_bytea')
        or p.prosrc ~ '^be_lo'
        or p.prosrc ~ 'advisory'
        or p.probin ~ '/dblink$')
      and has_function_privilege('public', p.oid, 'execute')
  loop
    execute format('revoke execute on function %s from public', fn);
    if has_function_privilege('public', fn, 'execute') then
      left_open := left_open || ' ' || fn::text;
    end if;
  end loop;
  if left_open <> '' then
    raise exception 'PUBLIC can still execute:%', left_open
      using hint = 'run infra/sql/warehouse_init.sql as a superuser: only the owner of these functions can revoke them';
  end if;
end
$$;
-- what the writers use: dbt ends its own queries with pg_terminate_backend when interrupted. (SQL Lab's
-- stop button needs it too; analysts do without: their statement_timeout ends a runaway query.)
grant execute on function pg_catalog.pg_terminate_backend(integer, bigint) to knowdo_transformer;
