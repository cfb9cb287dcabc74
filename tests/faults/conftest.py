"""Fixtures of the fault tests (issue 12).

* `main_stack`: the checkout's own stack (cluster, Airflow, Superset, watchdog under supervisord),
  the one `make up` runs and the rest of the session uses: one stack, shared by the fault modules.
* `clean_fingerprint`: the warehouse after the session's clean run (`pipeline_run`), fingerprinted
  once (tests/faults/fingerprint.py); every fault test ends by comparing with it.
* `ScratchStack`: a folder, cluster and free ports of its own, for start-ups that must fail before
  anything starts (a taken port) without touching the main stack.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

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


# the watchdog of the main stack as the fault tests run it: checks every 5 s, a run is stalled after 30 s
FAULT_SETTINGS = {"KNOWDO_WATCHDOG_INTERVAL": "5", "KNOWDO_STALL_MINUTES": "0.5"}


@pytest.fixture(scope="module")
def main_stack(cluster):
    """The main stack of this checkout (the session's cluster, its Airflow, Superset and watchdog under
    supervisord), started as `make up` starts it, with the watchdog's FAULT_SETTINGS. Left running,
    restarted with the session's own settings: later tests use it."""
    stack = Stack(REPO / ".local", {**os.environ, **FAULT_SETTINGS})
    started = stack.stack("start", timeout=900)
    assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
    yield stack
    stack.stack("start-pg", timeout=120)
    # the rest of the session runs with the stack's own settings, not the fault tests' fast watchdog
    Stack(REPO / ".local", dict(os.environ)).stack("start", timeout=900)


# --- the warehouse of the main stack: one clean run, fingerprinted once per session -------------------
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


@pytest.fixture(scope="session")
def clean_fingerprint(request, cluster, settings):
    """The warehouse as a clean run leaves it: every sample file loaded once (the ingest DAG's own
    function for every feed; idempotent) and the marts published from exactly those raw rows. When the
    marts are not current, the session's `pipeline_run` (the ingest and transform DAGs, shared with
    tests/e2e) builds them; otherwise the last transform already did, and a rebuild would change
    nothing. Fingerprinted once: every mart, raw and ops table (tests/faults/fingerprint.py)."""
    ingest_every_feed(settings)
    if not marts_current(settings):
        for name, proc in request.getfixturevalue("pipeline_run").items():
            assert proc.returncode == 0, (
                f"the clean {name} run failed:\n{(proc.stdout + proc.stderr)[-3000:]}"
            )
        assert marts_current(settings), "after the clean run the marts are still not current"
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
