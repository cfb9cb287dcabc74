"""Faults injected into the running main stack (issue 12): PostgreSQL stopped and started in the
middle of the ingest DAG, a stalled run, and `make down` (last: it stops and restarts the stack).

One stack for every fault module (`main_stack`, tests/faults/conftest.py: this checkout's stack
under supervisord, the watchdog checking every 5 s), one clean-run fingerprint for the session
(`clean_ingest_fingerprint`: nothing here transforms). The tests run in file order and each leaves
the stack healthy for the next; each ends with the warehouse equal to the clean run, and each is
bounded in time.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from knowdo.db import connect
from tests.conftest import REPO
from tests.faults.conftest import (
    INGEST,
    TRANSFORM,
    alerts,
    alive,
    all_running,
    db_now,
    fingerprint_now,
    healed_after_outage,
    outage,
    run_to_the_end,
    task_running,
)
from tests.faults.fingerprint import assert_same
from tests.faults.warehouse import batches_of, forget, sample_file

pytestmark = [pytest.mark.faults, pytest.mark.e2e]


# --- PostgreSQL outages ---------------------------------------------------------------------------
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

    healed_after_outage(stack, client, settings, INGEST, run["dag_run_id"], before, since, 600)
    with connect(settings.warehouse_url) as conn:
        assert [b[1] for b in batches_of(conn, f)] == ["loaded"]
    # ingest only: the raw rows are back, exactly once; the marts were not touched
    assert_same(
        clean_ingest_fingerprint, fingerprint_now(settings), "PostgreSQL stopped mid-ingest DAG"
    )


# --- a stalled run --------------------------------------------------------------------------------
@pytest.mark.timeout(1200, func_only=True)
def test_a_stalled_run_raises_an_alert(main_stack, client, settings):
    """No pool slot: the run's first task stays scheduled, nothing moves; the watchdog (stalled
    after KNOWDO_STALL_MINUTES = 0.5 here) records one stalled_run alert naming the run."""
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


# --- make down ------------------------------------------------------------------------------------
@pytest.mark.timeout(600, func_only=True)
def test_down_stops_every_process_of_the_stack_and_nothing_else(main_stack):
    """Last in the module. The "nothing else" side is a look-alike service started here (its own
    process group and session, named `airflow scheduler`): on a shared machine other stacks start
    and stop by themselves, so only a process this test controls proves anything."""
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
