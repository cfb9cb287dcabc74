"""Faults injected into the running main stack (issue 12): PostgreSQL stopped and started in the middle
of the ingest DAG, a stalled run, and `make down` (last: it stops and restarts the stack).

One stack for the whole module (`main_stack`, tests/faults/conftest.py: this checkout's stack under
supervisord, the watchdog checking every 5 s), one clean-run fingerprint for the session
(`clean_ingest_fingerprint`: nothing here transforms). The tests run in file order and each leaves the stack healthy for the next;
each ends with the warehouse equal to the clean run, and each is bounded in time.
"""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime

import psutil
import pytest

from knowdo.airflow_api import AirflowAPIError
from knowdo.db import connect
from tests.conftest import REPO
from tests.faults.conftest import fingerprint_now
from tests.faults.fingerprint import assert_same
from tests.faults.warehouse import batches_of, forget, sample_file

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

INGEST, TRANSFORM = "knowdo_ingest", "knowdo_transform"
AIRFLOW_PROGRAMS = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SERVICES = (*AIRFLOW_PROGRAMS, "superset", "knowdo-watchdog")
LOG_SERVER_PORT = 8793  # Airflow's default log server port: the stack runs none (issue 11)


def _quiet(call):
    """None while Airflow or the database is away (a restart after an outage), else the call's value.
    (requests' errors are OSErrors.)"""
    try:
        return call()
    except (AirflowAPIError, OSError, ValueError):
        return None


def all_running(stack, programs=SERVICES):
    states = stack.programs()
    return states if all(states.get(p, ("?",))[0] == "RUNNING" for p in programs) else None


def db_now(settings) -> datetime:
    with connect(settings.transformer_url) as conn:
        return conn.execute("select now()").fetchone()[0]


def alerts(settings, kind: str, since: datetime) -> list[tuple]:
    with connect(settings.transformer_url) as conn:
        return conn.execute(
            "select subject, about, body from ops.alerts where kind = %s and raised_at >= %s"
            " order by raised_at",
            (kind, since),
        ).fetchall()


def task_running(client, dag_id: str, run_id: str, prefix: str = "", at_least_done: int = 0):
    tis = _quiet(lambda: client.task_instances(dag_id, run_id)) or []
    done = sum(1 for t in tis if t["state"] == "success")
    running = [t for t in tis if t["state"] == "running" and t["task_id"].startswith(prefix)]
    return running if running and done >= at_least_done else None


def finished(client, dag_id: str, run_id: str):
    run = _quiet(lambda: client.dag_run(dag_id, run_id))
    return run if run and run["state"] in ("success", "failed") else None


