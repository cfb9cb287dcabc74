"""Bad starts of the local stack give one clear message, and a rerun after the fix works.

Each test uses a throw-away cluster folder and a free port of its own, so the main stack is
untouched.
"""

import os
import shutil
import socket
import subprocess
import uuid

import pytest

from tests.conftest import REPO, STACK

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def scratch_stack():
    # under the checkout's .local: the cluster's owner (`postgres` when root) must reach it
    local = REPO / ".local" / f"test-stack-{uuid.uuid4().hex[:8]}"
    local.mkdir(parents=True)
    port = free_port()
    env = {
        **os.environ,
        "KNOWDO_LOCAL_DIR": str(local),
        "KNOWDO_PG_PORT": str(port),
        "KNOWDO_PG_DATA": str(local / "pg" / "data"),
        "KNOWDO_PG_SOCKET_DIR": str(local / "pg" / "run"),
    }

    def run(*args):
        return subprocess.run(
            ["bash", str(STACK), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    yield local, port, run
    run("stop")
    shutil.rmtree(local, ignore_errors=True)


def test_port_taken_says_what_to_do_and_rerun_works(scratch_stack):
    local, port, run = scratch_stack
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        proc = run("start-pg")
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert (
        f"port {port} (for PostgreSQL) is already taken" in message and "KNOWDO_PG_PORT" in message
    )
    assert "Traceback" not in proc.stderr
    again = run("start-pg")  # the port is free now
    assert again.returncode == 0, again.stderr
    assert (local / "pg" / "data" / "postmaster.pid").exists()


def test_half_initialised_cluster_is_recovered(scratch_stack):
    local, _port, run = scratch_stack
    data = local / "pg" / "data"
    data.mkdir(parents=True)
    (data / "base").mkdir()  # what an interrupted initdb leaves: files, but no PG_VERSION
    proc = run("start-pg")
    assert proc.returncode == 0, proc.stderr
    assert "half-initialised" in proc.stdout
    assert (data / "PG_VERSION").exists()
