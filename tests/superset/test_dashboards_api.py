"""Every chart of the KnowDo dashboards below returns the mart's data through Superset's chart API.

Real Superset, real warehouse: after the import, GET /api/v1/chart/{id}/data/ (as admin, who sees
every row) runs each chart's saved query. A chart whose mart has rows must return rows; a mart that
is not published fails the test with its name (never a skip). Suppressed cells come back as NULL
with the word "suppressed", never as 0.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from tests.superset.conftest import connect_as_superset

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[2] / "superset" / "assets"
SLUGS = [
    "knowdo-country-overview",
    "knowdo-arc-equity",
    "knowdo-funding-flows",
    "knowdo-data-health",
    "knowdo-implementation-impact",
]


def load(kind: str) -> dict[str, dict]:
    return {
        str(doc["uuid"]): doc
        for doc in (
            yaml.safe_load(p.read_text(encoding="utf-8"))
            for p in sorted((ASSETS / kind).rglob("*.yaml"))
        )
    }


DATASETS = load("datasets")
CHARTS = load("charts")
DASHBOARDS = {doc["slug"]: doc for doc in load("dashboards").values()}
DASHBOARD_CHARTS = [
    (slug, node["meta"]["uuid"])
    for slug in SLUGS
    for node in DASHBOARDS[slug]["position"].values()
    if isinstance(node, dict) and node.get("type") == "CHART"
]


def mart_tables(dataset: dict) -> list[str]:
    """The marts a dataset reads: its table, or for a virtual dataset the marts its SQL names."""
    if not dataset.get("sql"):
        return [dataset["table_name"]]
    return sorted(
        {
            name
            for token in dataset["sql"].replace(",", " ").split()
            if token.startswith("marts.")
            for name in [token.removeprefix("marts.").strip("()")]
        }
    )


@pytest.fixture(scope="module")
def warehouse(request):
    """Superset's own read-only connection; runs the pipeline once if the marts are not
    published."""
    with connect_as_superset() as conn:
        published = conn.execute("select to_regclass('marts.mart_feed_health')").fetchone()[0]
    if published is None:
        request.getfixturevalue("pipeline_run")
    with connect_as_superset() as conn:
        yield conn


def rows_in(conn, table: str) -> int | None:
    """Rows of marts.<table>, or None when it is not published."""
    if conn.execute("select to_regclass(%s)", (f"marts.{table}",)).fetchone()[0] is None:
        return None
    return conn.execute(f'select count(*) from marts."{table}"').fetchone()[0]


def test_the_dashboards_exist(superset, imported):
    for slug in SLUGS:
        dashboard = superset.dashboard(slug)
        assert dashboard["dashboard_title"] == DASHBOARDS[slug]["dashboard_title"]
        charts = superset.request("GET", f"/api/v1/dashboard/{slug}/charts")["result"]
        expected = {CHARTS[u]["slice_name"] for s, u in DASHBOARD_CHARTS if s == slug}
        assert {c["slice_name"] for c in charts} == expected, slug


@pytest.mark.parametrize(
    ("slug", "chart_uuid"),
    DASHBOARD_CHARTS,
    ids=[f"{slug}:{CHARTS[u]['slice_name']}" for slug, u in DASHBOARD_CHARTS],
)
def test_chart_returns_the_marts_rows(slug, chart_uuid, superset, imported, warehouse):
    chart = CHARTS[chart_uuid]
    dataset = DATASETS[str(chart["dataset_uuid"])]
    counts = {table: rows_in(warehouse, table) for table in mart_tables(dataset)}
    missing = [table for table, count in counts.items() if count is None]
    assert not missing, (
        f"{chart['slice_name']!r} on {slug} reads marts.{', marts.'.join(missing)}, which is not"
        " published: build and publish that mart (dbt build, then the quality gate) first"
    )
    rows = superset.chart_data(superset.find_chart_id(chart_uuid))
    if all(counts.values()):
        assert rows, f"{chart['slice_name']!r} returned no rows although {counts} has rows"


@pytest.fixture(scope="module")
def ministry_gha(superset, imported):
    """What Ghana's ministry sees: the Country overview's charts are read through RLS, one
    country."""
    from knowdo.superset_access import (
        apply_access,
        default_access_file,
        demo_password,
        demo_users,
        ensure_users,
        load_access,
    )
    from knowdo.superset_api import SupersetClient

    apply_access(superset)
    ensure_users(superset, demo_users(load_access(default_access_file())))
    client = SupersetClient(superset.base_url, "ministry_gha", demo_password())
    client.login()
    return client


def test_suppressed_cells_are_null_and_say_so(ministry_gha, warehouse):
    """The equity table: a suppressed cell has no count and reads 'suppressed', never 0."""
    superset = ministry_gha
    chart_uuid = next(
        u for u, c in CHARTS.items() if c["slice_name"].startswith("Equity gaps by sex, age band")
    )
    suppressed_in_mart = warehouse.execute(
        "select count(*) from marts.fct_service_use s where is_suppressed and country_code = 'GHA'"
        " and period_start = (select max(period_start) from marts.fct_service_use"
        " where country_code = 'GHA')"
    ).fetchone()[0]
    if suppressed_in_mart == 0:
        pytest.fail("the latest month of marts.fct_service_use has no suppressed cell to check")
    rows = superset.chart_data(superset.find_chart_id(chart_uuid))
    suppressed = [r for r in rows if r["suppression_status"] == "suppressed"]
    assert len(suppressed) == suppressed_in_mart
    for row in suppressed:
        assert row["numerator"] is None, row
        assert row["rate_with_ci"].startswith("suppressed"), row
    published = [r for r in rows if r["suppression_status"] == "published"]
    assert published and all(r["numerator"] is not None for r in published)


def test_ci_band_metrics_are_null_where_the_mart_is(ministry_gha, warehouse):
    """Rates and CI limits by age band equal the mart's, NULL for NULL (never filled with 0)."""
    superset = ministry_gha
    chart_uuid = next(
        u
        for u, c in CHARTS.items()
        if c["slice_name"].startswith("Outpatient contacts per 100,000 by age")
    )
    expected = {
        (period.isoformat(), label): (value, lower, upper)
        for period, label, value, lower, upper in warehouse.execute(
            "select period_start, group_label, value, lower_95, upper_95 from marts.fct_service_use"
            " where stratifier = 'age_band' and geography_level = 'national'"
            " and indicator_code = 'mh_outpatient_contacts' and country_code = 'GHA'"
        ).fetchall()
    }
    rows = superset.chart_data(superset.find_chart_id(chart_uuid))
    assert rows
    for row in rows:
        period = datetime.fromtimestamp(row["period_start"] / 1000, tz=UTC).date().isoformat()
        for label in ("0-14 years", "15-24 years", "25-49 years", "50 years and over"):
            value, lower, upper = expected[(period, label)]
            got = (row[label], row[f"{label}__yhat_lower"], row[f"{label}__yhat_upper"])
            for want, have in zip((value, lower, upper), got, strict=True):
                if want is None:
                    assert have is None, (period, label)
                else:
                    assert have == pytest.approx(float(want)), (period, label)
