"""Fixtures of the fault tests (issue 12).

* `main_stack`: the checkout's own stack (cluster, Airflow, Superset, watchdog under supervisord),
  the one `make up` runs and the rest of the session uses: one stack, shared by the fault modules.
* `clean_ingest_fingerprint` / `clean_fingerprint`: the warehouse after a clean ingest / a clean run
  (ingest and transform, through the stack's scheduler), fingerprinted
  (tests/faults/fingerprint.py); every fault test ends by comparing with one of them.
* `ScratchStack`: a folder, cluster and free ports of its own, for start-ups that must fail before
  anything starts (a taken port) without touching the main stack.
* the helpers the fault modules share (at the end): services' states, outages, runs followed to the
  end, alerts, listeners and strays.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from knowdo.airflow_api import AirflowAPIError
from knowdo.db import connect
from tests.conftest import REPO, STACK

# the settings env.sh derives from the folder and ports: a scratch stack derives its own
DERIVED = ("KNOWDO_", "AIRFLOW", "DBT_", "SUPERSET_", "GX_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Stack:
    """A local stack seen from a test: its folder, environment, supervisord and processes."""

    def __init__(self, local: Path, env: dict[str, str]):
        self.local = local
        self.env = env
        # the full environment env.sh makes of it (as `make` and supervisord see it)
        out = subprocess.run(
            ["bash", "-c", f"source {REPO}/infra/local/env.sh && env -0"],
            env=self.env,
            check=True,
            capture_output=True,
        ).stdout
        self.full_env = dict(i.split("=", 1) for i in out.decode().split("\0") if "=" in i)
        self.ports = {
            "pg": int(self.full_env["KNOWDO_PG_PORT"]),
            "airflow": int(self.full_env["KNOWDO_AIRFLOW_PORT"]),
            "superset": int(self.full_env["KNOWDO_SUPERSET_PORT"]),
        }

    def stack(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(STACK), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def supervisorctl(self, *args: str) -> str:
        return subprocess.run(
            [
                str(REPO / ".venv" / "bin" / "supervisorctl"),
                "-c",
                str(self.local / "supervisor" / "supervisord.conf"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        ).stdout

    def programs(self) -> dict[str, tuple[str, int | None]]:
        """program -> (state, pid) from `supervisorctl status`."""
        found = {}
        for line in self.supervisorctl("status").splitlines():
            m = re.match(r"(\S+)\s+(\S+)\s*(?:pid (\d+),)?", line)
            if m:
                found[m[1]] = (m[2], int(m[3]) if m[3] else None)
        return found

    def wait_for(self, what: str, predicate, timeout: float, every: float = 2.0):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{what} not within {timeout:.0f}s; supervisorctl status:\n"
                    f"{self.supervisorctl('status')}"
                )
            time.sleep(every)

    def processes(self, program: str | None = None):
        from knowdo.stack_processes import stack_processes

        return stack_processes(str(self.local), program)


class ScratchStack(Stack):
    """A stack of its own: own folder, cluster and free ports (only for what must not touch the main
    stack, e.g. a start refused before anything starts)."""

    def __init__(self, local: Path, **extra: str):
        ports = {"pg": free_port(), "airflow": free_port(), "superset": free_port()}
        base = {k: v for k, v in os.environ.items() if not k.startswith(DERIVED)}
        super().__init__(
            local,
            {
                **base,
                "KNOWDO_LOCAL_DIR": str(local),
                "KNOWDO_PG_PORT": str(ports["pg"]),
                "KNOWDO_AIRFLOW_PORT": str(ports["airflow"]),
                "KNOWDO_SUPERSET_PORT": str(ports["superset"]),
                "KNOWDO_PG_DATA": str(local / "pg" / "data"),
                "KNOWDO_PG_SOCKET_DIR": str(local / "pg" / "run"),
                "KNOWDO_START_SUPERSET": "0",
                "KNOWDO_WATCHDOG_INTERVAL": "3",
                **extra,
            },
        )


def scratch_dir() -> Path:
    # under the checkout's .local: the cluster's owner (`postgres` when root) must reach it
    local = REPO / ".local" / f"fault-{uuid.uuid4().hex[:8]}"
    local.mkdir(parents=True)
    return local


# the watchdog of the main stack as the fault tests run it: checks every 5 s, a run is stalled
# after 30 s. A task whose worker died with a killed scheduler is failed (and retried) once it has
# not heartbeat for 60 s, not Airflow's default 300 s.
FAULT_SETTINGS = {
    "KNOWDO_WATCHDOG_INTERVAL": "5",
    "KNOWDO_STALL_MINUTES": "0.5",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60",
}


@pytest.fixture(scope="package")
def main_stack(cluster):
    """The main stack of this checkout (the session's cluster, its Airflow, Superset and watchdog
    under supervisord), started as `make up` starts it, with the watchdog's FAULT_SETTINGS. Left
    running, restarted with the session's own settings: later tests use it. Once for every fault
    module (each restart of the stack costs a minute or two on 2 cores); each test leaves it
    healthy for the next."""
    stack = Stack(REPO / ".local", {**os.environ, **FAULT_SETTINGS})
    started = stack.stack("start", timeout=900)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    yield stack
    stack.stack("start-pg", timeout=120)
    # the rest of the session runs with the stack's own settings, not the fault tests' fast watchdog
    Stack(REPO / ".local", dict(os.environ)).stack("start", timeout=900)


# --- the warehouse of the main stack: one clean run, fingerprinted once per session ---------------
def fingerprint_now(settings):
    from knowdo.db import connect
    from tests.faults.fingerprint import fingerprint

    with connect(settings.transformer_url) as conn:
        return fingerprint(conn)


def marts_current(settings) -> bool:
    """The published marts were built from exactly the raw rows loaded now: a quality gate published
    after the last batch finished loading, and no batch is loading."""
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        published, loaded, loading = conn.execute(
            "select (select max(checked_at) from ops.quality_gate_runs where published),"
            " (select max(finished_at) from ops.load_batches),"
            " (select count(*) from ops.load_batches where status = 'loading')"
        ).fetchone()
    return published is not None and loading == 0 and (loaded is None or published > loaded)


def ingest_every_feed(settings) -> None:
    """Every sample file, as the ingest DAG's tasks load them (knowdo.pipeline); files already
    received change nothing."""
    from knowdo.pipeline import ingest_feed, list_feeds

    for feed_id in list_feeds():
        ingest_feed(feed_id, settings)


@pytest.fixture(scope="session")
def clean_ingest_fingerprint(cluster, settings):
    """The warehouse after a clean *ingest*: every sample file loaded once; the marts as they are.
    For faults that only ingest (no transform runs in them): the marts must not move either."""
    ingest_every_feed(settings)
    return fingerprint_now(settings)


@pytest.fixture(scope="module")
def clean_fingerprint(main_stack, client, settings):
    """The warehouse as a clean run leaves it: every sample file loaded once (the ingest DAG's own
    function for every feed; idempotent) and the marts published from exactly those raw rows. When
    the marts are not current, the stack's own scheduler builds them: the transform runs in flight
    are followed (one an earlier test's new file scheduled), else one is triggered, as the main job
    does. (Not `airflow dags test`: beside a running scheduler, two dbt builds would race.)
    Fingerprinted once per module: every mart, raw and ops table (tests/faults/fingerprint.py)."""
    ingest_every_feed(settings)
    deadline = time.monotonic() + 1800
    while not marts_current(settings):
        assert time.monotonic() < deadline, "the marts are still not current after 30 minutes"
        active = [
            r
            for r in client.latest_runs("knowdo_transform", limit=10)
            if r["state"] in ("queued", "running")
        ]
        run = active[0] if active else client.trigger("knowdo_transform")
        done = main_stack.wait_for(
            f"the clean transform run {run['dag_run_id']}",
            lambda run_id=run["dag_run_id"]: finished(client, "knowdo_transform", run_id),
            1500,
            every=5,
        )
        assert done["state"] == "success", f"the clean transform run failed: {done}"
    return fingerprint_now(settings)


@pytest.fixture(scope="module")
def client(main_stack, settings):
    """Airflow's REST API of the main stack, once both KnowDo DAGs are parsed (and unpaused)."""
    from knowdo.airflow_api import AirflowAPIError, AirflowClient

    c = AirflowClient(
        settings.airflow_url, settings.airflow_user, settings.airflow_password, timeout=15
    )

    def parsed():
        try:
            return c.dag("knowdo_ingest") and c.dag("knowdo_transform")
        except (AirflowAPIError, OSError):
            return None

    main_stack.wait_for("Airflow to parse the DAGs", parsed, 300)
    for dag_id in ("knowdo_ingest", "knowdo_transform"):
        c.unpause(dag_id)
    return c


# --- helpers shared by the fault modules (tests/test_layout.py: never import another test module) -
INGEST, TRANSFORM = "knowdo_ingest", "knowdo_transform"
AIRFLOW_PROGRAMS = (
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
SERVICES = (*AIRFLOW_PROGRAMS, "superset", "knowdo-watchdog")


def log_server_ports(stack) -> tuple[int, int]:
    """The stack's own worker and triggerer log-server ports (infra/local/env.sh derives them per
    stack; the stack runs no log server: --skip-serve-logs, issue 11)."""
    return (
        int(stack.full_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]),
        int(stack.full_env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"]),
    )


def _quiet(call):
    """None while Airflow or the database is away (a restart after an outage), else the call's
    value. (requests' errors are OSErrors.)"""
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
    """PostgreSQL stopped (pg_ctl -m fast: every connection cut) and started again `seconds`
    later."""
    stopped = stack.stack("stop-pg", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(seconds)
    started = stack.stack("start-pg", timeout=120)
    assert started.returncode == 0, started.stderr


def run_to_the_end(stack, client, dag_id: str, run_id: str, timeout: float) -> dict:
    """Wait for the run; a run the fault failed is healed by running the DAG again (no manual
    step)."""
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
    """Every service RUNNING again, and the outage did take some down (they restarted by
    themselves)."""
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


def healed_after_outage(
    stack, client, settings, dag_id: str, run_id: str, before: dict, since, timeout: float
) -> dict:
    """After `outage`: the services restarted by themselves, the run finished (rerun if the fault
    failed it) and exactly one db_outage alert was raised. Returns the finished run."""
    services_came_back(stack, before)
    run = run_to_the_end(stack, client, dag_id, run_id, timeout)
    found = stack.wait_for(
        "a db_outage alert in ops.alerts", lambda: alerts(settings, "db_outage", since), 120
    )
    assert len(found) == 1, found  # one outage, one alert
    assert found[0][0].startswith("PostgreSQL was unreachable for"), found
    return run


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


# --- a young monotonic clock (a machine booted seconds ago) ---------------------------------------
CAN_UNSHARE_TIME = os.geteuid() == 0 and shutil.which("unshare") is not None


def young_clock(seconds: int = 2) -> list[str]:
    """A command prefix running its command with CLOCK_MONOTONIC and CLOCK_BOOTTIME at
    ~`seconds`."""
    offset = int(float(Path("/proc/uptime").read_text().split()[0])) - seconds
    return ["unshare", "--time", f"--monotonic=-{offset}", f"--boottime=-{offset}"]
