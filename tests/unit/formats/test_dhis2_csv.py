"""DHIS2 dataValueSets CSV: same raw rows and the same rejections as the JSON format."""

import json
from datetime import date, datetime
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FORMATS, FileRejected, OutOfScope, ParseContext, Rejection, Row
from knowdo.formats.dhis2 import COLUMNS, parse_json
from knowdo.formats.dhis2_csv import parse_csv

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "dhis2_csv" / "dataValueSet.csv"
TODAY = date(2026, 1, 1)
MAPPING = {
    "data_elements": {"f7n9E0hX8qk": "mh_outpatient_contacts", "Ix2HsbDMLea": "mh_admissions"},
    "org_units": {"DiszpKrYNg8": "GH-AA"},
}
HEADER = (
    "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,flwup"
)


def parse(path, mapping=MAPPING, **options):
    return list(parse_csv(path, ParseContext(mapping=mapping, options=options, today=TODAY)))


def write(tmp_path, *lines, name="values.csv", encoding="utf-8", newline="\n"):
    path = tmp_path / name
    path.write_bytes(newline.join([*lines, ""]).encode(encoding))
    return path


def by_column(row: Row) -> dict:
    return dict(zip(COLUMNS, row.values))


def test_fixture_parses_with_mapped_codes():
    rows = parse(FIXTURE)
    assert all(isinstance(r, Row) for r in rows) and [r.row for r in rows] == [1, 2, 3]
    first, second, third = (by_column(r) for r in rows)
    assert first["data_element"] == "f7n9E0hX8qk" and first["value"] == 10
    assert (
        first["indicator_code"] == "mh_outpatient_contacts" and first["geography_code"] == "GH-AA"
    )
    assert first["period_start"] == date(2012, 1, 1) and first["period_type"] == "month"
    assert first["last_updated"] == datetime(2012, 1, 17, 10, 21, 5)
    assert first["category_option_combo"] == "HllvX50cXC0" and first["stored_by"] == "admin"
    assert second["value"] == 1204 and second["comment"] == "late entry, checked"
    assert third["indicator_code"] == "mh_admissions" and rows[0].period == "201201"


def test_csv_and_json_of_the_same_value_give_the_same_raw_row(tmp_path):
    item = {
        "dataElement": "f7n9E0hX8qk",
        "period": "2024Q2",
        "orgUnit": "DiszpKrYNg8",
        "categoryOptionCombo": "cocF",
        "attributeOptionCombo": "aoc1",
        "value": "42",
        "storedBy": "nurse1",
        "lastUpdated": "2024-07-02T08:00:00.000",
        "comment": "ok",
    }
    mapping = {**MAPPING, "category_option_combos": {"cocF": {"sex": "F", "age_band": "15-24"}}}
    json_path = tmp_path / "v.json"
    json_path.write_text(json.dumps({"dataValues": [item]}), encoding="utf-8")
    csv_path = write(
        tmp_path,
        HEADER,
        "f7n9E0hX8qk,2024Q2,DiszpKrYNg8,cocF,aoc1,42,nurse1,2024-07-02T08:00:00.000,ok,",
    )
    (from_json,) = parse_json(json_path, ParseContext(mapping=mapping, today=TODAY))
    (from_csv,) = parse(csv_path, mapping)
    assert from_csv == from_json
    assert (
        by_column(from_csv)["sex_code"] == "F" and by_column(from_csv)["age_band_code"] == "15-24"
    )


@pytest.mark.parametrize(
    "header",
    [
        "DataElement,Period,OrgUnit,CatOptCombo,AttrOptCombo,Value",
        "dataElement,period,orgUnit,categoryOptionCombo,attributeOptionCombo,value",
        "dataelement,period,orgunit,categoryoptioncombo,attributeoptioncombo,value",
    ],
)
def test_header_names_in_any_case_and_the_json_names_are_accepted(tmp_path, header):
    (row,) = parse(write(tmp_path, header, "f7n9E0hX8qk,201203,DiszpKrYNg8,cocX,aocY,5"))
    values = by_column(row)
    assert (values["category_option_combo"], values["attribute_option_combo"]) == ("cocX", "aocY")
    assert values["value"] == 5 and values["period"] == "201203"


