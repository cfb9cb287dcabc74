-- Databases of the local cluster other than the warehouse (issue 11): PUBLIC may neither connect to
-- nor create temporary tables in any of them; only their owners (and the superuser) may connect.
-- A warehouse revokes everything from PUBLIC itself and grants its roles (warehouse_init.sql), so
-- revoking on every database that accepts connections is right for warehouses too.
-- Idempotent: run by `make setup` on every start, as the superuser, in the database postgres.

\set ON_ERROR_STOP on

select format('revoke connect, temporary on database %I from public', datname)
from pg_database
where datallowconn
order by datname \gexec

select format('grant connect, temporary on database %I to %I', d.datname, r.rolname)
from pg_database as d
join pg_roles as r on r.oid = d.datdba
where d.datname in ('airflow', 'superset') \gexec
