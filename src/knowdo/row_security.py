"""Row-level security in PostgreSQL itself: one database role per viewer scope, policies on the
marts.

Superset's own RLS rules (knowdo.superset_access) filter the rows of a chart query, but a viewer who
gets arbitrary SQL into a chart (an adhoc metric, a custom column) can step around them. This module
is the second layer: the warehouse returns a viewer's rows only, whatever SQL the viewer sends.

- Every ministry, ARC and funder in superset/access.yml has a LOGIN role `knowdo_v_<user>`
  (`knowdo_v_ministry_gha`, `knowdo_v_arc_gm`, ...), plus `knowdo_v_none`, which sees no row (users
  Superset cannot map to exactly one scope). Their passwords are derived, never stored:
  HMAC-SHA256(KNOWDO_VIEWER_ROLE_SECRET, role name) (`viewer_password`); Superset derives the same
  password when it connects as the viewer (superset/superset_config.py, DB_CONNECTION_MUTATOR).
  The session user is then the viewer's own role: nothing inside a query can switch back to a role
  that sees more (SET ROLE reaches only the roles one is a member of, here knowdo_marts_reader,
  which holds no policy and so sees no row of a mart).
- `knowdo_security.row_scopes` lists, per database role, the owner column and code it may read
  (no column: every row, for knowdo_analyst and knowdo_superset);
  `knowdo_security.apply_row_policies` makes a table's policies match it and enables row-level
  security. A mart without a role's column gets no policy for that role: no policy means no row.
- The publish step calls apply_row_policies on every table it publishes, inside the publish
  transaction, so no published mart is ever readable without its policies.

`knowdo row-security sql` prints the (idempotent) setup SQL that infra/local/stack.sh
init-db pipes to psql as the cluster's superuser.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import re
import secrets
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from knowdo.config import Settings

SCHEMA = "knowdo_security"
ROLE_PREFIX = "knowdo_v_"
DENY_ROLE = "knowdo_v_none"
READER_GROUP = "knowdo_marts_reader"
# database roles that read every row of the marts: the analysts' SQL Lab and Superset's own
# connection (used as is only for Superset's Admin role)
ALL_ROWS_ROLES = ("knowdo_analyst", "knowdo_superset")
POLICY_PREFIX = "knowdo_rows_"
LOCAL_SECRET = "knowdo-viewer-local-only-not-a-secret"  # the default in infra/local/env.sh
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_TIMEOUT = re.compile(r"^\d+\s*(ms|s|min|h)?$")


class RowSecurityError(RuntimeError):
    """Row security cannot be set up as configured; the message says what to change."""


@dataclass(frozen=True)
class Scope:
    """One viewer database role and the rows it may read."""

    db_role: str
    column: str
    code: str
    superset_role: str


def db_role_name(username: str) -> str:
    name = f"{ROLE_PREFIX}{username}"
    if not _ROLE_NAME.match(name):
        raise RowSecurityError(
            f"database role name {name!r} (from user {username!r}) is not a plain"
            " identifier of at most 63 characters: shorten the key in access.yml"
        )
    return name


def scopes(access_file: Path | str | None = None) -> list[Scope]:
    """Every viewer scope of access.yml, as database roles."""
    from knowdo.superset_access import default_access_file, load_access

    spec = load_access(access_file or default_access_file())
    found = [Scope(db_role_name(r.username), r.column, r.code, r.name) for r in spec.roles]
    names = [s.db_role for s in found]
    if len(set(names)) != len(names) or DENY_ROLE in names:
        raise RowSecurityError("two access.yml users map to the same database role: rename one")
    return found


# --- secrets and settings ------------------------------------------------------------------------
def viewer_secret(settings: Settings | None = None) -> str:
    """KNOWDO_VIEWER_ROLE_SECRET; the built-in default is accepted in local mode only."""
    settings = settings or Settings.from_env()
    secret, mode = settings.viewer_role_secret, settings.mode
    if mode != "local" and secret in ("", LOCAL_SECRET):
        raise RowSecurityError(
            f"KNOWDO_MODE={mode}: set KNOWDO_VIEWER_ROLE_SECRET to a long random value (e.g."
            " `openssl rand -base64 42`); viewers' database passwords are derived from it"
        )
    return secret or LOCAL_SECRET


def viewer_password(role: str, secret: str) -> str:
    """The password of a viewer database role: HMAC-SHA256(secret, role name), hex."""
    return hmac.new(secret.encode(), role.encode(), hashlib.sha256).hexdigest()


def scram_verifier(password: str, iterations: int = 4096, salt: bytes | None = None) -> str:
    """A SCRAM-SHA-256 verifier as PostgreSQL stores it (RFC 5802/7677), so the plain password
    never reaches the server's logs or pg_stat_activity."""
    salt = salt or secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    b64 = lambda b: base64.b64encode(b).decode()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _setting(name: str, value: str, pattern: re.Pattern, example: str) -> str:
    value = value.strip()
    if not pattern.match(value):
        raise RowSecurityError(f"{name}={value!r} is not valid (e.g. {example!r})")
    return value


