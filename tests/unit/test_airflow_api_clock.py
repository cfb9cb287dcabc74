"""The Airflow REST client logs in on its first call whatever the machine's uptime.

A monotonic clock starts near zero at boot: a client that took "logged in at 0.0" for a fresh token
never logged in during a machine's first ten minutes (`make up` on a new VM failed with HTTP 401).
Both tests talk to a small local HTTP server that answers like Airflow's token endpoint and refuses
any API call without the bearer token it issued.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from knowdo import airflow_api
from knowdo.airflow_api import AirflowClient

TOKEN = "token-issued-by-the-test-server"


class _AirflowLike(BaseHTTPRequestHandler):
    logins = 0

    def log_message(self, *args) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:
        if self.path == "/auth/token":
            type(self).logins += 1
            self._send(201, {"access_token": TOKEN})
        else:
            self._send(404, {"detail": "Not Found"})

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._send(401, {"detail": "Not authenticated"})
        else:
            self._send(200, {"dag_id": self.path.rsplit("/", 1)[-1]})


@pytest.fixture
def airflow_like():
    _AirflowLike.logins = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AirflowLike)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_first_call_logs_in_when_the_clock_is_young(airflow_like, monkeypatch):
    clock = [3.0]  # seconds since boot
    monkeypatch.setattr(airflow_api.time, "monotonic", lambda: clock[0])
    client = AirflowClient(airflow_like, "admin", "admin")
    assert client.dag("knowdo_ingest") == {"dag_id": "knowdo_ingest"}
    assert _AirflowLike.logins == 1
    clock[0] += airflow_api.TOKEN_REFRESH_S - 1
    client.dag("knowdo_ingest")
    assert _AirflowLike.logins == 1, "a fresh token is reused"
    clock[0] += 2
    client.dag("knowdo_ingest")
    assert _AirflowLike.logins == 2, "an old token is renewed"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason=(
        "a time namespace needs root and util-linux unshare; the fake-clock test above covers"
        " the logic"
    ),
)
def test_client_works_in_a_time_namespace_started_seconds_ago(airflow_like):
    uptime = float(Path("/proc/uptime").read_text().split()[0])
    offset = int(uptime) - 2  # the child's monotonic clock reads ~2 s
    code = (
        "import time, sys; from knowdo.airflow_api import AirflowClient;"
        "assert time.monotonic() < 60, time.monotonic();"
        f"print(AirflowClient({airflow_like!r}, 'admin', 'admin').dag('knowdo_ingest'))"
    )
    result = subprocess.run(
        [
            "unshare",
            "--time",
            f"--monotonic=-{offset}",
            f"--boottime=-{offset}",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "knowdo_ingest" in result.stdout
    assert _AirflowLike.logins == 1
