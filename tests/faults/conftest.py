"""A scratch stack of its own for the fault tests: its own .local folder, PostgreSQL cluster and free
ports, Airflow supervised by supervisord (Superset left out: KNOWDO_START_SUPERSET=0), so a fault
injected here cannot hurt the stack `make up` runs."""

from __future__ import annotations

import os
import re
import shutil
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


class ScratchStack:
    def __init__(self, local: Path, **extra: str):
        self.local = local
        self.ports = {"pg": free_port(), "airflow": free_port(), "superset": free_port()}
        base = {k: v for k, v in os.environ.items() if not k.startswith(DERIVED)}
        self.env = {**base, "KNOWDO_LOCAL_DIR": str(local), "KNOWDO_PG_PORT": str(self.ports["pg"]),
                    "KNOWDO_AIRFLOW_PORT": str(self.ports["airflow"]),
                    "KNOWDO_SUPERSET_PORT": str(self.ports["superset"]),
                    "KNOWDO_PG_DATA": str(local / "pg" / "data"),
                    "KNOWDO_PG_SOCKET_DIR": str(local / "pg" / "run"),
                    "KNOWDO_START_SUPERSET": "0", "KNOWDO_WATCHDOG_INTERVAL": "3", **extra}
        # the full environment env.sh makes of it (as `make` and supervisord see it)
        out = subprocess.run(["bash", "-c", f"source {REPO}/infra/local/env.sh && env -0"], env=self.env,
                             check=True, capture_output=True).stdout
        self.full_env = dict(i.split("=", 1) for i in out.decode().split("\0") if "=" in i)

    def stack(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(STACK), *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def supervisorctl(self, *args: str) -> str:
        return subprocess.run([str(REPO / ".venv" / "bin" / "supervisorctl"), "-c",
                               str(self.local / "supervisor" / "supervisord.conf"), *args],
                              capture_output=True, text=True, timeout=60, check=False).stdout

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
                pytest.fail(f"{what} not within {timeout:.0f}s; supervisorctl status:\n"
                            f"{self.supervisorctl('status')}")
            time.sleep(every)

    def processes(self, program: str | None = None):
        from knowdo.stack_processes import stack_processes

        return stack_processes(str(self.local), program)


def scratch_dir() -> Path:
    # under the checkout's .local: the cluster's owner (`postgres` when root) must reach it
    local = REPO / ".local" / f"fault-{uuid.uuid4().hex[:8]}"
    local.mkdir(parents=True)
    return local


@pytest.fixture(scope="module")
def airflow_stack():
    """Set up and start a scratch Airflow stack once for a module; stopped and removed after it."""
    stack = ScratchStack(scratch_dir())
    try:
        setup = stack.stack("setup", timeout=600)
        assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-2000:]
        start = stack.stack("start", timeout=300)
        assert start.returncode == 0, start.stdout[-2000:] + start.stderr[-2000:]
        yield stack
    finally:
        stack.stack("stop", timeout=180)
        shutil.rmtree(stack.local, ignore_errors=True)