def viewer_limits(settings: Settings | None = None) -> dict[str, str]:
    """Timeouts and connection limit of every viewer role (the names and defaults of the reader
    roles' settings)."""
    settings = settings or Settings.from_env()
    return {
        "statement_timeout": _setting(
            "KNOWDO_VIEWER_STATEMENT_TIMEOUT", settings.viewer_statement_timeout, _TIMEOUT, "30s"
        ),
        "idle_in_transaction_session_timeout": _setting(
            "KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT",
            settings.viewer_idle_in_transaction_timeout,
            _TIMEOUT,
            "30s",
        ),
        "connection_limit": _setting(
            "KNOWDO_VIEWER_CONNECTION_LIMIT",
            settings.viewer_connection_limit,
            re.compile(r"^-?\d+$"),
            "20",
        ),
    }


# --- which database role a Superset user gets -----------------------------------------------------
KEEP = None  # the connection's own role (Superset's Admin)


def role_for_user(
    superset_roles: Iterable[str], scope_list: list[Scope], exempt_roles: Iterable[str] = ("Admin",)
) -> str | None:
    """The database role a Superset user's queries run as.

    Admin (the exempt roles) keeps the connection's own role (KEEP). A user holding exactly one
    viewer scope gets that scope's role. Anyone else, including a user holding several scopes, gets
    DENY_ROLE and reads no row: failing closed, because one login role can be only one scope (a
    user who needs two scopes gets two accounts).
    """
    held = set(superset_roles)
    if held & set(exempt_roles):
        return KEEP
    mine = sorted({s.db_role for s in scope_list if s.superset_role in held})
    return mine[0] if len(mine) == 1 else DENY_ROLE


# --- the setup SQL --------------------------------------------------------------------------------
def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


FUNCTION_SQL = r"""
-- The policies one table should have: one per database role in row_scopes that exists and whose
-- owner column the table has (no column: every row). The name encodes the rule, so comparing names
-- tells whether anything changed.
create or replace function knowdo_security.wanted_policies(target regclass)
returns table (polname text, db_role name, owner_column name, code text)
language sql stable security invoker set search_path = pg_catalog, pg_temp as $fn$
  select left('knowdo_rows_' || s.db_role || '_'
              || left(md5(coalesce(s.owner_column, '*') || '=' || coalesce(s.code, '')), 8), 63),
         s.db_role, s.owner_column, s.code
  from knowdo_security.row_scopes s
  where exists (select 1 from pg_roles where rolname = s.db_role)
    and (s.owner_column is null or exists (
      select 1 from pg_attribute a where a.attrelid = target and a.attname = s.owner_column
        and a.attnum > 0 and not a.attisdropped))
$fn$;

-- Make one table's row policies match knowdo_security.row_scopes and enable row-level security.
-- Runs as the caller (the publish step: the marts' owner). With nothing to change it runs no DDL,
-- so a refresh in place takes no lock that would block readers.
create or replace function knowdo_security.apply_row_policies(target regclass) returns integer
language plpgsql security invoker set search_path = pg_catalog, pg_temp as $fn$
declare
  r record;
  wanted text[];
  present text[];
begin
  select coalesce(array_agg(w.polname order by w.polname), '{}') into wanted
    from knowdo_security.wanted_policies(target) w;
  select coalesce(array_agg(p.polname::text order by p.polname), '{}') into present
    from pg_policy p where p.polrelid = target;
  if wanted = present and (select c.relrowsecurity from pg_class c where c.oid = target) then
    return 0;
  end if;
  -- every policy on the table goes: one made by hand could open rows to someone
  for r in select p.polname from pg_policy p where p.polrelid = target loop
    execute format('drop policy %I on %s', r.polname, target);
  end loop;
  for r in select * from knowdo_security.wanted_policies(target) loop
    if r.owner_column is null then
      execute format('create policy %I on %s as permissive for select to %I using (true)',
                     r.polname, target, r.db_role);
    else
      execute format('create policy %I on %s as permissive for select to %I using (%I = %L)',
                     r.polname, target, r.db_role, r.owner_column, r.code);
    end if;
  end loop;
  execute format('alter table %s enable row level security', target);
  return coalesce(array_length(wanted, 1), 0);
end
$fn$;
"""


