"""A scratch warehouse: another database on the project's cluster, made by the same `init-db` as the
real one, so a test can plant rows without touching the shared `warehouse` database.

Issue 12 (test time): ingesting every sample feed and building the marts is the same expensive work
for every module that needs it, so it is done once per session, in the template warehouse
(`build_template`, the `scratch_template` fixture of tests/conftest.py). A module that only reads
reads the template; a module that writes gets its own copy (`clone_template`: PostgreSQL's
`CREATE DATABASE ... TEMPLATE`, a file copy, seconds), so nothing it plants leaks into another."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time

import pytest
from psycopg import sql

from knowdo.config import Settings
from knowdo.db import connect
from tests.conftest import REPO, SAMPLE_FEEDS
from tests.helpers.cluster_admin import admin_sql

# settings env.sh derives from KNOWDO_WAREHOUSE_DB (only when unset): cleared to point at another db
DERIVED = (
    "KNOWDO_WAREHOUSE_URL",
    "KNOWDO_TRANSFORMER_URL",
    "KNOWDO_GX_WAREHOUSE_URL",
)
RAW_TABLES = (
    "dhis2_data_values",
    "iati_activities",
    "threesixtygiving_grants",
    "who_gho_values",
    "nhs_talking_therapies_measures",
    "mhsds_measures",
    "template_ministry_budget",
    "template_ngo_service_use",
    "template_ngo_outcomes",
    "template_population",
    "template_prevalence",
    "template_implementation_registry",  # issue 15
)
INGEST_SAMPLES = (
    "from knowdo.pipeline import list_feeds, ingest_feed; [ingest_feed(f) for f in list_feeds()]"
)


def scratch_env(database: str) -> dict[str, str]:
    """The environment env.sh gives for another warehouse database on the same cluster."""
    env = {k: v for k, v in os.environ.items() if k not in DERIVED}
    env["KNOWDO_WAREHOUSE_DB"] = database
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/infra/local/env.sh && env -0"],
        env=env,
        check=True,
        capture_output=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


def run(args: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=900, cwd=REPO, check=False
    )
    assert proc.returncode == 0, f"{args[:3]} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def create_scratch_warehouse(
    database: str, load_samples: bool = True, seeds: bool = True
) -> dict[str, str]:
    """(Re)create a warehouse database with every migration, empty raw and ops tables, the
    reference seeds and (optionally) the sample feeds loaded. Idempotent; kept between runs."""
    env = scratch_env(database)
    run(["bash", str(REPO / "infra" / "local" / "stack.sh"), "init-db"], env)
    with connect(env["KNOWDO_WAREHOUSE_URL"]) as conn, conn.transaction():
        tables = [f"raw.{t}" for t in RAW_TABLES] + [
            "ops.rejected_rows",
            "ops.load_batches",
            "ops.landed_files",
            "ops.feeds",
        ]
        conn.execute(f"truncate {', '.join(tables)} cascade")
        conn.execute("delete from ops.alerts")
        conn.execute("delete from ops.quality_gate_runs")
    if seeds:
        run(
            [
                str(REPO / ".venvs" / "dbt" / "bin" / "dbt"),
                "seed",
                "--project-dir",
                str(REPO / "dbt_project"),
                "--profiles-dir",
                str(REPO / "dbt_project"),
            ],
            env,
        )
    if load_samples:
        env_ingest = {**env, "KNOWDO_INBOX_DIR": str(SAMPLE_FEEDS)}
        run([str(REPO / ".venv" / "bin" / "python"), "-c", INGEST_SAMPLES], env_ingest)
    return env


@contextlib.contextmanager
def scratch_settings(database: str):
    """Settings (and the environment GX and the alerts read) for the scratch database."""
    env = scratch_env(database)
    with pytest.MonkeyPatch.context() as mp:
        for name in DERIVED:
            mp.delenv(name, raising=False)
        mp.setenv("KNOWDO_WAREHOUSE_DB", database)
        # GX reads the credentials only through ${KNOWDO_GX_WAREHOUSE_URL}
        mp.setenv("KNOWDO_GX_WAREHOUSE_URL", env["KNOWDO_GX_WAREHOUSE_URL"])
        mp.setenv("KNOWDO_WAREHOUSE_URL", env["KNOWDO_WAREHOUSE_URL"])
        yield Settings.from_env()


# --- issue 12: one template warehouse per session, copied by the modules that write -------------
# KNOWDO_TEST_TEMPLATE_DB lets an engineer point the session at a template database of their own
TEMPLATE_DB = os.environ.get("KNOWDO_TEST_TEMPLATE_DB", "knowdo_test_template")
DBT = str(REPO / ".venvs" / "dbt" / "bin" / "dbt")
DBT_ARGS = ("--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"))
# what the modules that use the template read, and what it needs (`+`); every seed is loaded too
TEMPLATE_SELECTION = (
    # integration/test_implementation_effects, dbt/test_arc_measures, dbt/test_disclosure_control
    "+fct_service_use",
    "stg_templates_implementation__registry",  # integration/test_implementation_effects
    # integration/test_quality_equity_marts, dbt/test_disclosure_control (and arc: mart_know_do_gap)
    "+fct_outcomes",
    "+mart_know_do_gap",
    "+mart_service_use_by_arc",
    "+mart_inequality_measures",  # the same and dbt/test_inequality_measures
    # integration/test_impact_marts: empty, with their contracts (the test's step writes the rows)
    "+mart_implementation_impact",
    "+mart_implementation_counterfactual",
)
TEMPLATE_SECONDS: dict[str, float] = {}  # how long the template's steps took (for the record)


def build_template(database: str = TEMPLATE_DB) -> dict[str, str]:
    """The template warehouse: every migration, the reference seeds, every sample feed ingested
    through knowdo.pipeline.ingest_feed (what the ingest DAG runs per feed), the stats functions
    (once, before the models, as the transform DAG does), then `dbt build` of TEMPLATE_SELECTION:
    seeds and models only (dbt's own tests are not what the modules check), full refresh since the
    raw tables were just reloaded under new batch ids. Returns its environment (scratch_env)."""
    started = time.monotonic()
    env = create_scratch_warehouse(database)
    TEMPLATE_SECONDS["ingest"] = time.monotonic() - started
    run([DBT, "run-operation", "create_stats_functions", *DBT_ARGS], env)
    run(
        [
            DBT,
            "build",
            "--full-refresh",
            *DBT_ARGS,
            "--select",
            *TEMPLATE_SELECTION,
            "--exclude-resource-type",
            "test",
            "unit_test",
        ],
        env,
    )
    TEMPLATE_SECONDS["build"] = time.monotonic() - started
    return env


def clone_template(template_env: dict[str, str], database: str) -> dict[str, str]:
    """A copy of the template warehouse named `database` (any earlier copy dropped first), with the
    template's database privileges (CREATE DATABASE copies the contents, not the database's own
    grants). Returns its environment (scratch_env). Nothing may be connected to the template."""
    template = template_env["KNOWDO_WAREHOUSE_DB"]
    assert database != template, f"{database} is the template itself: a module writes to its copy"
    ident = sql.Identifier(database).as_string(None)
    admin_sql(f"drop database if exists {ident} with (force)")
    users = admin_sql(
        "select string_agg(usename || ' (' || application_name || ')', ', ')"
        f" from pg_stat_activity where datname = {sql.Literal(template).as_string(None)}"
        " and backend_type = 'client backend'"
    )
    assert not users, (
        f"cannot copy the template warehouse {template}: still connected: {users}; a module that"
        " reads the template must close its connections at its end"
    )
    admin_sql(f"create database {ident} template {sql.Identifier(template).as_string(None)}")
    # the template's grants on the database itself (init-db's warehouse_init.sql made them)
    grants = admin_sql(
        "select string_agg(format('grant %s on database %I to %s', a.privilege_type,"
        f" {sql.Literal(database).as_string(None)},"
        " case when a.grantee = 0 then 'public' else quote_ident(r.rolname) end), '; ')"
        " from pg_database d cross join aclexplode(d.datacl) a"
        " left join pg_roles r on r.oid = a.grantee"
        f" where d.datname = {sql.Literal(template).as_string(None)}"
    )
    admin_sql(f"revoke all on database {ident} from public")
    for grant in filter(None, grants.split("; ")):
        admin_sql(grant)
    return scratch_env(database)
