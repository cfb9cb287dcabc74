"""Faults against a real supervised stack (issue 12, "Services that come back by themselves").

One scratch stack (tests/faults/conftest.py: own folder, cluster and ports, Airflow under supervisord,
the watchdog checking every 3 s) takes, in order:
  * PostgreSQL stopped for ~10 s while Airflow runs: every Airflow program is RUNNING again within a
    bounded time, the API reports a healthy scheduler, and ops.alerts holds the outage;
  * `kill -9` of the scheduler during a run: supervisord restarts it and the LocalExecutor workers of
    the killed one are ended (none left holding memory and connections);
  * `stack.sh stop`: no process of the stack is left, and nothing else was stopped.
"""

from __future__ import annotations

import os
import signal
import time

import psycopg
import pytest
import requests

pytestmark = [pytest.mark.faults, pytest.mark.integration]

AIRFLOW_PROGRAMS = ("airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer")


def all_running(stack, programs=(*AIRFLOW_PROGRAMS, "knowdo-watchdog")):
    states = stack.programs()
    return states if all(states.get(p, ("?",))[0] == "RUNNING" for p in programs) else None


def scheduler_healthy(stack) -> bool:
    try:
        r = requests.get(f"http://127.0.0.1:{stack.ports['airflow']}/api/v2/monitor/health", timeout=5)
        return r.ok and r.json().get("scheduler", {}).get("status") == "healthy"
    except (requests.RequestException, ValueError):
        return False


def no_strays(stack) -> bool:
    from knowdo.stack_processes import strays, supervised_pids

    supervisor = supervised_pids(str(stack.local))
    return bool(supervisor) and not strays(stack.processes(), supervisor)


def transformer(stack) -> psycopg.Connection:
    return psycopg.connect(f"postgresql://knowdo_transformer:{stack.full_env['KNOWDO_TRANSFORMER_PASSWORD']}"
                           f"@127.0.0.1:{stack.ports['pg']}/{stack.full_env['KNOWDO_WAREHOUSE_DB']}",
                           connect_timeout=5)


