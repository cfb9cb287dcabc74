"""Real DHIS2 and DATIM exports (tests/fixtures/dhis2_real): every header DHIS2 accepts, ids
outside a feed's mapping counted as out of scope (never rejected), values read by value type, and
the same rows, rejections and out-of-scope records on the CSV row path, the loader's vectorised
CSV path and DHIS2 JSON."""

import csv
import json
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import check_file, detect_format
from knowdo.formats import FileRejected, OutOfScope, ParseContext, Rejection, Row
from knowdo.formats import _dhis2_csv_fast as fast
from knowdo.formats.dhis2 import COLUMNS, parse_json
from knowdo.formats.dhis2_csv import parse_csv

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "dhis2_real"
DATIM = REAL / "datim_test-data.csv"
BOOLEANS = REAL / "dhis2-core_dataValueSetBooleanTest.csv"
TODAY = date(2026, 1, 1)


def records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def outcome(items) -> tuple[list[tuple], list[Rejection], list[OutOfScope]]:
    rows = sorted((i.row, *i.values) for i in items if isinstance(i, Row))
    return (
        rows,
        [i for i in items if isinstance(i, Rejection)],
        [i for i in items if isinstance(i, OutOfScope)],
    )


def as_python(column: str, text):
    """A vectorised-path cell in map_value's Python type (the loader sends both as text)."""
    if text is None:
        return None
    if column == "value":
        return Decimal(text)
    if column == "last_updated":
        return datetime.fromisoformat(text)
    return text


def fast_outcome(path: Path, ctx: ParseContext):
    rows, rejections, outside = [], [], []
    for chunk in fast.load_tables(path, ctx):
        for r in chunk.table.to_pylist():
            values = tuple(as_python(c, r[c]) for c in COLUMNS)
            rows.append((r["row_number"], *values))
        rejections += chunk.rejections
        outside += chunk.out_of_scope
    return sorted(rows), rejections, outside


def as_json(path: Path, out: Path) -> Path:
    names = {
        "de": "dataElement",
        "pe": "period",
        "ou": "orgUnit",
        "coc": "categoryOptionCombo",
        "acoc": "attributeOptionCombo",
        "value": "value",
    }
    values = [{names[k]: v for k, v in r.items() if v != ""} for r in records(path)]
    out.write_text(json.dumps({"dataValues": values}), encoding="utf-8")
    return out


# ---------------------------------------------------------------- header variants and detection


@pytest.mark.parametrize(
    "header",
    [
        "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,flwup",
        (
            "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value,storedby,"
            "lastupdated,comment,followup,deleted"
        ),
        (
            "dataElement,period,orgUnit,categoryOptionCombo,attributeOptionCombo,value,storedBy,created,"
            "lastUpdated,comment,followup"
        ),
        "de,pe,ou,coc,acoc,value",
        "de,pe,ou,coc,aoc,value",
        '"de","pe","ou","coc","acoc","value"',
        '"dataelement","period","orgunit","categoryoptioncombo","attributeoptioncombo","value"',
        # DHIS2 reads by position: its own test file misspells the first column
        (
            '"dataelelement","period","orgunit","categoryoptioncombo","attributeoptioncombo","value",'
            '"storedby","timestamp","comment","followup"'
        ),
    ],
)
def test_every_header_dhis2_accepts_is_detected_and_read(tmp_path, header):
    width = len(header.split(","))
    cells = ["f7n9E0hX8qk", "2019W43", "DiszpKrYNg8", "HllvX50cXC0", "aoc00000001", "5"]
    cells += [""] * (width - len(cells))
    path = tmp_path / "values.csv"
    path.write_text(header + "\n" + ",".join(f'"{c}"' for c in cells) + "\n", encoding="utf-8")
    assert detect_format(path) == "dhis2-csv"
    mapping = {"data_elements": {"f7n9E0hX8qk": "mh"}, "org_units": {"DiszpKrYNg8": "GH-AA"}}
    (row,) = parse_csv(path, ParseContext(mapping=mapping, today=TODAY))
    values = dict(zip(COLUMNS, row.values))
    assert values["category_option_combo"] == "HllvX50cXC0"
    assert values["attribute_option_combo"] == "aoc00000001"
    assert (values["period_type"], values["period_start"], values["period_end"]) == (
        "week",
        date(2019, 10, 21),
        date(2019, 10, 27),
    )
    assert values["value"] == 5


