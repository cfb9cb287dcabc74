"""The feed-health DAG on a fresh install, in a real Airflow run (`airflow dags test`) against a
scratch warehouse with nothing loaded: the short-circuit task says why there is nothing to check,
the checks and notify are skipped, the run succeeds and no alert is recorded."""

from __future__ import annotations

import subprocess

import psycopg
import pytest

from knowdo.db import connect
from tests.conftest import REPO
from tests.helpers.scratch_warehouse import create_scratch_warehouse, scratch_settings

pytestmark = pytest.mark.e2e
SCRATCH_DB = "knowdo_test_feed_health_dag"
DAG_ID = "knowdo_feed_health"


@pytest.fixture(scope="module")
def fresh_run(cluster):
    env = create_scratch_warehouse(SCRATCH_DB, load_samples=False, seeds=False)
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), "dags", "test", DAG_ID],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        check=False,
    )
    metadata = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
    with psycopg.connect(metadata) as conn:
        states = dict(
            conn.execute(
                "select task_id, state from task_instance where dag_id = %s and run_id = ("
                " select run_id from dag_run where dag_id = %s order by id desc limit 1)",
                (DAG_ID, DAG_ID),
            ).fetchall()
        )
    with scratch_settings(SCRATCH_DB) as settings, connect(settings.transformer_url) as conn:
        alerts = conn.execute("select kind, subject from ops.alerts").fetchall()
    return proc, states, alerts


def test_nothing_loaded_skips_the_checks_and_the_run_succeeds(fresh_run):
    proc, states, alerts = fresh_run
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "feed health: nothing to check: no file has been received yet" in out, out[-3000:]
    assert states == {
        "anything_to_check": "success",
        "source_freshness": "skipped",
        "late_submitters": "skipped",
        "notify": "skipped",
    }
    assert alerts == []