def setup_sql(scope_list: list[Scope], settings: Settings | None = None) -> str:
    """Idempotent SQL (run by the cluster's superuser in the warehouse) for the viewer roles, the
    scope table, the policy function, and the policies of every table already in `marts`."""
    settings = settings or Settings.from_env()
    secret = viewer_secret(settings)
    limits = viewer_limits(settings)
    roles = [s.db_role for s in scope_list] + [DENY_ROLE]
    out = [
        "-- generated by `knowdo row-security sql` from superset/access.yml",
        "\\set ON_ERROR_STOP on",
        "begin;",
        f"create schema if not exists {SCHEMA};",
        f"revoke all on schema {SCHEMA} from public;",
        f"grant usage on schema {SCHEMA} to knowdo_transformer;",
    ]
    for role in roles:
        out.append(
            f"select 'create role {role}' where not exists"
            f" (select 1 from pg_roles where rolname = {_lit(role)}) \\gexec"
        )
        out.append(
            f"alter role {role} with login inherit nosuperuser nocreatedb nocreaterole"
            f" noreplication nobypassrls connection limit {limits['connection_limit']}"
            f" password {_lit(scram_verifier(viewer_password(role, secret)))};"
        )
        for name in ("statement_timeout", "idle_in_transaction_session_timeout"):
            out.append(f"alter role {role} set {name} = {_lit(limits[name])};")
        out.append(f"alter role {role} set default_transaction_read_only = on;")
    out.append(f"""create table if not exists {SCHEMA}.row_scopes (
  db_role name primary key,
  owner_column name,  -- null: every row
  code text,
  check ((owner_column is null) = (code is null)));""")
    out.append(f"revoke all on {SCHEMA}.row_scopes from public;")
    out.append(f"grant select on {SCHEMA}.row_scopes to knowdo_transformer;")
    out.append(f"delete from {SCHEMA}.row_scopes;")
    values = [f"({_lit(r)}, null, null)" for r in ALL_ROWS_ROLES]
    values += [f"({_lit(s.db_role)}, {_lit(s.column)}, {_lit(s.code)})" for s in scope_list]
    out.append(f"insert into {SCHEMA}.row_scopes values\n  " + ",\n  ".join(values) + ";")
    out.append(FUNCTION_SQL.strip())
    out.append(
        f"revoke all on function {SCHEMA}.apply_row_policies(regclass),"
        f" {SCHEMA}.wanted_policies(regclass) from public;"
    )
    out.append(
        f"grant execute on function {SCHEMA}.apply_row_policies(regclass),"
        f" {SCHEMA}.wanted_policies(regclass) to knowdo_transformer;"
    )
    # policies on what is already published, BEFORE the viewers can select anything
    out.append(
        f"select {SCHEMA}.apply_row_policies(c.oid) from pg_class c"
        " where c.relnamespace = 'marts'::regnamespace and c.relkind in ('r', 'p');"
    )
    # viewers read through knowdo_marts_reader's grants; they must never be members of a role that
    # holds a `using (true)` policy (a policy on a role applies to its members)
    out.append(f"grant {READER_GROUP} to {', '.join(roles)};")
    out.append("commit;")
    return "\n".join(out) + "\n"


def apply_policies(conn, schema: str, table: str) -> int:
    """Bring one published table's policies up to date (in the caller's transaction)."""
    from psycopg import errors, sql

    try:
        with conn.transaction():
            return conn.execute(
                sql.SQL("select {}.apply_row_policies({}::regclass)").format(
                    sql.Identifier(SCHEMA), sql.Literal(f'"{schema}"."{table}"')
                )
            ).fetchone()[0]
    except (
        errors.UndefinedFunction,
        errors.InvalidSchemaName,
        errors.InsufficientPrivilege,
    ) as exc:
        raise RowSecurityError(
            f"cannot apply row-level security to {schema}.{table} ({exc.diag.message_primary}):"
            " set up the warehouse roles first (`bash infra/local/stack.sh init-db`)"
        ) from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="knowdo row-security", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("sql", help="print the setup SQL (for psql as the cluster's superuser)")
    cmd.add_argument("--access-file", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        sys.stdout.write(setup_sql(scopes(args.access_file)))
    except RowSecurityError as exc:
        print(f"knowdo row security: {exc}", file=sys.stderr)
        return 1
    return 0
