"""WHO GHO's older CSV layout into the real cluster (rolled back after each test): aggregates
stay apart from countries in raw.who_gho_values, "No data" is missing, never zero."""

from pathlib import Path

import pytest

from knowdo.loading import ingest_file
from knowdo.registry import Feed

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "who_gho" / "athena_MH_6_layout.csv"


def test_the_older_gho_layout_loads_aggregates_at_their_own_level(loader_conn, tmp_path):
    feed = Feed(
        id="test_gho_athena",
        publisher_name="WHO",
        publisher_kind="reference",
        domain="reference",
        format="who-gho-csv",
        source={"folder": "x", "glob": "*"},
    )
    result = ingest_file(loader_conn, feed, FIXTURE, tmp_path / "landing")
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 9, 0)
    stored = loader_conn.execute(
        "select spatial_type, spatial_code, country_code, value_numeric, is_suppressed,"
        " export_layout from raw.who_gho_values where batch_id = %s order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert {r[5] for r in stored} == {"athena"}
    countries = {r[1] for r in stored if r[2] is not None}
    assert countries == {"AFG", "ALB", "GHA", "SLE", "ROU", "TZA"}
    aggregates = {(r[0], r[1]) for r in stored if r[2] is None}
    assert aggregates == {
        ("REGION", "AFR"),
        ("WORLDBANKINCOMEGROUP", "WB_LI"),
        ("GLOBAL", "GLOBAL"),
    }
    missing = {r[1]: (r[3], r[4]) for r in stored if r[1] in ("SLE", "ROU")}
    assert missing == {"SLE": (None, True), "ROU": (None, True)}


def test_gho_odata_json_loads_into_the_same_table(loader_conn, tmp_path):
    import json

    facts = [
        {
            "IndicatorCode": "MH_6",
            "SpatialDimType": "COUNTRY",
            "SpatialDim": "GHA",
            "TimeDim": 2016,
            "NumericValue": 0.06526,
            "Value": "0.07",
        },
        {
            "IndicatorCode": "MH_6",
            "SpatialDimType": "GLOBAL",
            "SpatialDim": "GLOBAL",
            "TimeDim": 2016,
            "NumericValue": 1.7,
            "Value": "1.7",
        },
    ]
    path = tmp_path / "MH_6.json"
    path.write_text(json.dumps({"@odata.context": "x", "value": facts}), encoding="utf-8")
    feed = Feed(
        id="test_gho_odata",
        publisher_name="WHO",
        publisher_kind="reference",
        domain="reference",
        format="who-gho-json",
        source={"folder": "x", "glob": "*"},
    )
    result = ingest_file(loader_conn, feed, path, tmp_path / "landing")
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 2, 0)
    stored = loader_conn.execute(
        "select spatial_code, country_code, value_numeric, export_layout from raw.who_gho_values"
        " where batch_id = %s order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert [(r[0], r[1], float(r[2]), r[3]) for r in stored] == [
        ("GHA", "GHA", 0.06526, "odata"),
        ("GLOBAL", None, 1.7, "odata"),
    ]
