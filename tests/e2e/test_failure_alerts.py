"""A failed task alerts, in a real Airflow run: `airflow dags test knowdo_ingest` with a registry
that cannot be read fails `list_feeds` after its retries, and the shared failure notifier
(knowdo.dag_defaults) records a task_failed alert in ops.alerts naming the DAG, task, run and
why."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def failed_ingest(cluster, settings, tmp_path_factory):
    broken = tmp_path_factory.mktemp("registry") / "registry.yml"
    broken.write_text("feeds: [this is: not, valid yaml\n", encoding="utf-8")
    started = datetime.now(UTC)
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), "dags", "test", "knowdo_ingest"],
        capture_output=True,
        text=True,
        timeout=900,
        # its two retries 1 s apart, not the default 30 s (the alert comes after the last)
        env={**os.environ, "KNOWDO_FEEDS_FILE": str(broken), "KNOWDO_TASK_RETRY_DELAY": "1"},
        check=False,
    )
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        alerts = conn.execute(
            "select kind, subject, about, body, delivered_by from ops.alerts"
            " where raised_at >= %s and subject like 'knowdo_ingest.%%' order by raised_at",
            (started,),
        ).fetchall()
    return proc, broken, alerts


def test_the_ingest_run_fails(failed_ingest):
    proc, _, _ = failed_ingest
    out = proc.stdout + proc.stderr
    assert "state=failed" in out or proc.returncode != 0, out[-3000:]


def test_the_failed_ingest_task_is_alerted_once_after_its_retries(failed_ingest):
    proc, broken, alerts = failed_ingest
    tail = (proc.stdout + proc.stderr)[-3000:]
    assert len(alerts) == 1, f"expected one alert for the failed list_feeds, got {alerts}\n{tail}"
    kind, subject, about, body, delivered_by = alerts[0]
    assert kind == "task_failed"
    assert subject.startswith("knowdo_ingest.list_feeds failed in run ")
    assert about and about in subject  # the run id, for de-duplication
    assert "not valid YAML" in body and str(broken.name) in body, body
    assert delivered_by == ["log"]