def test_a_header_neither_named_nor_in_dhis2_order_is_refused(tmp_path):
    path = tmp_path / "values.csv"
    path.write_text("de,value,ou,pe,x,y\nf7n9E0hX8qk,5,DiszpKrYNg8,201901,a,b\n", encoding="utf-8")
    # named columns: read by name, whatever their order
    (item,) = parse_csv(path, ParseContext(today=TODAY))
    assert isinstance(item, OutOfScope)
    path.write_text(
        "element,when,where,x,y,z\nf7n9E0hX8qk,201901,DiszpKrYNg8,a,b,5\n", encoding="utf-8"
    )
    with pytest.raises(FileRejected, match="de,pe,ou,coc,acoc,value"):
        list(parse_csv(path, ParseContext(today=TODAY)))


# ---------------------------------------------------------------- DATIM export: out of scope


def datim_mapping(with_combos: bool) -> dict:
    rows = records(DATIM)
    elements = ["sfl3EJj4Gvv", "TbG5gCQH78Q", "q2mgsjDtNft", "HClygqtgRlE"]
    units = sorted({r["ou"] for r in rows})[::2]  # every other org unit of the file
    mapping = {
        "data_elements": {de: f"ind_{i}" for i, de in enumerate(elements)},
        "org_units": {ou: f"GEO-{i}" for i, ou in enumerate(units)},
    }
    if with_combos:
        combos = sorted({r["coc"] for r in rows if r["de"] in elements})[::3]
        mapping["category_option_combos"] = {c: {"sex": "F", "age_band": "15-24"} for c in combos}
    return mapping


@pytest.mark.parametrize("with_combos", [False, True])
def test_datim_export_ids_outside_the_mapping_are_counted_not_rejected(tmp_path, with_combos):
    mapping = datim_mapping(with_combos)
    ctx = ParseContext(mapping=mapping, today=TODAY, defer_duplicate_check=True)
    rows, rejections, outside = outcome(list(parse_csv(DATIM, ctx)))
    # an independent count from the file itself
    expected_ids: Counter = Counter()
    in_scope = 0
    for r in records(DATIM):
        ids = [("data_element", r["de"])] if r["de"] not in mapping["data_elements"] else []
        if r["ou"] not in mapping["org_units"]:
            ids.append(("org_unit", r["ou"]))
        if with_combos and r["coc"] not in mapping["category_option_combos"]:
            ids.append(("category_option_combo", r["coc"]))
        expected_ids.update(ids)
        in_scope += not ids
    assert 0 < len(rows) == in_scope < 1000
    assert rejections == []
    assert len(outside) == 1000 - in_scope
    assert Counter(i for o in outside for i in o.ids) == expected_ids
    # the DATIM financial-year periods (2015Oct: October 2015 to September 2016)
    periods = {
        r[COLUMNS.index("period") + 1]: (
            r[COLUMNS.index("period_type") + 1],
            r[COLUMNS.index("period_end") + 1],
        )
        for r in rows
    }
    if "2015Oct" in periods:
        assert periods["2015Oct"] == ("financial_october", date(2016, 9, 30))

    # the loader's vectorised path and DHIS2 JSON of the same values: identical outcomes
    assert fast_outcome(DATIM, ctx) == (rows, rejections, outside)
    json_items = list(parse_json(as_json(DATIM, tmp_path / "datim.json"), ctx))
    json_rows, json_rejections, json_outside = outcome(json_items)
    assert (len(json_rows), json_rejections, json_outside) == (len(rows), rejections, outside)


def test_check_reports_coverage_of_a_datim_export_against_a_mapping():
    mapping = datim_mapping(with_combos=False)
    report = check_file(
        DATIM, "dhis2-csv", ParseContext(mapping=mapping, today=TODAY, feed_id="datim_feed")
    )
    coverage = report["coverage"]
    assert coverage["feed"] == "datim_feed"
    assert report["rows_out_of_scope"] == coverage["rows_out_of_scope"] > 0
    assert coverage["rows_in_scope"] == report["rows_valid"] + report["rows_rejected"]
    assert report["rows_valid"] + report["rows_rejected"] + report["rows_out_of_scope"] == 1000
    counts = [e["rows"] for e in coverage["unmapped_ids"]]
    assert counts == sorted(counts, reverse=True) and sum(counts) >= report["rows_out_of_scope"]


