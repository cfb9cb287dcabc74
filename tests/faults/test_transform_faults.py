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

import json
import os
import re
import subprocess
import sys
import time

import pytest
from psycopg import sql

from knowdo.airflow_api import AirflowAPIError
from knowdo.db import connect
from tests.conftest import REPO
from tests.faults.conftest import (
    CAN_UNSHARE_TIME,
    INGEST,
    TRANSFORM,
    all_running,
    db_now,
    fingerprint_now,
    finished,
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


# --- a model that fails in the producer's dbt build, fixed, cleared (issue 14 item 9) ------------
# The fault: the transformer may no longer read one raw table (the loader, its owner, revokes it),
# so the first model that reads it fails in the watcher producer's `dbt build` with PostgreSQL's
# error; its task must fail with that error in its own log after its retries (each rerunning the
# model with dbt on a worker), its downstream must not run and nothing may be published. Then the
# grant is given back and the failed task is cleared with its downstream, as an operator would in
# the UI: the run must end in success with the model rerun by dbt on a worker.
# (raw.template_ngo_outcomes is read through views by one table, fct_outcomes, which has a model
# downstream of it: mart_inequality_measures.)
FAULT_TABLE = "raw.template_ngo_outcomes"
FAILING_TASK = "dbt.fct_outcomes_run"
DOWNSTREAM_TASK = "dbt.mart_inequality_measures_run"
DBT_ERROR = "permission denied for table template_ngo_outcomes"


def task_log(client, run_id: str, task_id: str, try_number: int) -> str:
    """A task's log of one try, through the REST API (what the UI shows), as text."""
    out = client.request(
        "GET",
        f"/dags/{TRANSFORM}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
        params={"full_content": "true"},
    )
    # each line whole: an exception's message is in its line's error_detail, not its event
    return "\n".join(
        json.dumps(line) if isinstance(line, dict) else str(line) for line in out.get("content", [])
    )


def no_transform_in_flight(client) -> bool:
    try:
        runs = client.latest_runs(TRANSFORM, limit=10)
    except (AirflowAPIError, OSError):  # Airflow restarting
        return False
    return not [r for r in runs if r["state"] in ("queued", "running")]


def set_read_grant(settings, grant: bool) -> str:
    """Revoke (or give back) the transformer's SELECT on FAULT_TABLE, as the table's owner."""
    with connect(settings.transformer_url) as conn:
        transformer = conn.info.user
    with connect(settings.warehouse_url) as conn:
        verb = "grant select on {} to {}" if grant else "revoke select on {} from {}"
        conn.execute(
            sql.SQL(verb).format(
                sql.Identifier(*FAULT_TABLE.split(".")), sql.Identifier(transformer)
            )
        )
    return transformer


def gate_runs(settings, run_id: str) -> list[tuple]:
    with connect(settings.transformer_url) as conn:
        return conn.execute(
            "select suite_name, success, published from ops.quality_gate_runs where run_id = %s",
            (run_id,),
        ).fetchall()


@pytest.mark.timeout(2400, func_only=True)
def test_a_model_failing_in_the_build_fails_its_task_and_a_cleared_rerun_succeeds(
    main_stack, clean_fingerprint, client, settings
):
    stack = main_stack
    stack.wait_for("no transform run in flight", lambda: no_transform_in_flight(client), 1500, 5)
    set_read_grant(settings, grant=False)
    try:
        run_id = client.trigger(TRANSFORM)["dag_run_id"]
        failed_run = stack.wait_for(
            f"the transform run {run_id} with the fault to finish",
            lambda: finished(client, TRANSFORM, run_id),
            1500,
            every=5,
        )
        tis = {t["task_id"]: t for t in client.task_instances(TRANSFORM, run_id)}
        logs = [task_log(client, run_id, FAILING_TASK, n) for n in (1, 2, 3)]
    finally:
        set_read_grant(settings, grant=True)
    # (after the grant is back: the fingerprint reads every raw table as the transformer)
    fingerprint_after_failure = fingerprint_now(settings)

    assert failed_run["state"] == "failed", failed_run
    failing = tis[FAILING_TASK]
    # its two retries ran too (DEFAULT_ARGS: retries 2), then it failed
    assert (failing["state"], failing["try_number"]) == ("failed", 3), failing
    # try 1: the producer's result, read by cosmos' sensor on a worker, with dbt's error; tries 2
    # and 3: the model rerun by dbt on a worker, failing with the same error
    assert DBT_ERROR in logs[0] and "finished with status" in logs[0], logs[0][-3000:]
    for log in logs[1:]:
        assert DBT_ERROR in log and "Retry attempt" in log, log[-3000:]
    assert failing["hostname"], "the failed model's task must have run on a worker"
    # downstream of it nothing ran; the gate and publish did not run
    for task in (DOWNSTREAM_TASK, "quality_gate", "publish"):
        assert tis[task]["state"] == "upstream_failed", tis[task]
    assert gate_runs(settings, run_id) == []
    # every other model succeeded in the build and its task ended in the triggerer: no worker
    others = [
        t
        for task_id, t in tis.items()
        if task_id.endswith("_run") and task_id not in (FAILING_TASK, DOWNSTREAM_TASK)
    ]
    assert len(others) > 40 and all(t["state"] == "success" for t in others), [
        (t["task_id"], t["state"]) for t in others if t["state"] != "success"
    ]
    assert [t["task_id"] for t in others if t["hostname"]] == []
    assert_same(clean_fingerprint, fingerprint_after_failure, "a model failing in the build")

    # fixed (the grant is back): the operator clears the failed task and its downstream
    cleared = client.request(
        "POST",
        f"/dags/{TRANSFORM}/clearTaskInstances",
        json={
            "dry_run": False,
            "dag_run_id": run_id,
            "task_ids": [FAILING_TASK],
            "include_downstream": True,
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    assert FAILING_TASK in {t["task_id"] for t in cleared["task_instances"]}, cleared
    rerun = stack.wait_for(
        f"the cleared run {run_id} to finish",
        lambda: (
            (r := finished(client, TRANSFORM, run_id))
            and r["end_date"] != failed_run["end_date"]
            and r
        ),
        1500,
        every=5,
    )
    tis = {t["task_id"]: t for t in client.task_instances(TRANSFORM, run_id)}
    assert rerun["state"] == "success", [
        (t, i["state"]) for t, i in tis.items() if i["state"] != "success"
    ]
    fixed = tis[FAILING_TASK]
    assert (fixed["state"], fixed["try_number"]) == ("success", 4), fixed
    assert fixed["hostname"], "the cleared model must be rerun by dbt on a worker"
    log = task_log(client, run_id, FAILING_TASK, 4)
    assert "Retry attempt" in log and DBT_ERROR not in log, log[-3000:]
    # its downstream model (skipped by dbt in the build) ran with dbt on its first try
    downstream = tis[DOWNSTREAM_TASK]
    assert (downstream["state"], downstream["try_number"]) == ("success", 1), downstream
    assert downstream["hostname"], downstream
    # the gate passed and published this run; the warehouse is the clean run's
    assert gate_runs(settings, run_id) and all(p for _, _, p in gate_runs(settings, run_id))
    assert_same(clean_fingerprint, fingerprint_now(settings), "the failed model fixed and cleared")
