"""Shared fixtures. Integration and e2e tests use the project's own PostgreSQL cluster (started here
when it is not running), real `airflow dags test` runs, real dbt, GX and Superset."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "infra" / "local" / "stack.sh"
SAMPLE_FEEDS = REPO / "sample_feeds"


def _stack_env() -> dict[str, str]:
    """The environment infra/local/env.sh defines (so tests work without `make`)."""
    out = subprocess.run(
        ["bash", "-c", f"source {REPO}/infra/local/env.sh && env -0"],
        check=True,
        capture_output=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)


STACK_ENV = _stack_env()
for _key, _value in STACK_ENV.items():
    if _key.startswith(("KNOWDO_", "AIRFLOW", "DBT_", "SUPERSET_", "GX_")):
        os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def settings():
    from knowdo.config import Settings

    return Settings.from_env()


@pytest.fixture(scope="session")
def cluster():
    """The project's PostgreSQL cluster, started if needed (setup has created it)."""
    subprocess.run(["bash", str(STACK), "start-pg"], check=True, capture_output=True)
    return True


@pytest.fixture
def loader_conn(cluster, settings):
    """A loader connection whose every change is rolled back at the end of the test."""
    from knowdo.db import connect

    with connect(settings.warehouse_url) as conn, conn.transaction(force_rollback=True):
        yield conn


def airflow_dags_test(dag_id: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run a DAG in-process with `airflow dags test`, as a data engineer would."""
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "airflow"), "dags", "test", dag_id],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )


@pytest.fixture(scope="session")
def pipeline_run(cluster):
    """Ingest the sample feeds and run the transform DAG (dbt via cosmos, GX gate, publish) once."""
    ingest = airflow_dags_test("knowdo_ingest")
    transform = airflow_dags_test("knowdo_transform")
    return {"ingest": ingest, "transform": transform}


# --- tiers -------------------------------------------------------------------------------------
# A test that needs the cluster is an integration test whatever its folder, so `make test-fast`
# (-m "not integration ...") never needs a running stack; tests/test_layout.py keeps such tests out
# of tests/unit.
SERVICE_FIXTURES = {"cluster", "loader_conn", "pipeline_run", "superset"}
# Folders whose tests all run against the stack: a fixture can ask for the cluster through
# request.getfixturevalue (tests/dbt's autouse sample_feeds_loaded does), which fixturenames misses.
SERVICE_DIRS = {"dbt", "integration", "e2e", "faults", "security", "superset"}
TESTS_DIR = Path(__file__).resolve().parent


def _in_service_dir(item) -> bool:
    try:
        parts = Path(item.path).resolve().relative_to(TESTS_DIR).parts
    except ValueError:
        return False
    return len(parts) > 1 and parts[0] in SERVICE_DIRS


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by mark
def pytest_collection_modifyitems(items):
    for item in items:
        needs_stack = _in_service_dir(item) or bool(
            SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
        )
        if needs_stack and not any(
            item.get_closest_marker(name) for name in ("integration", "e2e", "browser")
        ):
            item.add_marker(pytest.mark.integration)
