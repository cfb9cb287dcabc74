"""Fixtures for tests against a running Superset (markers e2e and browser)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import psycopg
import pytest

from knowdo.superset_api import SupersetClient, SupersetError

REPO = Path(__file__).resolve().parents[2]
ENV_SH = REPO / "infra" / "local" / "env.sh"
STACK_SH = REPO / "infra" / "local" / "stack.sh"


def _load_stack_env() -> None:
    """Take the local stack's settings from env.sh; values already in the environment win (as
    there)."""
    if not ENV_SH.is_file():
        return
    out = subprocess.run(
        ["bash", "-c", f'. "{ENV_SH}" && env -0'], capture_output=True, check=True, env=os.environ
    ).stdout
    for item in out.split(b"\0"):
        key, sep, value = item.decode().partition("=")
        if sep and key.startswith(("KNOWDO_", "SUPERSET_")):
            os.environ.setdefault(key, value)


@pytest.fixture(scope="session")
def superset() -> SupersetClient:
    """A logged-in client; starts Superset through stack.sh when it is not answering."""
    _load_stack_env()
    client = SupersetClient.from_env()
    try:
        client.wait_healthy(timeout=3)
    except SupersetError:
        if "start-superset)" not in STACK_SH.read_text(encoding="utf-8"):
            pytest.fail(
                f"Superset is not answering at {client.base_url} and stack.sh has no"
                " start-superset: run `make up` (or `bash infra/local/stack.sh start`) first"
            )
        subprocess.run(["bash", str(STACK_SH), "start-superset"], check=True, timeout=300)
        client.wait_healthy(timeout=180)
    client.login()
    return client


@pytest.fixture(scope="session")
def imported(superset: SupersetClient) -> list[str]:
    """Import superset/assets once per session (overwrite: idempotent)."""
    return superset.import_assets(REPO / "superset" / "assets")


# What the chart must show: the national rate per 100,000 by sex, one value per month, country and
# group (a reader who sees several countries gets one line per country, never a mix).
EXPECTED_SQL = """
select period_start, geography_name, group_label, max(value) as rate_per_100k
from marts.fct_service_use
where stratifier = 'sex' and geography_level = 'national'
  and indicator_code = 'mh_outpatient_contacts'
group by period_start, geography_name, group_label
"""


def connect_as_superset() -> psycopg.Connection:
    """The warehouse as Superset's own read-only role (knowdo_superset), so grants are part of
    what a test reads."""
    env = os.environ
    return psycopg.connect(
        host=env["KNOWDO_PG_HOST"],
        port=env["KNOWDO_PG_PORT"],
        dbname=env["KNOWDO_WAREHOUSE_DB"],
        user="knowdo_superset",
        password=env["KNOWDO_SUPERSET_DB_PASSWORD"],
        connect_timeout=10,
    )


@pytest.fixture(scope="session")
def mart_rows(superset, pipeline_run) -> dict[tuple, object]:
    """The mart read as Superset's own read-only role, so grants are part of what is tested."""
    with connect_as_superset() as conn:
        exists = conn.execute("select to_regclass('marts.fct_service_use')").fetchone()[0]
        if exists is None:
            pytest.fail("marts.fct_service_use does not exist: run the pipeline (make run) first")
        rows = conn.execute(EXPECTED_SQL).fetchall()
    if not rows:
        pytest.fail("marts.fct_service_use has no national rows by sex: run the pipeline first")
    return {(period, country, label): value for period, country, label, value in rows}
