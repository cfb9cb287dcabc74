"""The England ARC equity charts of SII and RII by IMD (with CIs) and the WHO HEAT table, read
through the real Superset: they return the published mart's rows, an ARC viewer sees only its own
ARC (row-level security), and a reader who sees every country or ARC never gets them mixed in one
line.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from knowdo.superset_access import (
    apply_access,
    default_access_file,
    demo_password,
    demo_users,
    ensure_users,
    load_access,
)
from knowdo.superset_api import SupersetClient
from tests.superset.conftest import connect_as_superset

pytestmark = pytest.mark.e2e

ASSETS = Path(__file__).resolve().parents[2] / "superset" / "assets"
CHARTS = {
    path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in (ASSETS / "charts").glob("*.yaml")
}
SII_CHART = CHARTS["talking_therapies_sii_by_imd_ci"]
RII_CHART = CHARTS["talking_therapies_rii_by_imd_ci"]
HEAT_TABLE = CHARTS["talking_therapies_heat_measures_latest_year"]
ARC_GM = "arc_greater_manchester"
SII_SERIES = {
    "Recovery SII": "talking_therapies__recovery",
    "Reliable improvement SII": "talking_therapies__reliable_improvement",
    "Reliable recovery SII": "talking_therapies__reliable_recovery",
}


@pytest.fixture(scope="module")
def warehouse():
    """The published mart, read as Superset's own read-only role."""
    with connect_as_superset() as conn:
        published = conn.execute(
            "select count(*) from information_schema.columns where table_schema = 'marts'"
            " and table_name = 'mart_inequality_measures' and column_name = 'arc_code'"
        ).fetchone()[0]
        if not published:
            pytest.fail(
                "marts.mart_inequality_measures is not published with arc_code: run dbt build and"
                " the quality gate (make run) first"
            )
        yield conn


@pytest.fixture(scope="module")
def arc_gm(superset, imported) -> SupersetClient:
    apply_access(superset)
    ensure_users(superset, demo_users(load_access(default_access_file())))
    client = SupersetClient(superset.base_url, "arc_gm", demo_password())
    client.login()
    return client


def year_of(row) -> int:
    return datetime.fromtimestamp(row["period_start"] / 1000, tz=UTC).year


def test_arc_viewer_gets_sii_with_ci_equal_to_the_mart(arc_gm, superset, warehouse):
    expected = {
        (period.year, indicator): (float(value), float(lower), float(upper))
        for period, indicator, value, lower, upper in warehouse.execute(
            "select period_start, indicator_code, value, lower_95, upper_95"
            " from marts.mart_inequality_measures where arc_code = %s and measure = 'sii'"
            " and stratifier = 'imd_quintile' and value is not null",
            (ARC_GM,),
        ).fetchall()
    }
    assert expected, "the mart has no SII by IMD quintile for Greater Manchester"
    rows = arc_gm.chart_data(superset.find_chart_id(str(SII_CHART["uuid"])))
    assert rows
    checked = 0
    for row in rows:
        for series, indicator in SII_SERIES.items():
            want = expected.get((year_of(row), indicator))
            got = (row[series], row[f"{series}__yhat_lower"], row[f"{series}__yhat_upper"])
            if want is None:
                assert got == (None, None, None), (row["period_start"], series)
                continue
            assert got == pytest.approx(want), (row["period_start"], series)
            assert got[1] <= got[0] <= got[2]
            checked += 1
    assert checked > 0


def test_arc_viewer_gets_rii_with_ci(arc_gm, superset):
    rows = arc_gm.chart_data(superset.find_chart_id(str(RII_CHART["uuid"])))
    values = [
        (row["Recovery RII"], row["Recovery RII__yhat_lower"], row["Recovery RII__yhat_upper"])
        for row in rows
        if row["Recovery RII"] is not None
    ]
    assert values, "no RII of recovery for Greater Manchester"
    assert all(0 < lower <= value <= upper for value, lower, upper in values)


def test_heat_table_is_rls_filtered_and_says_why_sii_does_not_apply_to_ethnicity(
    arc_gm, superset, warehouse
):
    (gm_icbs,) = warehouse.execute(
        "select array_agg(distinct geography_code) from marts.mart_inequality_measures"
        " where arc_code = %s and source_model = 'fct_outcomes'",
        (ARC_GM,),
    ).fetchone()
    chart_id = superset.find_chart_id(str(HEAT_TABLE["uuid"]))
    rows = arc_gm.chart_data(chart_id)
    assert rows
    assert {row["geography_code"] for row in rows} == set(gm_icbs)
    ethnicity_sii = [
        row
        for row in rows
        if row["stratifier_label"] == "Ethnicity" and row["measure_name"].endswith("(SII)")
    ]
    assert ethnicity_sii
    assert all(row["value_with_ci"].startswith("n/a: ") for row in ethnicity_sii)
    imd_sii = [
        row
        for row in rows
        if row["stratifier_label"] == "IMD quintile" and row["measure_name"].endswith("(SII)")
    ]
    # an ordered dimension: a value with its CI "(lower to upper)", or why there is none
    assert imd_sii and all(
        " to " in row["value_with_ci"] or row["value_with_ci"].startswith("n/a: ")
        for row in imd_sii
    )
    # the admin sees every ARC's ICBs: the table is what RLS narrowed for the ARC
    admin_icbs = {row["geography_code"] for row in superset.chart_data(chart_id)}
    assert set(gm_icbs) < admin_icbs