def outage(stack, seconds: float = 8) -> None:
    """PostgreSQL stopped (pg_ctl -m fast: every connection cut) and started again `seconds` later."""
    stopped = stack.stack("stop-pg", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(seconds)
    started = stack.stack("start-pg", timeout=120)
    assert started.returncode == 0, started.stderr


def run_to_the_end(stack, client, dag_id: str, run_id: str, timeout: float) -> dict:
    """Wait for the run; a run the fault failed is healed by running the DAG again (no manual step)."""
    run = stack.wait_for(
        f"{dag_id} run {run_id} to finish",
        lambda: finished(client, dag_id, run_id),
        timeout,
        every=5,
    )
    if run["state"] == "failed":
        again = client.trigger(dag_id)
        run = stack.wait_for(
            f"the rerun {again['dag_run_id']} of {dag_id}",
            lambda: finished(client, dag_id, again["dag_run_id"]),
            timeout,
            every=5,
        )
        assert run["state"] == "success", f"the rerun of {dag_id} after the fault failed too: {run}"
    return run


def services_came_back(stack, before: dict) -> dict:
    """Every service RUNNING again, and the outage did take some down (they restarted by themselves)."""
    after = stack.wait_for(
        "every service RUNNING again after the outage",
        lambda: (
            (s := all_running(stack))
            and any(s[p][1] != before[p][1] for p in AIRFLOW_PROGRAMS)
            and s
        ),
        300,
        every=3,
    )
    return after


# --- PostgreSQL outages ------------------------------------------------------------------------------
@pytest.mark.timeout(900, func_only=True)
def test_postgres_outage_mid_ingest_dag(main_stack, client, settings, clean_ingest_fingerprint):
    stack = main_stack
    before = stack.wait_for("every service RUNNING", lambda: all_running(stack), 300)
    f = sample_file(
        settings, "population_denominators", "england_icb_population.csv"
    )  # one new file for this run to load
    with connect(settings.warehouse_url) as conn:
        forget(conn, f)
    # the transform this new file schedules waits (paused) for the next test: this one compares an
    # ingest-only warehouse, not one half-way through a transform
    client.request("PATCH", f"/dags/{TRANSFORM}", json={"is_paused": True})
    since = db_now(settings)
    run = client.trigger(INGEST)
    stack.wait_for(
        "an ingest_feed task running",
        lambda: task_running(client, INGEST, run["dag_run_id"], "ingest_feed"),
        300,
        every=0.5,
    )

    outage(stack)

    services_came_back(stack, before)
    run_to_the_end(stack, client, INGEST, run["dag_run_id"], 600)
    found = stack.wait_for(
        "a db_outage alert in ops.alerts", lambda: alerts(settings, "db_outage", since), 120
    )
    assert len(found) == 1, found  # one outage, one alert
    assert found[0][0].startswith("PostgreSQL was unreachable for"), found
    with connect(settings.warehouse_url) as conn:
        assert [b[1] for b in batches_of(conn, f)] == ["loaded"]
    # ingest only: the raw rows are back, exactly once; the marts were not touched
    assert_same(
        clean_ingest_fingerprint, fingerprint_now(settings), "PostgreSQL stopped mid-ingest DAG"
    )


# --- processes and ports --------------------------------------------------------------------------
def listening(port: int) -> list[int]:
    return [
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == psutil.CONN_LISTEN
    ]


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def no_strays(stack) -> bool:
    from knowdo.stack_processes import strays, supervised_pids

    supervisor = supervised_pids(str(stack.local))
    return bool(supervisor) and not strays(stack.processes(), supervisor)


# --- a stalled run ---------------------------------------------------------------------------------
@pytest.mark.timeout(1200, func_only=True)
def test_a_stalled_run_raises_an_alert(main_stack, client, settings):
    """No pool slot: the run's first task stays scheduled, nothing moves; the watchdog (stalled after
    KNOWDO_STALL_MINUTES = 0.5 here) records one stalled_run alert naming the run."""
    stack = main_stack
    slots = client.request("GET", "/pools/default_pool")["slots"]
    since = db_now(settings)
    client.request(
        "PATCH", "/pools/default_pool", params={"update_mask": "slots"}, json={"slots": 0}
    )
    try:
        run = client.trigger(INGEST)
        about = f"{INGEST}/{run['dag_run_id']}"
        found = stack.wait_for(
            "a stalled_run alert",
            lambda: [a for a in alerts(settings, "stalled_run", since) if a[1] == about],
            300,
            every=3,
        )
        assert len(found) == 1, found
        assert "has not moved for" in found[0][0] and "scheduled or queued" in found[0][2], found
    finally:
        client.request(
            "PATCH", "/pools/default_pool", params={"update_mask": "slots"}, json={"slots": slots}
        )
    # it moves again once there is room, and finishes
    assert run_to_the_end(stack, client, INGEST, run["dag_run_id"], 900)["state"] == "success"


# --- make down ----------------------------------------------------------------------------------------
@pytest.mark.timeout(600, func_only=True)
def test_down_stops_every_process_of_the_stack_and_nothing_else(main_stack):
    """Last in the module. The "nothing else" side is a look-alike service started here (its own
    process group and session, named `airflow scheduler`): on a shared machine other stacks start and
    stop by themselves, so only a process this test controls proves anything."""
    stack = main_stack
    stack.wait_for("every service RUNNING", lambda: all_running(stack), 300)
    ours = {p.pid for p in stack.processes()}
    supervisord = int((stack.local / "run" / "supervisord.pid").read_text())
    assert {pid for _, pid in stack.programs().values() if pid} <= ours
    decoy = subprocess.Popen(
        ["bash", "-c", "exec -a 'airflow scheduler' sleep 900"], start_new_session=True
    )
    try:
        down = subprocess.run(
            ["make", "down"],
            cwd=REPO,
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert down.returncode == 0, down.stdout + down.stderr
        left = [pid for pid in [*ours, supervisord] if alive(pid)]
        assert not left, f"processes of the stack left after make down: {left}"
        assert not stack.processes()
        assert not (stack.local / "pg" / "data" / "postmaster.pid").exists()
        assert alive(decoy.pid), "make down ended a process that was not the stack's"
    finally:
        decoy.kill()
        decoy.wait(10)
        # leave the stack running as the module found it (the next fault modules and later tests use
        # it), with the same settings (else the next `stack.sh start` restarts supervisord for them)
        again = stack.stack("start", timeout=900)
        assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
