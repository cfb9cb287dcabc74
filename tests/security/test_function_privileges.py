"""No reader can run a function that executes a query given as text or changes what a row filter
relies on (issue 11, finding 1: `query_to_xml('select ... from marts.fct_service_use ...')` in an
adhoc metric returned every country's rows).

The dangerous functions are recognised by rule, not from a list of names kept here, so a function
added later (a new PostgreSQL version, an extension, a project function) is caught too:
  * the C symbol it runs is one that executes query text, reads whole tables, changes settings or
    the role, writes large objects, takes advisory locks, signals backends or reads server files;
  * its name belongs to those families (`*_to_xml*`, `ts_stat`, `ts_rewrite(tsquery, text)`,
    `set_config`, `lo_*`, `*advisory*`, `dblink*`, `pg_read_*`, ...);
  * it belongs to an extension that reaches outside the database or under the row filter;
  * it is SECURITY DEFINER and not owned by the project's roles, or owned by them and not reviewed;
  * its SQL or PL/pgSQL body calls set_config, runs dynamic SQL (EXECUTE), or calls one of
    the above.
"""

from __future__ import annotations

import os
import re

import psycopg
import pytest
from psycopg import errors
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration

ENV = os.environ
PROJECT_OWNERS = {"knowdo_transformer", "knowdo_loader"}
# SECURITY DEFINER functions of the project that a reader may run, each reviewed: it runs with its
# owner's rights, so it must not take query text, touch settings or return rows past the row filter
REVIEWED_SECURITY_DEFINER: set[str] = set()

# C symbols (pg_proc.prosrc of internal/C functions) that are dangerous for a reader to call
DANGEROUS_SYMBOLS = re.compile(
    r"^(?:"
    # runs SQL / whole tables
    r"(?:query|cursor|table|schema|database)_to_xml(?:schema|_and_xmlschema)?"
    # ts_stat(text), ts_rewrite(tsquery, text) run their argument
    r"|ts_stat\d?|tsquery_rewrite_query"
    r"|set_config_by_name"  # set_config: settings and the role
    r"|be_lo_\w+"  # large objects
    r"|pg_(?:try_)?advisory\w*"  # advisory locks
    r"|pg_terminate_backend|pg_cancel_backend|pg_signal_backend"
    r"|pg_logical_emit_message\w*"
    r"|pg_read_\w*file\w*|pg_ls_\w+|pg_stat_file\w*|pg_file_\w+"  # server files
    r"|dblink\w*"
    r")$"
)
# names of the same families, whatever symbol (or language) implements them
DANGEROUS_NAMES = re.compile(
    r"(?:_to_xml|_to_xmlschema|^ts_stat$|^set_config$|^lo_|^lo(?:read|write)$|advisory|^dblink"
    r"|^pg_read_|^pg_ls_|^pg_stat_file$|^pg_file_|^pg_terminate_backend$|^pg_cancel_backend$"
    r"|^pg_logical_emit_message$)"
)
# extensions that reach other connections, files or pages under the row filter
DANGEROUS_EXTENSIONS = {
    "dblink",
    "postgres_fdw",
    "file_fdw",
    "adminpack",
    "pageinspect",
    "pgrowlocks",
    "pgstattuple",
    "pg_buffercache",
    "pg_visibility",
    "pg_walinspect",
    "amcheck",
}
# in a SQL or PL/pgSQL body: settings, dynamic SQL, or a call of a dangerous family member
DANGEROUS_BODY = re.compile(
    r"\b(?:set_config|execute|query_to_xml\w*|cursor_to_xml\w*|table_to_xml\w*|schema_to_xml\w*"
    r"|database_to_xml\w*|ts_stat|ts_rewrite|dblink\w*|lo_\w+|pg_\w*advisory\w*)\b",
    re.IGNORECASE,
)

FUNCTIONS_SQL = """
select p.oid, p.oid::regprocedure::text as signature, n.nspname as schema, p.proname as name,
       l.lanname as language, p.prosrc as source, coalesce(p.probin, '') as library,
       p.prosecdef as security_definer, pg_get_userbyid(p.proowner) as owner,
       coalesce(e.extname, '') as extension, pg_get_function_identity_arguments(p.oid) as arguments
from pg_proc as p
join pg_namespace as n on n.oid = p.pronamespace
join pg_language as l on l.oid = p.prolang
left join pg_depend as d on d.classid = 'pg_proc'::regclass and d.objid = p.oid and d.deptype = 'e'
left join pg_extension as e on e.oid = d.refobjid
"""


def connect_as(role: str, password_setting: str) -> psycopg.Connection:
    return psycopg.connect(
        host=ENV["KNOWDO_PG_HOST"],
        port=ENV["KNOWDO_PG_PORT"],
        dbname=ENV["KNOWDO_WAREHOUSE_DB"],
        user=role,
        password=ENV[password_setting],
        connect_timeout=10,
        autocommit=True,
    )