def test_a_reader_of_every_arc_gets_no_mixed_sii_line(superset, warehouse):
    """Several ICBs in one point would be a meaningless maximum: the series stays empty until the
    dashboard's ARC filter picks one (the ARC viewer above gets values)."""
    icbs = warehouse.execute(
        "select count(distinct geography_code) from marts.mart_inequality_measures"
        " where source_model = 'fct_outcomes'"
    ).fetchone()[0]
    assert icbs > 1
    rows = superset.chart_data(superset.find_chart_id(str(SII_CHART["uuid"])))
    assert rows
    assert all(row[series] is None for row in rows for series in SII_SERIES)


def test_national_ci_charts_never_mix_countries_for_the_admin(superset, warehouse):
    countries = warehouse.execute(
        "select count(distinct country_code) from marts.fct_service_use"
        " where geography_level = 'national' and stratifier = 'sex'"
    ).fetchone()[0]
    assert countries > 1, "the sample feeds should carry several countries"
    chart = CHARTS["service_use_by_sex_ci"]
    rows = superset.chart_data(superset.find_chart_id(str(chart["uuid"])))
    assert rows
    assert all(row["Female"] is None and row["Male"] is None for row in rows)


def test_country_overview_requires_one_country():
    dashboard = yaml.safe_load(
        (ASSETS / "dashboards" / "knowdo_country_overview.yaml").read_text(encoding="utf-8")
    )
    (country,) = [
        f for f in dashboard["metadata"]["native_filter_configuration"] if f["name"] == "Country"
    ]
    assert country["targets"][0]["column"]["name"] == "country_code"
    controls = country["controlValues"]
    assert controls["enableEmptyFilter"] and not controls["multiSelect"]
    assert controls["defaultToFirstItem"]


def test_pcref_table_is_the_arcs_own_latest_month_with_suppressed_cells_marked(
    arc_gm, superset, warehouse
):
    expected = warehouse.execute(
        "select count(*), count(*) filter (where is_suppressed)"
        " from marts.mart_service_use_by_arc where arc_code = %s and geography_level = 'arc'"
        " and stratifier = 'ethnicity' and group_code <> 'not_stated'"
        " and period_start = (select max(period_start) from marts.mart_service_use_by_arc)",
        (ARC_GM,),
    ).fetchone()
    assert expected[0] > 0, "no PCREF rows for Greater Manchester in the latest month"
    chart_id = superset.find_chart_id(str(CHARTS["pcref_measures_latest_month"]["uuid"]))
    rows = arc_gm.chart_data(chart_id)
    assert len(rows) == expected[0]
    suppressed = [row for row in rows if row["suppression_status"] == "suppressed"]
    assert len(suppressed) == expected[1]
    for row in suppressed:
        assert row["numerator"] is None and row["rate_with_ci"].startswith("suppressed"), row
    black = [row for row in rows if row["group_label"].startswith("Black")]
    assert black and all(
        row["rate_ratio_with_ci"].count(" to ") == 1 or row["suppression_status"] == "suppressed"
        for row in black
    )
    # the admin sees every ARC: the ARC viewer's rows are a strict subset
    assert len(superset.chart_data(chart_id)) > len(rows)


def test_pcref_line_draws_the_arcs_rates_with_bands(arc_gm, superset):
    chart_id = superset.find_chart_id(str(CHARTS["pcref_detentions_by_ethnicity_ci"]["uuid"]))
    rows = arc_gm.chart_data(chart_id)
    with_black = [row for row in rows if row["Black"] is not None]
    assert with_black
    assert all(
        row["Black__yhat_lower"] <= row["Black"] <= row["Black__yhat_upper"] for row in with_black
    )
    # several ARCs would be merged into one point: the admin's series are empty until filtered
    assert all(row["Black"] is None for row in superset.chart_data(chart_id))


def test_reach_table_shows_only_the_arcs_own_intervention(arc_gm, superset, warehouse):
    (icbs,) = warehouse.execute(
        "select array_agg(distinct geography_code) from marts.mart_know_do_gap where arc_code = %s"
        " and intervention_code in ('parent_led_cbt', 'alcohol_assertive_outreach')",
        (ARC_GM,),
    ).fetchone()
    assert icbs, "no parent-led CBT or AAOT reach for Greater Manchester in mart_know_do_gap"
    chart_id = superset.find_chart_id(str(CHARTS["arc_intervention_reach"]["uuid"]))
    rows = arc_gm.chart_data(chart_id)
    assert rows and {row["geography_code"] for row in rows} == set(icbs)
    assert {row["intervention_label"] for row in rows} == {"Alcohol Assertive Outreach (AAOT)"}
    for row in rows:
        if row["suppression_status"] == "suppressed":
            assert row["reached"] is None and row["reach_with_ci"].startswith("suppressed")
        else:
            assert row["reached"] is not None