@pytest.mark.timeout(420)
def test_airflow_comes_back_after_a_database_outage_and_the_outage_is_alerted(airflow_stack):
    stack = airflow_stack
    before = stack.wait_for("every Airflow program RUNNING", lambda: all_running(stack), 120)
    stack.wait_for("a healthy scheduler", lambda: scheduler_healthy(stack), 120)
    with transformer(stack) as conn:
        (db_now,) = conn.execute("select now()").fetchone()

    stopped = stack.stack("stop-pg", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(10)
    started = stack.stack("start-pg", timeout=120)
    assert started.returncode == 0, started.stderr

    after = stack.wait_for("every Airflow program RUNNING again",
                           lambda: (s := all_running(stack)) and s != before and s, 240, every=3)
    # the outage did take services down (the issue: they exited and nothing restarted them) ...
    restarted = [p for p in AIRFLOW_PROGRAMS if after[p][1] != before[p][1]]
    assert restarted, f"no Airflow program was restarted: {before} -> {after}"
    # ... and they work again
    stack.wait_for("a healthy scheduler after the outage", lambda: scheduler_healthy(stack), 120)

    def outage_alert():
        with transformer(stack) as conn:
            return conn.execute("select subject, body from ops.alerts where kind = 'db_outage'"
                                " and raised_at > %s", (db_now,)).fetchall()

    # whatever the exited services left (e.g. the dag-processor's `dbt ls`) does not outlive them
    stack.wait_for("no process of the stack outside supervision", lambda: no_strays(stack), 90)
    alerts = stack.wait_for("a db_outage alert in ops.alerts", outage_alert, 60)
    assert len(alerts) == 1, alerts  # one outage, one alert
    subject, body = alerts[0]
    assert subject.startswith("PostgreSQL was unreachable for"), subject
    assert "From " in body and " to " in body


@pytest.mark.timeout(420)
def test_a_killed_scheduler_is_restarted_and_its_workers_do_not_outlive_it(airflow_stack):
    stack = airflow_stack
    from knowdo.airflow_api import AirflowClient

    stack.wait_for("every Airflow program RUNNING", lambda: all_running(stack), 180)
    stack.wait_for("a healthy scheduler", lambda: scheduler_healthy(stack), 120)
    # LocalExecutor workers are forked by the scheduler when it starts (one per parallelism slot)
    old_pid = stack.programs()["airflow-scheduler"][1]
    workers = stack.wait_for(
        "the scheduler's LocalExecutor workers",
        lambda: [p for p in stack.processes("airflow-scheduler") if p.ppid == old_pid], 120)
    client = AirflowClient(f"http://127.0.0.1:{stack.ports['airflow']}", "admin",
                           stack.full_env["KNOWDO_AIRFLOW_ADMIN_PASSWORD"])
    if stack.wait_for("the feed-health DAG parsed", lambda: client.dag("knowdo_feed_health"), 180):
        client.trigger("knowdo_feed_health")  # a run in flight when the scheduler dies

    os.kill(old_pid, signal.SIGKILL)

    new = stack.wait_for(
        "a new scheduler RUNNING",
        lambda: (s := stack.programs().get("airflow-scheduler")) and s[0] == "RUNNING" and s[1] != old_pid and s,
        120, every=2)
    assert new[1] != old_pid

    def orphans_gone():
        alive = []
        for w in workers:
            try:
                os.kill(w.pid, 0)
                with open(f"/proc/{w.pid}/stat", encoding="ascii") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                        alive.append(w.pid)
            except (ProcessLookupError, FileNotFoundError):
                pass
        return not alive

    stack.wait_for(f"the killed scheduler's workers {[w.pid for w in workers]} ended", orphans_gone, 60)
    stack.wait_for("no process of the stack outside supervision", lambda: no_strays(stack), 60)
    status = stack.stack("status", timeout=60)
    assert "NOT under supervision" not in status.stdout, status.stdout
    stack.wait_for("a healthy scheduler after the restart", lambda: scheduler_healthy(stack), 120)


@pytest.mark.timeout(240)
def test_stop_leaves_no_process_of_the_stack_and_nothing_else_is_stopped(airflow_stack):
    stack = airflow_stack
    programs = stack.wait_for("every Airflow program RUNNING", lambda: all_running(stack), 180)
    ours = {p.pid for p in stack.processes()}
    # the check sees the services themselves (and their children: workers, parsers)
    assert {pid for _, pid in programs.values() if pid} <= ours, (programs, ours)
    supervisord = int((stack.local / "run" / "supervisord.pid").read_text())
    # the services of every other stack on this machine (the shared one, other checkouts' scratch
    # stacks): group leaders running Airflow, gunicorn or PostgreSQL for more than ten minutes (on a
    # shared machine another stack may stop a younger one by itself meanwhile)
    others = {pid: cmd for pid, cmd in long_lived_services().items() if pid not in ours}

    stopped = stack.stack("stop", timeout=180)
    assert stopped.returncode == 0, stopped.stderr

    left = [pid for pid in [*ours, supervisord] if alive(pid)]
    assert not left, f"processes of the stack left after stop: {left}"
    assert not stack.processes(), stack.processes()
    assert not (stack.local / "pg" / "data" / "postmaster.pid").exists()
    lost = {pid: cmd for pid, cmd in others.items() if not alive(pid)}
    assert not lost, f"stop ended services that were not the stack's: {lost}"


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def long_lived_services(min_age: float = 600) -> dict[int, str]:
    import psutil

    found = {}
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        try:
            cmd = " ".join(proc.info["cmdline"] or [])
            if (os.getpgid(proc.pid) == proc.pid and time.time() - proc.info["create_time"] > min_age
                    and any(w in cmd for w in ("airflow", "gunicorn", "postgres"))
                    and "airflow worker" not in cmd):  # a task process ends by itself
                found[proc.pid] = cmd[:120]
        except (OSError, psutil.Error):
            continue
    return found