def test_check_without_a_mapping_validates_structure_of_real_files():
    report = check_file(REAL / "datim_bad-periods.csv", "dhis2-csv", ParseContext(today=TODAY))
    reasons = {e["value"]: e["reason"] for e in report["errors"]}
    assert "quarter 5 does not exist" in reasons["2016Q5"]
    assert report["rows_valid"] == 0 and report["coverage"]["feed"] is None
    assert report["rows_out_of_scope"] == report["rows_read"] - report["rows_rejected"]
    clean = check_file(DATIM, "dhis2-csv", ParseContext(today=TODAY))
    assert (clean["rows_rejected"], clean["rows_out_of_scope"]) == (0, 1000)


# ---------------------------------------------------------------- values by value type


def test_dhis2_core_boolean_file_is_read_by_value_type():
    mapping = {
        "data_elements": {
            "jH26dja2f30": {"indicator": "yes_no", "value_type": "BOOLEAN"},
            "jH26dja2f31": {"indicator": "ticked", "value_type": "TRUE_ONLY"},
        },
        "org_units": {"DiszpKrYNg8": "GH-AA"},
    }
    ctx = ParseContext(mapping=mapping, today=TODAY, defer_duplicate_check=True)
    rows, rejections, outside = outcome(list(parse_csv(BOOLEANS, ctx)))
    value = COLUMNS.index("value") + 1
    loaded = {r[0]: r[value] for r in rows}
    # BOOLEAN: true/True/t/T/1 -> 1, false/False/f/F/0 -> 0; TRUE_ONLY: 1/t/true/True -> 1
    assert loaded == {
        1: 1,
        2: 1,
        3: 0,
        4: 0,
        5: 0,
        6: 0,
        7: 1,
        8: 1,
        10: 0,
        13: 1,
        14: 1,
        15: 1,
        16: 1,
    }
    by_row = {r.row: r for r in rejections}
    assert set(by_row) == {11, 12, 17, 18}
    assert "not a BOOLEAN value" in by_row[11].reason and by_row[11].value == "test"
    assert "not a TRUE_ONLY value" in by_row[17].reason and by_row[17].value == "false"
    (other_unit,) = outside  # row 9: an org unit the feed does not map
    assert other_unit.row == 9 and other_unit.ids == (("org_unit", "BdfsJfj87js"),)
    assert fast_outcome(BOOLEANS, ctx) == (rows, rejections, outside)


def test_a_boolean_without_a_declared_value_type_says_how_to_declare_it(tmp_path):
    mapping = {"data_elements": {"jH26dja2f30": "yes_no"}, "org_units": {"DiszpKrYNg8": "GH-AA"}}
    items = list(parse_csv(BOOLEANS, ParseContext(mapping=mapping, today=TODAY)))
    reasons = {i.reason for i in items if isinstance(i, Rejection) and i.value == "true"}
    assert reasons == {
        (
            "value is not a number (a yes/no data element? set its value_type: "
            "BOOLEAN in the feed's mapping)"
        )
    }


@pytest.mark.parametrize(
    ("value_type", "value", "loaded", "reason"),
    [
        ("INTEGER", "12", Decimal(12), None),
        ("INTEGER", "1.5", None, "not a whole number"),
        ("INTEGER_POSITIVE", "0", None, "above 0"),
        ("INTEGER_ZERO_OR_POSITIVE", "0", Decimal(0), None),
        ("PERCENTAGE", "99.5", Decimal("99.5"), None),
        ("PERCENTAGE", "101", None, "between 0 and 100"),
        ("UNIT_INTERVAL", "0.25", Decimal("0.25"), None),
        ("NUMBER", "-2", None, "negative"),
        ("TEXT", "some words", None, "value type TEXT cannot be used"),
        ("DATE", "2019-01-01", None, "value type DATE cannot be used"),
    ],
)
def test_value_types(tmp_path, value_type, value, loaded, reason):
    path = tmp_path / "v.csv"
    path.write_text(
        f"de,pe,ou,coc,acoc,value\nf7n9E0hX8qk,201901,DiszpKrYNg8,,,{value}\n", encoding="utf-8"
    )
    mapping = {
        "data_elements": {"f7n9E0hX8qk": {"indicator": "x", "value_type": value_type}},
        "org_units": {"DiszpKrYNg8": "GH-AA"},
    }
    ctx = ParseContext(mapping=mapping, today=TODAY, defer_duplicate_check=True)
    (item,) = parse_csv(path, ctx)
    if reason:
        assert isinstance(item, Rejection) and reason in item.reason and item.field == "value"
    else:
        assert isinstance(item, Row) and dict(zip(COLUMNS, item.values))["value"] == loaded
    assert outcome([item]) == fast_outcome(path, ctx)


