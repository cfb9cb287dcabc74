"""Watchdog of the local stack: a database outage and a stalled Airflow run each raise an alert.

Run by supervisord as the program `knowdo-watchdog` (infra/local/stack.sh); every
`KNOWDO_WATCHDOG_INTERVAL` seconds (30) it checks:

* PostgreSQL reachable (a connection as the transformer, who writes ops.alerts). An outage is
  recorded when it ends — while it lasts there is no database to write to — as one `db_outage` alert
  with its start, end and duration. Its start is kept in .local/run/watchdog.json, so an outage
  survives a restart of the watchdog itself.
* Processes of the stack left outside supervision (children of a service that exited): ended.
* Runs of the KnowDo DAGs that are running with tasks scheduled or queued while no task instance
  changed state for `KNOWDO_STALL_MINUTES` (10): one `stalled_run` alert per stalled run, not one
  per check (a run that moves again and stalls again is alerted again).

The decisions are pure functions (`db_step`, `stall_step`), unit-tested in
tests/unit/test_watchdog.py.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from knowdo.airflow_api import AirflowAPIError
from knowdo.alerts import Alert, raise_alert
from knowdo.config import Settings

log = logging.getLogger("knowdo.watchdog")

DAG_IDS = ("knowdo_ingest", "knowdo_transform", "knowdo_feed_health")
WAITING = frozenset({"scheduled", "queued"})


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat(timespec="seconds")


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    minutes, secs = divmod(seconds, 60)
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


# --- database outage ------------------------------------------------------------------------------
def db_step(
    down_since: str | None, reachable: bool, now: datetime, error: str | None = None
) -> tuple[str | None, Alert | None]:
    """Next `down_since` and the alert to raise, given whether the database answered now (pure).

    Down: the outage's start is kept (the first failed check). Up again after an outage: one alert,
    with the start, end and duration (the database was down while it happened, so it is written
    now).
    """
    if not reachable:
        if down_since is None:
            log.error(
                "PostgreSQL is unreachable (%s): the outage is recorded in ops.alerts when it ends",
                error or "no answer",
            )
            return _iso(now), None
        return down_since, None
    if down_since is None:
        return None, None
    start = _parse(down_since)
    seconds = max(0.0, (now - start).total_seconds())
    alert = Alert(
        "db_outage",
        f"PostgreSQL was unreachable for {_duration(seconds)}",
        f"From {_iso(start)} (first failed check) to {_iso(now)} (first check that answered),"
        f" {seconds:.0f} s. Airflow's services exit when their database goes away; supervisord"
        " restarts them with backoff ('make status' shows their state). Runs in flight carry on;"
        " a task that failed during the outage is retried or shown as failed in Airflow.",
        about=f"db-outage-{_iso(start)}",
    )
    return None, alert


# --- stalled runs ---------------------------------------------------------------------------------
def run_fingerprint(task_instances: Iterable[Mapping]) -> str:
    """What changes whenever any task instance of the run changes state or is tried again."""
    items = sorted(
        (
            str(ti.get("task_id")),
            int(ti.get("map_index", -1) if ti.get("map_index") is not None else -1),
            str(ti.get("state")),
            int(ti.get("try_number") or 0),
        )
        for ti in task_instances
    )
    return hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()[:24]


def waiting_tasks(task_instances: Iterable[Mapping]) -> int:
    return sum(1 for ti in task_instances if ti.get("state") in WAITING)


@dataclass
class RunSeen:
    fingerprint: str
    since: str  # when the fingerprint last changed
    alerted: bool = False

    def to_json(self) -> dict:
        return {"fingerprint": self.fingerprint, "since": self.since, "alerted": self.alerted}

    @classmethod
    def from_json(cls, data: Mapping) -> RunSeen:
        return cls(str(data["fingerprint"]), str(data["since"]), bool(data.get("alerted")))


def stall_step(
    seen: RunSeen | None,
    fingerprint: str,
    waiting: int,
    now: datetime,
    stall_after: timedelta,
    dag_id: str,
    run_id: str,
    states: Mapping[str, int] | None = None,
) -> tuple[RunSeen, Alert | None]:
    """Next record of a running run and the alert to raise (pure).

    A change of any task's state resets the clock (and re-arms the alert); a run with tasks waiting
    (scheduled/queued) and no change for `stall_after` raises one alert, then none until it moves.
    """
    if seen is None or seen.fingerprint != fingerprint:
        return RunSeen(fingerprint, _iso(now)), None
    if seen.alerted or waiting == 0:
        return seen, None
    still = now - _parse(seen.since)
    if still < stall_after:
        return seen, None
    counts = ", ".join(f"{n} {s}" for s, n in sorted((states or {}).items()))
    alert = Alert(
        "stalled_run",
        f"{dag_id} run {run_id} has not moved for {_duration(still.total_seconds())}",
        f"No task instance changed state since {seen.since} while {waiting} task(s) are"
        f" scheduled or queued ({counts or 'states unknown'}). Check that the scheduler runs"
        " ('make status'; supervisord restarts it) and its log (.local/log/airflow-scheduler.log);"
        " 'make up' resumes the main job.",
        about=f"{dag_id}/{run_id}",
    )
    return RunSeen(seen.fingerprint, seen.since, alerted=True), alert


# --- the loop -------------------------------------------------------------------------------------
@dataclass
class State:
    db_down_since: str | None = None
    runs: dict[str, RunSeen] | None = None
    airflow_error: str | None = None  # not saved: only keeps the log quiet while Airflow is down

    @classmethod
    def load(cls, path: Path) -> State:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(
                data.get("db_down_since"),
                {k: RunSeen.from_json(v) for k, v in (data.get("runs") or {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError):
            return cls(None, {})

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {
                    "db_down_since": self.db_down_since,
                    "runs": {k: v.to_json() for k, v in (self.runs or {}).items()},
                },
                indent=1,
            ),
            encoding="utf-8",
        )
        os.replace(tmp, path)


def database_reachable(settings: Settings) -> tuple[bool, str | None]:
    import psycopg

    try:
        with psycopg.connect(settings.transformer_url, connect_timeout=5) as conn:
            conn.execute("select 1")
        return True, None
    except psycopg.Error as exc:
        return False, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def check_runs(state: State, client, now: datetime, stall_after: timedelta) -> list[Alert]:
    alerts, current = [], {}
    for dag_id in DAG_IDS:
        try:
            runs = client.request(
                "GET", f"/dags/{dag_id}/dagRuns", params={"state": "running", "limit": 50}
            ).get("dag_runs", [])
        except AirflowAPIError as exc:
            if "HTTP 404" in str(exc):  # not parsed yet (a fresh stack): no runs
                continue
            raise
        for run in runs:
            run_id = run["dag_run_id"]
            tis = client.task_instances(dag_id, run_id)
            states: dict[str, int] = {}
            for ti in tis:
                states[str(ti.get("state"))] = states.get(str(ti.get("state")), 0) + 1
            key = f"{dag_id}/{run_id}"
            seen, alert = stall_step(
                (state.runs or {}).get(key),
                run_fingerprint(tis),
                waiting_tasks(tis),
                now,
                stall_after,
                dag_id,
                run_id,
                states,
            )
            current[key] = seen
            if alert:
                alerts.append(alert)
    state.runs = current  # runs no longer running are forgotten
    return alerts


def check_once(state: State, settings: Settings, client, stall_after: timedelta) -> list[Alert]:
    now = datetime.now(UTC)
    up, error = database_reachable(settings)
    state.db_down_since, outage = db_step(state.db_down_since, up, now, error)
    alerts = [outage] if outage else []
    if up:
        try:
            alerts += check_runs(state, client, now, stall_after)
            if state.airflow_error:
                log.info("Airflow answers again: runs are checked")
            state.airflow_error = None
        except Exception as exc:  # noqa: BLE001 — Airflow restarting after an outage is not a crash
            if state.airflow_error is None:  # said once, not every check while Airflow is down
                log.warning(
                    "Airflow runs not checked (said once until it answers): %s",
                    str(exc).splitlines()[0] if str(exc) else exc,
                )
            state.airflow_error = str(exc) or type(exc).__name__
    for alert in alerts:
        raise_alert(alert, settings, repeat_hours=24 if alert.kind == "stalled_run" else None)
    end_strays(settings)
    return alerts


def end_strays(settings: Settings) -> list:
    """End the stack's processes left outside supervision: the children of a service that exited (a
    dag-processor's `dbt ls` when the database went away, the task processes of a killed scheduler's
    workers). Only when this watchdog runs under the live supervisord, so a missing pid file can
    never make every service look like a stray."""
    from knowdo.stack_processes import kill, stack_processes, strays, supervised_pids

    supervisor = supervised_pids(str(settings.local_dir))
    if os.getppid() not in supervisor:
        return []
    left = strays(stack_processes(str(settings.local_dir)), supervisor)
    if left:
        log.warning(
            "ending %d process(es) of the stack left outside supervision: %s",
            len(left),
            "; ".join(f"{p.pid} {p.program} {p.command[:80]}" for p in left),
        )
        kill(left)
    return left


def main(argv: list[str] | None = None) -> int:
    """`knowdo watchdog`: check PostgreSQL and the DAG runs every KNOWDO_WATCHDOG_INTERVAL
    seconds."""
    import argparse

    argparse.ArgumentParser(prog="knowdo watchdog", description=main.__doc__).parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stdout,
    )
    from knowdo.airflow_api import AirflowClient

    settings = Settings.from_env()
    interval = settings.watchdog_interval_s
    stall_after = timedelta(minutes=settings.stall_minutes)
    state_file = settings.local_dir / "run" / "watchdog.json"
    client = AirflowClient(
        settings.airflow_url, settings.airflow_user, settings.airflow_password, timeout=15
    )
    state = State.load(state_file)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    log.info(
        "watching PostgreSQL and the runs of %s every %.0f s (stalled after %s)",
        ", ".join(DAG_IDS),
        interval,
        stall_after,
    )
    while not stop:
        check_once(state, settings, client, stall_after)
        state.save(state_file)
        deadline = time.monotonic() + interval
        while not stop and time.monotonic() < deadline:
            time.sleep(0.5)
    return 0
