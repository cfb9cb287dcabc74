"""Start-up checks every port before starting anything (issue 12: with the Superset port taken,
`make up` used to stop only after Airflow had started)."""

from __future__ import annotations

import shutil
import socket

import pytest

from tests.faults.conftest import ScratchStack, scratch_dir

pytestmark = [pytest.mark.faults, pytest.mark.integration]


@pytest.mark.timeout(120)
def test_a_taken_superset_port_stops_start_before_anything_starts():
    stack = ScratchStack(scratch_dir(), KNOWDO_START_SUPERSET="1")
    try:
        port = stack.ports["superset"]
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            proc = stack.stack("start", timeout=90)
        assert proc.returncode != 0
        message = proc.stderr.strip().splitlines()[-1]
        assert f"port {port} (for superset) is already taken" in message, proc.stderr
        assert "KNOWDO_SUPERSET_PORT" in message and "Traceback" not in proc.stderr
        # nothing was started: no PostgreSQL, no supervisord, no Airflow
        assert "starting" not in proc.stdout.lower(), proc.stdout
        assert not (stack.local / "pg" / "data" / "postmaster.pid").exists()
        assert not (stack.local / "run" / "supervisord.pid").exists()
        assert not (stack.local / "log" / "airflow-api-server.log").exists()
        assert not stack.processes()
    finally:
        stack.stack("stop", timeout=120)
        shutil.rmtree(stack.local, ignore_errors=True)


@pytest.mark.timeout(120)
def test_a_taken_airflow_port_stops_start_before_postgresql_starts():
    stack = ScratchStack(scratch_dir())
    try:
        port = stack.ports["airflow"]
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            proc = stack.stack("start", timeout=90)
        assert proc.returncode != 0
        assert f"port {port} (for airflow-api-server) is already taken" in proc.stderr
        assert "KNOWDO_AIRFLOW_PORT" in proc.stderr
        assert not (stack.local / "pg" / "data" / "postmaster.pid").exists()
        assert not (stack.local / "run" / "supervisord.pid").exists()
    finally:
        stack.stack("stop", timeout=120)
        shutil.rmtree(stack.local, ignore_errors=True)


@pytest.mark.timeout(120)
def test_airflow_log_server_ports_are_per_stack_and_checked_before_anything_starts():
    """Airflow's worker and triggerer log-server ports (8793, 8794 for every stack by Airflow's
    defaults) are derived from the stack's Airflow port, and a taken one stops start-up early."""
    stack = ScratchStack(scratch_dir())
    try:
        env = stack.full_env
        worker = int(env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])
        trigger = int(env["AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT"])
        assert (worker, trigger) == (stack.ports["airflow"] + 713, stack.ports["airflow"] + 714)
        # two stacks on one machine: their log-server ports differ
        other = ScratchStack(scratch_dir())
        shutil.rmtree(other.local, ignore_errors=True)
        assert int(other.full_env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]) != worker
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", worker))
            squatter.listen()
            proc = stack.stack("start", timeout=90)
        assert proc.returncode != 0
        assert f"port {worker} (for Airflow's worker log server) is already taken" in proc.stderr
        assert "KNOWDO_AIRFLOW_WORKER_LOG_PORT" in proc.stderr
        assert not (stack.local / "pg" / "data" / "postmaster.pid").exists()
        assert not (stack.local / "run" / "supervisord.pid").exists()
    finally:
        stack.stack("stop", timeout=120)
        shutil.rmtree(stack.local, ignore_errors=True)
