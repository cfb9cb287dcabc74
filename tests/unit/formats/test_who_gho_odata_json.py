"""WHO GHO OData API JSON (`who-gho-json`): the real MH_6 export's facts, written as the OData API
serves them, give the same raw rows as its CSV; aggregates stay apart; "No data" is missing."""

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FileRejected, ParseContext, Rejection, Row
from knowdo.formats.who_gho import COLUMNS, parse_csv, parse_odata_json

MH_6 = Path(__file__).resolve().parents[2] / "fixtures" / "who_gho" / "MH_6.csv"
TODAY = date(2026, 1, 1)
# the API CSV's column -> the OData API's field
ODATA = {
    "Id": "Id",
    "IndicatorCode": "IndicatorCode",
    "SpatialDimension": "SpatialDimType",
    "SpatialDimensionValueCode": "SpatialDim",
    "TimeDimension": "TimeDimType",
    "TimeDim": "TimeDim",
    "DisaggregatingDimension1": "Dim1Type",
    "DisaggregatingDimension1ValueCode": "Dim1",
    "Value": "Value",
    "NumericValue": "NumericValue",
    "Low": "Low",
    "High": "High",
    "Comments": "Comments",
    "Date": "Date",
    "TimeDimensionBegin": "TimeDimensionBegin",
    "TimeDimensionEnd": "TimeDimensionEnd",
}


def odata_json(tmp_path, extra=()) -> Path:
    with MH_6.open(newline="", encoding="utf-8") as fh:
        facts = []
        for record in csv.DictReader(fh):
            fact = {ODATA[k]: (v or None) for k, v in record.items() if k in ODATA}
            if fact["NumericValue"] is not None:
                fact["NumericValue"] = float(fact["NumericValue"])  # a JSON number, as served
            facts.append(fact)
    path = tmp_path / "MH_6.json"
    path.write_text(
        json.dumps(
            {
                "@odata.context": "https://ghoapi.azureedge.net/api/$metadata#MH_6",
                "value": facts + list(extra),
            }
        ),
        encoding="utf-8",
    )
    return path


def test_the_odata_json_gives_the_rows_of_the_same_facts_as_csv(tmp_path):
    path = odata_json(tmp_path)
    assert detect_format(path) == "who-gho-json"
    from_json = list(parse_odata_json(path, ParseContext(today=TODAY)))
    from_csv = list(parse_csv(MH_6, ParseContext(today=TODAY)))
    assert all(isinstance(r, Row) for r in from_json) and len(from_json) == len(from_csv) > 100
    strip = COLUMNS.index("export_layout")
    numeric = COLUMNS.index("value_numeric")
    for a, b in zip(from_json, from_csv, strict=True):
        assert a.values[strip] == "odata" and b.values[strip] == "api"
        # the JSON number reaches the same decimal as the CSV text
        assert Decimal(a.values[numeric]) == Decimal(b.values[numeric])
        rest = [i for i in range(len(COLUMNS)) if i not in (strip, numeric)]
        assert [a.values[i] for i in rest] == [b.values[i] for i in rest]


def test_aggregates_and_no_data_in_odata_json(tmp_path):
    region = {
        "IndicatorCode": "MH_6",
        "SpatialDimType": "REGION",
        "SpatialDim": "AFR",
        "TimeDim": 2016,
        "NumericValue": 0.05,
        "Value": "0.05",
    }
    missing = {
        "IndicatorCode": "MH_6",
        "SpatialDimType": "COUNTRY",
        "SpatialDim": "SLE",
        "TimeDim": 2014,
        "NumericValue": None,
        "Value": "No data",
    }  # (2017 is in MH_6)
    items = list(
        parse_odata_json(odata_json(tmp_path, [region, missing]), ParseContext(today=TODAY))
    )
    assert all(isinstance(i, Row) for i in items)
    rows = {
        (v["spatial_code"], v["period"]): v for v in (dict(zip(COLUMNS, i.values)) for i in items)
    }
    assert (rows["AFR", 2016]["spatial_type"], rows["AFR", 2016]["country_code"]) == (
        "REGION",
        None,
    )
    assert rows["SLE", 2014]["value_numeric"] is None and rows["SLE", 2014]["is_suppressed"] is True


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"value": [{"IndicatorCode": "MH_6"', "not valid JSON"),
        ('{"@odata.context": "x", "other": []}', "no 'value' array"),
    ],
)
def test_unreadable_odata_files_are_rejected_whole(tmp_path, content, reason):
    path = tmp_path / "x.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileRejected, match=reason):
        list(parse_odata_json(path, ParseContext(today=TODAY)))


def test_a_bad_fact_is_rejected_naming_the_odata_field(tmp_path):
    bad = {
        "IndicatorCode": "MH_6",
        "SpatialDimType": "COUNTRY",
        "SpatialDim": "Ghana",
        "TimeDim": 2016,
        "NumericValue": 1,
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"value": [bad]}), encoding="utf-8")
    (item,) = parse_odata_json(path, ParseContext(today=TODAY))
    assert isinstance(item, Rejection) and item.field == "SpatialDim"