def test_deleted_column_keeps_the_deletion_flagged(tmp_path):
    path = write(
        tmp_path,
        "dataelement,period,orgunit,catoptcombo,value,deleted",
        "f7n9E0hX8qk,201201,DiszpKrYNg8,c1,,true",
        "f7n9E0hX8qk,201202,DiszpKrYNg8,c1,4,false",
    )
    deleted, kept = (by_column(r) for r in parse(path))
    assert deleted["deleted"] is True and deleted["value"] is None
    assert kept["deleted"] is False and kept["value"] == 4


def test_bad_records_are_rejected_with_reasons_and_the_rest_load(tmp_path):
    path = write(
        tmp_path,
        HEADER,
        "f7n9E0hX8qk,201201,DiszpKrYNg8,c1,a1,12,,,,",
        "f7n9E0hX8qk,201202,DiszpKrYNg8,c1,a1,-3,,,,",
        "f7n9E0hX8qk,201203,DiszpKrYNg8,c1,a1,lots,,,,",
        "UNKNOWNDE01,201204,DiszpKrYNg8,c1,a1,2,,,,",
        "f7n9E0hX8qk,209901,DiszpKrYNg8,c1,a1,2,,,,",
        "f7n9E0hX8qk,201201,DiszpKrYNg8,c1,a1,13,,,,",  # same key as record 1
        "f7n9E0hX8qk,201205,DiszpKrYNg8,c1,a1,7,,,,,extra",
        "f7n9E0hX8qk,201206,DiszpKrYNg8,c1,a1,,,,,",
    )
    items = parse(path)
    assert [i.row for i in items if isinstance(i, Row)] == [1]
    rejected = {i.row: i for i in items if isinstance(i, Rejection)}
    assert set(rejected) == {2, 3, 5, 6, 7, 8}
    assert "negative" in rejected[2].reason and rejected[2].value == "-3"
    assert "not a number" in rejected[3].reason
    # a data element outside the mapping is out of scope, not an error
    (outside,) = [i for i in items if isinstance(i, OutOfScope)]
    assert outside.row == 4 and outside.ids == (("data_element", "UNKNOWNDE01"),)
    assert "future" in rejected[5].reason
    assert "duplicate" in rejected[6].reason
    assert "more cell(s) than the header" in rejected[7].reason and rejected[7].value == "extra"
    assert rejected[8].field == "value" and "missing" in rejected[8].reason


def test_bom_crlf_and_a_declared_latin1_encoding_are_read(tmp_path):
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + FIXTURE.read_bytes().replace(b"\n", b"\r\n"))
    assert [by_column(r)["value"] for r in parse(bom)] == [10, 1204, 7]
    latin = write(
        tmp_path,
        HEADER,
        "f7n9E0hX8qk,201201,DiszpKrYNg8,c1,a1,3,,,Clinique Ménière,",
        name="latin.csv",
        encoding="latin-1",
    )
    (row,) = parse(latin, encoding="latin-1")
    assert by_column(row)["comment"] == "Clinique Ménière"
    with pytest.raises(FileRejected, match="not valid utf-8"):
        parse(latin)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("dataelement,period,orgunit\nf7n9E0hX8qk,201201,DiszpKrYNg8\n", "missing column.*value"),
        ("", "empty"),
        ('{"dataValues": []}\n', "header mismatch"),
    ],
)
def test_unreadable_files_are_rejected_whole(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileRejected, match=message):
        parse(path)


def test_the_format_is_detected_from_the_header(tmp_path):
    assert detect_format(FIXTURE) == "dhis2-csv"
    camel = write(
        tmp_path, "dataElement,period,orgUnit,categoryOptionCombo,value", "a,201201,b,c,1"
    )
    assert detect_format(camel) == "dhis2-csv"
    assert FORMATS["dhis2-csv"].raw_table == FORMATS["dhis2-json"].raw_table
