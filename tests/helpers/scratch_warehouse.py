"""A scratch warehouse: another database on the project's cluster, made by the same `init-db` as the
real one, so a test can plant rows without touching the shared `warehouse` database."""

from __future__ import annotations

import contextlib
import os
import subprocess

import pytest

from knowdo.config import Settings
from knowdo.db import connect
from tests.conftest import REPO, SAMPLE_FEEDS

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
