"""The incremental service-use chain gives exactly what a full refresh gives, rebuilding only the
months that changed.

In a scratch database (never the warehouse the other tests read): Ghana's sample population and
two years of DHIS2 data are loaded and the chain built from scratch; then a new month arrives, an
old month is resent with corrected values and another old month is resent with every value
deleted, and finally a batch is deleted by hand. The incremental run must touch only those months
(row versions of every other month stay as they were: PostgreSQL's xmin) and leave the same rows, in
every model of the chain, as a `--full-refresh` of the same data (EXCEPT ALL both ways).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.dbt.conftest import REPO_ROOT, setting

pytestmark = pytest.mark.integration

SCRATCH_DB = "knowdo_test_incremental"
SAMPLE = REPO_ROOT / "sample_feeds"
FEED = "gha_moh_dhis2"
CHAIN = [  # (schema, model) in build order
    ("intermediate", "int_service_use__dhis2_region_cells"),
    ("intermediate", "int_service_use__dhis2_monthly"),
    ("intermediate", "int_service_use__dhis2_age_sex_cells"),
    ("restricted", "restricted_service_use__unrounded"),
    ("marts_candidate", "fct_service_use"),
]
NEW_MONTH, CORRECTED_MONTH, EMPTIED_MONTH = date(2026, 1, 1), date(2024, 3, 1), date(2024, 5, 1)


def conninfo(user: str, password: str) -> str:
    return make_conninfo(
        host=setting("KNOWDO_PG_HOST"),
        port=setting("KNOWDO_PG_PORT"),
        dbname=SCRATCH_DB,
        user=user,
        password=password,
        connect_timeout=10,
    )


@pytest.fixture(scope="module")
def scratch(cluster, tmp_path_factory):
    """A fresh scratch warehouse (roles, schemas, loader tables), emptied of earlier runs' data."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "KNOWDO_WAREHOUSE_URL",
            "KNOWDO_GX_WAREHOUSE_URL",
            "KNOWDO_TRANSFORMER_URL",
        )
    }
    env["KNOWDO_WAREHOUSE_DB"] = SCRATCH_DB
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "infra/local/stack.sh"), "init-db"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    loader = psycopg.connect(
        conninfo("knowdo_loader", os.environ.get("KNOWDO_LOADER_PASSWORD", "knowdo-loader-local")),
        autocommit=True,
    )
    tables = [
        f"raw.{t}"
        for (t,) in loader.execute(
            "select tablename from pg_tables where schemaname = 'raw'"
        ).fetchall()
    ]
    loader.execute(
        f"truncate {', '.join(tables)}, ops.rejected_rows, ops.load_batches,"
        " ops.landed_files cascade"
    )
    from knowdo.registry import load_registry, sync_to_warehouse

    feeds = load_registry(REPO_ROOT / "feeds" / "registry.yml")
    sync_to_warehouse(loader, feeds)
    yield loader, feeds, tmp_path_factory.mktemp("landing")
    loader.close()


@pytest.fixture(scope="module")
def transformer(scratch):
    with psycopg.connect(
        conninfo("knowdo_transformer", setting("KNOWDO_TRANSFORMER_PASSWORD")), autocommit=True
    ) as conn:
        yield conn


def ingest(scratch, feed_id: str, path: Path) -> None:
    from knowdo.loading import ingest_file

    loader, feeds, landing = scratch
    result = ingest_file(loader, feeds[feed_id], path, landing)
    # (the sample files carry planted faults: a rejected row or two is expected there)
    assert result.status == "loaded" and result.rows_loaded > 0, result


def dbt_run(run_dbt_env, *args: str) -> None:
    done = run_dbt_env(
        "build",
        "--select",
        "+fct_service_use",
        "--exclude-resource-type",
        "test",
        "unit_test",
        *args,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


@pytest.fixture(scope="module")
def run_dbt_env(dbt_executable, dbt_env):
    env = {**dbt_env, "KNOWDO_WAREHOUSE_DB": SCRATCH_DB}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(dbt_executable), *args],
            check=False,
            cwd=REPO_ROOT / "dbt_project",
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    # the stats functions in the scratch database, once, as the transform DAG creates them first
    made = run("run-operation", "create_stats_functions")
    assert made.returncode == 0, made.stdout[-4000:] + made.stderr[-2000:]
    return run


def dhis2_file(path: Path, values: list[dict]) -> Path:
    path.write_text(
        json.dumps({"dataSet": "KdMhDataSt1", "completeDate": "2026-02-15", "dataValues": values}),
        encoding="utf-8",
    )
    return path


def month_values(year: int, period: str) -> list[dict]:
    document = json.loads((SAMPLE / f"dhis2/gha_moh/gha_mh_service_use_{year}.json").read_text())
    return [
        v
        for v in document["dataValues"]
        if v["period"] == period and str(v.get("value", "")).isdigit()
    ]


