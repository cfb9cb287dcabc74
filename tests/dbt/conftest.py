"""Fixtures for the dbt project's tests: the dbt executable, its environment and a warehouse
connection.

Every setting comes from the environment infra/local/env.sh exports (the Makefile sources it); the
fallbacks are env.sh's local defaults, so `pytest tests/dbt` also works from a bare shell.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

LOCAL_DEFAULTS = {
    "KNOWDO_PG_HOST": "127.0.0.1",
    "KNOWDO_PG_PORT": "55432",
    "KNOWDO_WAREHOUSE_DB": "warehouse",
    "KNOWDO_TRANSFORMER_PASSWORD": "knowdo-transformer-local",
}


def setting(name: str) -> str:
    return os.environ.get(name) or LOCAL_DEFAULTS[name]


@pytest.fixture(scope="session")
def dbt_executable() -> Path:
    venv = Path(os.environ.get("KNOWDO_DBT_VENV", REPO_ROOT / ".venvs" / "dbt"))
    executable = venv / "bin" / "dbt"
    if not executable.exists():
        pytest.fail(f"dbt is not installed at {executable} (infra/local/stack.sh setup creates it)")
    return executable


@pytest.fixture(scope="session")
def dbt_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment dbt runs with: the caller's, completed with env.sh's local defaults."""
    env = dict(os.environ)
    for name in ("KNOWDO_PG_HOST", "KNOWDO_PG_PORT", "KNOWDO_WAREHOUSE_DB"):
        env[name] = setting(name)
    env.setdefault("KNOWDO_DBT_USER", "knowdo_transformer")
    env.setdefault("KNOWDO_DBT_PASSWORD", setting("KNOWDO_TRANSFORMER_PASSWORD"))
    env.setdefault("DBT_PROFILES_DIR", str(DBT_PROJECT_DIR))
    # keep test artefacts out of the shared target folder and the checkout
    env["DBT_TARGET_PATH"] = str(tmp_path_factory.mktemp("dbt_target"))
    env["DBT_LOG_PATH"] = str(tmp_path_factory.mktemp("dbt_logs"))
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "False"
    env["DO_NOT_TRACK"] = "1"
    return env


@pytest.fixture(scope="session")
def run_dbt(dbt_executable: Path, dbt_env: dict[str, str]):
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(dbt_executable), *args],
            check=False,
            cwd=DBT_PROJECT_DIR,
            env=dbt_env,
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run


@pytest.fixture(scope="session")
def transformer_conninfo() -> str:
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=setting("KNOWDO_PG_HOST"),
        port=setting("KNOWDO_PG_PORT"),
        dbname=setting("KNOWDO_WAREHOUSE_DB"),
        user="knowdo_transformer",
        password=setting("KNOWDO_TRANSFORMER_PASSWORD"),
        connect_timeout=10,
    )


@pytest.fixture(scope="session")
def stats_functions(run_dbt) -> None:
    """(Re)creates the stats.* functions from the dbt macro (`dbt run-operation`, as the transform
    DAG does before its models), so the tests need no prior transform run."""
    result = run_dbt("run-operation", "create_stats_functions")
    assert result.returncode == 0, result.stdout + result.stderr


# --- issue 12: the marts the modules only read are built once per session, in the template
@pytest.fixture(scope="session")
def template_conninfo(scratch_template: dict[str, str]) -> str:
    """The transformer's connection to the session's template warehouse (tests/conftest.py
    scratch_template: every sample feed ingested, the marts built by dbt). Read only: the modules
    that write copy it (tests/helpers/scratch_warehouse.clone_template), and a copy can only be
    made while nobody is connected, so a module closes its connection at its end."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        host=setting("KNOWDO_PG_HOST"),
        port=setting("KNOWDO_PG_PORT"),
        dbname=scratch_template["KNOWDO_WAREHOUSE_DB"],
        user="knowdo_transformer",
        password=setting("KNOWDO_TRANSFORMER_PASSWORD"),
        connect_timeout=10,
    )


# --- end issue 12


@pytest.fixture
def warehouse(transformer_conninfo: str, stats_functions: None):
    import psycopg

    with psycopg.connect(transformer_conninfo, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    return DBT_PROJECT_DIR / "seeds"


@pytest.fixture(scope="session", autouse=True)
def sample_feeds_loaded(request):
    """The bundled sample feeds are in the warehouse (idempotent: files already received are
    no-ops), so the mart tests below have data on a fresh clone too; and the stats functions exist
    (dbt creates them in one run-operation per transform run, not in a hook of every invocation)."""
    request.getfixturevalue("cluster")
    request.getfixturevalue("stats_functions")
    from knowdo.pipeline import ingest_feed, list_feeds

    return [ingest_feed(feed_id) for feed_id in list_feeds()]
