"""Faults that involve the transform and the main job, on the running main stack (issue 12):
PostgreSQL stopped and started in the middle of the transform DAG, the main job with Superset down,
the main job's first Airflow calls under a young monotonic clock (a freshly booted machine), a
caller's own variable not restarting the stack. The stack is started once with the fault settings
for every fault module (`main_stack`) and restarted with the session's after the last.

They compare with a full clean run (`clean_fingerprint`, tests/faults/conftest.py: every sample file
loaded once and the marts published from exactly those raw rows by a transform run of this stack's
scheduler). The tests run in file order; each leaves the stack healthy for the next and is bounded
in time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO
from tests.faults.conftest import (
    CAN_UNSHARE_TIME,
    INGEST,
    TRANSFORM,
    all_running,
    db_now,
    fingerprint_now,
    healed_after_outage,
    outage,
    task_running,
    young_clock,
)
from tests.faults.fingerprint import assert_same

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


def transform_run_in_flight(client, wait: float = 15) -> dict:
    """A transform run queued or running (one the ingest of an earlier test scheduled, created once
    the DAG is unpaused), or one triggered here."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        active = [
            r for r in client.latest_runs(TRANSFORM, limit=5) if r["state"] in ("queued", "running")
        ]
        if active:
            return active[0]
        time.sleep(2)
    return client.trigger(TRANSFORM)


# --- PostgreSQL stopped in the middle of the transform DAG ---------------------------------------
@pytest.mark.timeout(1500, func_only=True)
def test_postgres_outage_mid_transform_dag(main_stack, clean_fingerprint, client, settings):
    stack = main_stack
    before = stack.wait_for("every service RUNNING", lambda: all_running(stack), 300)
    run = transform_run_in_flight(client)
    since = db_now(settings)
    # in the middle: dbt's build is running (its producer task, or a model's task) and some tasks
    # of the run have already succeeded
    stack.wait_for(
        "dbt running after some tasks succeeded",
        lambda: task_running(client, TRANSFORM, run["dag_run_id"], "dbt.", at_least_done=2),
        600,
        every=1,
    )

    outage(stack)

    healed_after_outage(stack, client, settings, TRANSFORM, run["dag_run_id"], before, since, 1200)
    assert_same(
        clean_fingerprint,
        fingerprint_now(settings),
        "PostgreSQL stopped mid-transform DAG and the rerun",
    )


# --- the main job with Superset down -------------------------------------------------------------
@pytest.mark.timeout(300, func_only=True)
def test_main_job_with_superset_down_names_the_service_and_its_log_fast(
    main_stack, client, settings
):
    """The main job checks Superset before it triggers anything: with nothing answering at
    Superset's address it stops within seconds (it used to run the whole pipeline, then wait 180 s),
    naming the service, its log and what to do."""
    stack = main_stack
    stack.supervisorctl("stop", "superset")
    try:
        ingest_runs = {r["dag_run_id"] for r in client.latest_runs(INGEST, limit=20)}
        started = time.monotonic()
        proc = subprocess.run(
            [str(REPO / ".venv" / "bin" / "knowdo"), "main-job"],
            env={**os.environ, "COLUMNS": "300"},
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        took = time.monotonic() - started
        text = proc.stdout + proc.stderr
        message = " ".join(text.split())
        assert proc.returncode == 1, text
        assert "Superset is not running" in message, text
        assert settings.superset_url.rstrip("/") in message or "127.0.0.1" in message, text
        assert ".local/log/superset.log" in message and "make up" in message, text
        assert "Traceback" not in text, text
        assert took < 60, f"{took:.0f}s to say Superset is down:\n{text}"
        # it said so before triggering anything
        assert {r["dag_run_id"] for r in client.latest_runs(INGEST, limit=20)} == ingest_runs
    finally:
        stack.supervisorctl("start", "superset")
    stack.wait_for("Superset RUNNING again", lambda: all_running(stack, ("superset",)), 240)


# --- `make up` on a freshly booted machine ------------------------------------------------------
# The main job's first Airflow calls (knowdo.mainjob.airflow_ready: log in, wait for the DAGs,
# unpause) against the real api-server, in a Linux time namespace whose monotonic clock reads a few
# seconds (`unshare --time`). The REST client once took "logged in at 0.0" for a fresh token and
# never logged in during a machine's first ten minutes (HTTP 401).
# tests/unit/test_airflow_api_clock.py covers the client alone against a local stand-in.
@pytest.mark.skipif(
    not CAN_UNSHARE_TIME,
    reason="a time namespace needs root and util-linux unshare (the unit test with a fake clock"
    " covers the client's logic)",
)
@pytest.mark.timeout(300, func_only=True)
def test_the_main_jobs_first_airflow_calls_work_under_a_young_clock(main_stack, client):
    code = (
        "import time\n"
        "young = time.monotonic()\n"
        "assert young < 60, young\n"
        "from knowdo.config import Settings\n"
        "from knowdo.mainjob import airflow_ready\n"
        "c = airflow_ready(Settings.from_env())\n"
        "print(f'monotonic {young:.1f} s; logged in at {c._token_at:.1f} s; DAGs ready')\n"
    )
    proc = subprocess.run(
        [*young_clock(), sys.executable, "-c", code],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "DAGs ready" in proc.stdout, proc.stdout + proc.stderr[-3000:]
    young, logged_in = re.search(
        r"monotonic ([\d.]+) s; logged in at ([\d.]+) s", proc.stdout
    ).groups()
    # it logged in (HTTP 401 otherwise) while the clock was far below the token's 600 s lifetime
    assert float(young) < 60 and float(logged_in) < 300, proc.stdout


# --- only the settings the services read restart them -------------------------------------------
RESTART = "the stack's settings changed since supervisord started"


def settings_hash(env: dict[str, str]) -> str:
    """stack.sh's own stack_env_hash, run alone (its block, between its markers) under `env`."""
    script = (
        f"source {REPO}/infra/local/env.sh && "
        f"source <(sed -n '/^stack_setting_names() {{/,/^# --- end issue 12 settings hash/p'"
        f" {REPO}/infra/local/stack.sh) && stack_env_hash"
    )
    return subprocess.run(
        ["bash", "-c", script], env=env, capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()


@pytest.mark.timeout(300, func_only=True)
def test_a_callers_own_variable_does_not_restart_the_stack(main_stack):
    stack = main_stack
    before = stack.programs()
    env = {**stack.env, "KNOWDO_FUZZ_EXAMPLES": "7", "PGOPTIONS": "-c statement_timeout=5s"}
    assert settings_hash(env) == settings_hash(stack.env)
    assert settings_hash({**stack.env, "KNOWDO_STALL_MINUTES": "3"}) != settings_hash(stack.env)
    proc = subprocess.run(
        ["bash", str(REPO / "infra" / "local" / "stack.sh"), "start"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert RESTART not in proc.stdout, proc.stdout
    after = stack.programs()
    assert {p: pid for p, (_, pid) in after.items()} == {p: pid for p, (_, pid) in before.items()}
