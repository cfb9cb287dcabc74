"""The main job says at once that Superset is down instead of waiting out its whole timeout."""

from __future__ import annotations

import socket
import time

import pytest

from knowdo.superset_api import SupersetClient, SupersetError


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def test_a_superset_that_is_not_running_is_reported_within_seconds():
    client = SupersetClient(f"http://127.0.0.1:{_closed_port()}", "admin", "admin")
    began = time.monotonic()
    with pytest.raises(
        SupersetError, match="Superset is not running.*connection refused.*start-superset"
    ):
        client.wait_healthy(timeout=120, refused_for=2)
    assert time.monotonic() - began < 30