def strip_comments(body: str) -> str:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", body, flags=re.DOTALL)


def why_dangerous(fn: dict) -> str | None:
    """The rule a function breaks, or None."""
    if fn["language"] in ("internal", "c") and DANGEROUS_SYMBOLS.match(fn["source"]):
        return f"runs the C symbol {fn['source']}"
    if DANGEROUS_NAMES.search(fn["name"]) or (
        fn["name"] == "ts_rewrite" and fn["arguments"].endswith("text")
    ):
        return (
            "belongs to a family that runs query text, changes settings or writes outside the"
            " filter"
        )
    if fn["extension"] in DANGEROUS_EXTENSIONS or re.search(r"dblink|_fdw$", fn["library"]):
        return f"comes from the extension {fn['extension'] or fn['library']}"
    if fn["security_definer"] and fn["owner"] not in PROJECT_OWNERS:
        return f"is SECURITY DEFINER owned by {fn['owner']}"
    if fn["security_definer"] and fn["signature"] not in REVIEWED_SECURITY_DEFINER:
        return (
            f"is SECURITY DEFINER (runs with {fn['owner']}'s rights): review it and add it to"
            " REVIEWED_SECURITY_DEFINER in this test"
        )
    if fn["language"] not in ("internal", "c"):
        called = DANGEROUS_BODY.search(strip_comments(fn["source"]))
        if called:
            return f"its {fn['language']} body calls {called.group(0)}"
    return None


def executable_by(conn: psycopg.Connection, role: str) -> list[dict]:
    cur = conn.cursor(row_factory=dict_row)
    return cur.execute(
        FUNCTIONS_SQL + " where has_function_privilege(%s, p.oid, 'EXECUTE')", (role,)
    ).fetchall()


@pytest.fixture(scope="module")
def superset_conn(cluster):
    with connect_as("knowdo_superset", "KNOWDO_SUPERSET_DB_PASSWORD") as conn:
        yield conn


def reader_roles(conn: psycopg.Connection) -> list[str]:
    """PUBLIC and every role that may read the marts: knowdo_superset, knowdo_analyst and any
    per-viewer role made a member of knowdo_marts_reader."""
    rows = conn.execute(
        "select rolname from pg_roles where rolname <> 'knowdo_marts_reader' and not rolsuper"
        " and pg_has_role(rolname, 'knowdo_marts_reader', 'member') order by 1"
    ).fetchall()
    return ["public", *[r[0] for r in rows]]


def test_the_rules_recognise_the_known_dangerous_functions(superset_conn):
    """The detector is not vacuous: among all functions of the warehouse (executable or not) it
    flags the whole family behind the finding, and passes ordinary ones."""
    every = {
        f["signature"]: f
        for f in superset_conn.cursor(row_factory=dict_row).execute(FUNCTIONS_SQL).fetchall()
    }
    must_flag = [
        "query_to_xml(text,boolean,boolean,text)",
        "query_to_xmlschema(text,boolean,boolean,text)",
        "query_to_xml_and_xmlschema(text,boolean,boolean,text)",
        "cursor_to_xml(refcursor,integer,boolean,boolean,text)",
        "table_to_xml(regclass,boolean,boolean,text)",
        "schema_to_xml(name,boolean,boolean,text)",
        "database_to_xml(boolean,boolean,text)",
        "ts_stat(text)",
        "ts_stat(text,text)",
        "ts_rewrite(tsquery,text)",
        "set_config(text,text,boolean)",
        "lo_from_bytea(oid,bytea)",
        "pg_advisory_lock(bigint)",
        "pg_terminate_backend(integer,bigint)",
    ]
    for signature in must_flag:
        assert why_dangerous(every[signature]), f"the rules miss {signature}"
    for signature in [
        "count()",
        "lower(text)",
        "ts_rewrite(tsquery,tsquery,tsquery)",
        "current_setting(text)",
        "round(numeric,integer)",
        "pg_sleep(double precision)",
    ]:
        if signature in every:
            assert why_dangerous(every[signature]) is None, (
                f"the rules flag the harmless {signature}"
            )


def test_no_reader_can_execute_a_dangerous_function(superset_conn):
    roles = reader_roles(superset_conn)
    assert {"public", "knowdo_superset", "knowdo_analyst"} <= set(roles)
    found = {}
    for role in roles:
        functions = executable_by(superset_conn, role)
        assert len(functions) > 1000, (
            f"only {len(functions)} functions listed for {role}: the query is wrong"
        )
        for fn in functions:
            reason = why_dangerous(fn)
            if reason:
                found.setdefault(fn["signature"], (reason, []))[1].append(role)
    assert not found, "readers can execute dangerous functions:\n" + "\n".join(
        f"  {sig}: {reason} (executable by {', '.join(roles)})"
        for sig, (reason, roles) in sorted(found.items())
    )