def row_versions(conn, schema: str, table: str) -> dict[date, set[str]]:
    """month -> the transaction ids that wrote its rows (a rebuilt month gets a new one)."""
    rows = conn.execute(
        f"select period_start, array_agg(distinct xmin::text) from {schema}.{table} group by 1"
    ).fetchall()
    return {month: set(xids) for month, xids in rows}


def test_incremental_months_equal_a_full_refresh(scratch, transformer, run_dbt_env, tmp_path):
    ingest(scratch, "population_denominators", SAMPLE / "population/gha_population.csv")
    for year in (2024, 2025):
        ingest(scratch, FEED, SAMPLE / f"dhis2/gha_moh/gha_mh_service_use_{year}.json")
    dbt_run(run_dbt_env, "--full-refresh")
    before = {t: row_versions(transformer, s, t) for s, t in CHAIN}
    corrected_before = transformer.execute(
        "select sum(numerator) from intermediate.int_service_use__dhis2_monthly"
        " where period_start = %s and stratifier = 'all'",
        (CORRECTED_MONTH,),
    ).fetchone()[0]
    assert corrected_before > 0

    # a new month, a corrected resend (every value + 3, one value left out: DHIS2 omits zeros) and
    # a resend that deletes every value of a month
    new = [
        {**v, "period": "202601", "value": str(int(v["value"]) + 1)}
        for v in month_values(2025, "202512")
    ]
    corrected = [{**v, "value": str(int(v["value"]) + 3)} for v in month_values(2024, "202403")][1:]
    emptied = [{**v, "deleted": True} for v in month_values(2024, "202405")]
    ingest(scratch, FEED, dhis2_file(tmp_path / "gha_2026_01.json", new))
    ingest(scratch, FEED, dhis2_file(tmp_path / "gha_2024_03_corrected.json", corrected))
    ingest(scratch, FEED, dhis2_file(tmp_path / "gha_2024_05_deleted.json", emptied))
    dbt_run(run_dbt_env)

    for schema, table in CHAIN:
        after = row_versions(transformer, schema, table)
        rebuilt = {m for m, xids in after.items() if xids != before[table].get(m)}
        assert rebuilt == {NEW_MONTH, CORRECTED_MONTH}, f"{table} rebuilt {sorted(rebuilt)}"
        assert EMPTIED_MONTH in before[table] and EMPTIED_MONTH not in after, table
        assert set(after) == set(before[table]) - {EMPTIED_MONTH} | {NEW_MONTH}, table
    corrected_after = transformer.execute(
        "select sum(numerator) from intermediate.int_service_use__dhis2_monthly"
        " where period_start = %s and stratifier = 'all'",
        (CORRECTED_MONTH,),
    ).fetchone()[0]
    assert corrected_after != corrected_before

    # nothing new: the next run rebuilds nothing
    settled = {t: row_versions(transformer, s, t) for s, t in CHAIN}
    dbt_run(run_dbt_env)
    assert {t: row_versions(transformer, s, t) for s, t in CHAIN} == settled

    # a batch removed by hand (as the quality-gate e2e test cleans up): its month goes too
    loader = scratch[0]
    with loader.transaction():
        (batch,) = loader.execute(
            "select batch_id from ops.load_batches where file_name = %s", ("gha_2026_01.json",)
        ).fetchone()
        loader.execute("delete from raw.dhis2_data_values where batch_id = %s", (batch,))
        loader.execute("delete from ops.load_batches where batch_id = %s", (batch,))
    dbt_run(run_dbt_env)
    for schema, table in CHAIN:
        after = row_versions(transformer, schema, table)
        assert NEW_MONTH not in after and after == {
            m: x for m, x in settled[table].items() if m != NEW_MONTH
        }, table

    for schema, table in CHAIN:
        transformer.execute(f"drop table if exists {schema}.{table}__incremental")
        transformer.execute(
            f"create table {schema}.{table}__incremental as select * from {schema}.{table}"
        )
    dbt_run(run_dbt_env, "--full-refresh")
    for schema, table in CHAIN:
        full, incremental = f"{schema}.{table}", f"{schema}.{table}__incremental"
        count = transformer.execute(f"select count(*) from {full}").fetchone()[0]
        assert count > 0
        for a, b in ((full, incremental), (incremental, full)):
            extra = transformer.execute(
                f"select count(*) from (select * from {a} except all select * from {b}) as d"
            ).fetchone()[0]
            assert extra == 0, (
                f"{extra} rows of {a} are not in {b} ({count} rows in the full refresh)"
            )
        transformer.execute(f"drop table {incremental}")
