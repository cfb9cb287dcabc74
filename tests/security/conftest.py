"""Fixtures for the attacker tests: the running stack, logged-in demo users, warehouse connections.

Superset fixtures come from tests/superset/conftest.py (one login helper for both suites).
"""

from __future__ import annotations

import os

import psycopg
import pytest

from knowdo.superset_access import (
    apply_access,
    demo_password,
    demo_users,
    ensure_users,
    load_access,
)
from knowdo.superset_api import SupersetClient
from tests.superset.conftest import REPO, imported, superset  # noqa: F401  (fixtures)

ACCESS_FILE = REPO / "superset" / "access.yml"
ASSETS = REPO / "superset" / "assets"
SPEC = load_access(ACCESS_FILE)


def warehouse_connect(user: str, password: str, **kwargs) -> psycopg.Connection:
    env = os.environ
    return psycopg.connect(
        host=env["KNOWDO_PG_HOST"],
        port=env["KNOWDO_PG_PORT"],
        dbname=env["KNOWDO_WAREHOUSE_DB"],
        user=user,
        password=password,
        connect_timeout=10,
        **kwargs,
    )


def transformer_connect() -> psycopg.Connection:
    """The marts' owner: RLS does not apply to it, so it reads the truth."""
    return warehouse_connect("knowdo_transformer", os.environ["KNOWDO_TRANSFORMER_PASSWORD"])


def login_as(base: SupersetClient, username: str) -> SupersetClient:
    client = SupersetClient(base.base_url, username, demo_password())
    client.login()
    return client


@pytest.fixture(scope="session")
def access_applied(superset, imported):  # noqa: F811
    """access.yml applied and the demo users present (what `make up` does)."""
    report = apply_access(superset, ACCESS_FILE, ASSETS)
    ensure_users(superset, demo_users(SPEC))
    return report