def test_the_project_functions_run_no_dynamic_sql(superset_conn):
    """The stats schema (dbt_project/macros/stats/) and every other function
    of the project's schemas that any reader may execute: no set_config, no EXECUTE of a caller's
    text, no SECURITY DEFINER. The writers' own helpers that build DDL (row-level security policies,
    secondary suppression) may run dynamic SQL, but only when no reader can execute them."""
    functions = (
        superset_conn.cursor(row_factory=dict_row)
        .execute(
            FUNCTIONS_SQL
            + " where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_'"
        )
        .fetchall()
    )
    assert functions, "no function in the project's schemas: has dbt built the stats functions?"
    readers = reader_roles(superset_conn)
    flagged, writers_only = {}, []
    for f in functions:
        reason = why_dangerous(f)
        if not reason:
            continue
        runnable_by = [
            r
            for r in readers
            if superset_conn.execute(
                "select has_function_privilege(%s, %s::oid, 'EXECUTE')", (r, f["oid"])
            ).fetchone()[0]
        ]
        if runnable_by:
            flagged[f["signature"]] = f"{reason} (executable by {', '.join(runnable_by)})"
        else:
            writers_only.append(f["signature"])
    assert not flagged, flagged
    assert any(s.startswith("stats.") for s in (f["signature"] for f in functions)), (
        "no stats function found"
    )


def test_a_new_dangerous_project_function_would_be_caught(cluster):
    """A function a later change might add to `stats` (where readers get EXECUTE by default) is
    flagged: created in a transaction that is rolled back."""
    with (
        connect_as("knowdo_transformer", "KNOWDO_TRANSFORMER_PASSWORD") as conn,
        conn.transaction(force_rollback=True),
    ):
        conn.execute(
            "create function stats.sneaky_xml(q text) returns xml language sql"
            " as $$ select query_to_xml(q, true, false, '') $$"
        )
        conn.execute(
            "create function stats.sneaky_role(r text) returns text language plpgsql"
            " as $$ begin return set_config('role', r, false); end $$"
        )
        conn.execute(
            "create function stats.sneaky_exec(q text) returns bigint language plpgsql"
            " as $$ declare n bigint; begin execute q into n; return n; end $$"
        )
        conn.execute(
            "create function stats.sneaky_definer() returns int language sql security definer"
            " as $$ select 1 $$"
        )
        flagged = {
            f["signature"]: why_dangerous(f)
            for f in executable_by(conn, "knowdo_superset")
            if f["schema"] == "stats" and f["name"].startswith("sneaky_")
        }
    assert set(flagged) == {
        "stats.sneaky_xml(text)",
        "stats.sneaky_role(text)",
        "stats.sneaky_exec(text)",
        "stats.sneaky_definer()",
    }, flagged
    assert all(flagged.values()), flagged


ATTACKS = {
    "query_to_xml": "select query_to_xml('select 1', true, false, '')",
    "query_to_xml on the marts": (
        "select query_to_xml('select country_code, count(*) n from marts.fct_service_use"
        " group by 1', true, false, '')"
    ),
    "query_to_xmlschema": "select query_to_xmlschema('select 1', true, false, '')",
    "table_to_xml": "select table_to_xml('pg_catalog.pg_class', true, false, '')",
    "schema_to_xml": "select schema_to_xml('marts', true, false, '')",
    "database_to_xml": "select database_to_xml(true, false, '')",
    "cursor_to_xml": "select cursor_to_xml('c', 1, true, false, '')",
    "ts_stat": (
        "select * from ts_stat('select to_tsvector(country_code) from marts.fct_service_use')"
    ),
    "ts_rewrite with a query": (
        "select ts_rewrite('a'::tsquery, 'select ''a''::tsquery, ''b''::tsquery')"
    ),
    "set_config role": "select set_config('role', 'postgres', false)",
    "set_config timeout": "select set_config('statement_timeout', '0', false)",
    "large object": "select lo_from_bytea(0, 'x')",
    "advisory lock": "select pg_advisory_lock(1)",
    "terminate a backend": "select pg_terminate_backend(pg_backend_pid() + 1)",
}


@pytest.mark.parametrize(
    "role,password_setting",
    [
        ("knowdo_superset", "KNOWDO_SUPERSET_DB_PASSWORD"),
        ("knowdo_analyst", "KNOWDO_ANALYST_PASSWORD"),
    ],
)
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_reader_is_refused_the_dangerous_functions(cluster, role, password_setting, attack):
    with connect_as(role, password_setting) as conn:
        with pytest.raises(errors.InsufficientPrivilege, match="permission denied for function"):
            conn.execute(ATTACKS[attack])
        # the connection still works: the refusal is the privilege check, not a broken session
        assert conn.execute("select 1").fetchone() == (1,)
