"""The imported chart reads exactly what marts.fct_service_use holds (real Superset, real
warehouse)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[2] / "superset" / "assets"
CHART = yaml.safe_load((ASSETS / "charts" / "service_use_by_sex_national.yaml").read_text())
DASHBOARD = yaml.safe_load((ASSETS / "dashboards" / "knowdo_service_use.yaml").read_text())


def test_import_reports_every_asset(imported):
    assert {
        "metadata.yaml",
        "databases/knowdo_warehouse.yaml",
        "datasets/knowdo_warehouse/fct_service_use.yaml",
        "charts/service_use_by_sex_national.yaml",
        "dashboards/knowdo_service_use.yaml",
    } <= set(imported)


def test_dashboard_holds_the_chart(superset, imported):
    dashboard = superset.dashboard(DASHBOARD["slug"])
    assert dashboard["dashboard_title"] == DASHBOARD["dashboard_title"]
    charts = superset.request("GET", f"/api/v1/dashboard/{DASHBOARD['slug']}/charts")["result"]
    assert [c["slice_name"] for c in charts] == [CHART["slice_name"]]


def test_chart_data_equals_the_mart(superset, imported, mart_rows):
    chart_id = superset.find_chart_id(str(CHART["uuid"]))
    assert superset.find_chart_id(CHART["slice_name"]) == chart_id
    rows = superset.chart_data(chart_id)
    assert rows, "the chart returned no rows although the mart has some"

    # Superset returns temporal columns as epoch milliseconds (UTC).
    got = {
        (
            datetime.fromtimestamp(r["period_start"] / 1000, tz=UTC).date(),
            r["geography_name"],
            r["group_label"],
        ): r["rate_per_100k"]
        for r in rows
    }
    assert len(got) == len(rows), "duplicate (month, country, group) rows in the chart data"
    assert got.keys() == mart_rows.keys()
    for key, expected in mart_rows.items():
        if expected is None:
            assert got[key] is None, key
        else:
            assert got[key] == pytest.approx(float(expected), rel=1e-9), key
    assert {label for *_, label in got} <= {"Female", "Male"}
    # one series per country: an admin who sees every country never gets them mixed in one line
    countries = {country for _, country, _ in mart_rows}
    assert {country for _, country, _ in got} == countries