# ---------------------------------------------------------------- mapping by code


def test_mapping_names_data_elements_org_units_and_combos_by_code_too(tmp_path):
    path = tmp_path / "codes.csv"
    path.write_text(
        "dataelement,period,orgunit,categoryoptioncombo,value\n"
        "MH_OPD_VISITS,201901,DiszpKrYNg8,F_15_24,4\n"  # codes (idScheme=CODE)
        "f7n9E0hX8qk,201902,DiszpKrYNg8,cocF0000001,5\n"  # ids
        "MALARIA_CASES,201903,DiszpKrYNg8,F_15_24,6\n",  # another programme
        encoding="utf-8",
    )
    mapping = {
        "data_elements": {"f7n9E0hX8qk": {"indicator": "mh", "code": "MH_OPD_VISITS"}},
        "org_units": {"DiszpKrYNg8": "GH-AA"},
        "category_option_combos": {
            "cocF0000001": {"sex": "F", "age_band": "15-24", "code": "F_15_24"}
        },
    }
    ctx = ParseContext(mapping=mapping, today=TODAY, defer_duplicate_check=True)
    rows, rejections, outside = outcome(list(parse_csv(path, ctx)))
    sex = COLUMNS.index("sex_code") + 1
    indicator = COLUMNS.index("indicator_code") + 1
    assert [(r[0], r[indicator], r[sex]) for r in rows] == [(1, "mh", "F"), (2, "mh", "F")]
    assert rejections == [] and [o.ids for o in outside] == [(("data_element", "MALARIA_CASES"),)]
    assert fast_outcome(path, ctx) == (rows, rejections, outside)


@pytest.mark.parametrize(
    "mapping",
    [
        {"data_elements": ["not", "a", "table"]},
        {"data_elements": {"f7n9E0hX8qk": {"code": "X"}}},
        {"org_units": {"DiszpKrYNg8": 12}},
    ],
)
def test_an_unusable_mapping_fails_the_file_with_a_reason(mapping):
    with pytest.raises(FileRejected, match="the feed's mapping is not usable"):
        list(parse_csv(DATIM, ParseContext(mapping=mapping, today=TODAY)))


def test_ids_that_are_neither_uids_nor_codes_are_rejected(tmp_path):
    long_id = "x" * 51
    path = tmp_path / "ids.csv"
    path.write_text(
        f"de,pe,ou,coc,acoc,value\n{long_id},201901,DiszpKrYNg8,,,1\n"
        "f7n9E0hX8qk,201901,has space,,,1\n",
        encoding="utf-8",
    )
    items = list(parse_csv(path, ParseContext(today=TODAY)))
    assert [(i.row, i.field) for i in items] == [(1, "dataElement"), (2, "orgUnit")]
    assert all(isinstance(i, Rejection) for i in items)


def test_the_vectorised_path_counts_a_ministry_export_without_the_row_parser(monkeypatch):
    """Out-of-scope records of a well-formed export are counted block-wise: map_value (the exact,
    per-record path) is not called for them."""
    calls = []
    original = fast.map_value
    monkeypatch.setattr(fast, "map_value", lambda *a: calls.append(a[1]) or original(*a))
    ctx = ParseContext(
        mapping=datim_mapping(with_combos=True), today=TODAY, defer_duplicate_check=True
    )
    rows, rejections, outside = fast_outcome(DATIM, ctx)
    assert calls == [] and len(outside) > 900 and rejections == []
    monkeypatch.setattr(fast, "map_value", original)
    assert (rows, rejections, outside) == outcome(list(parse_csv(DATIM, ctx)))
