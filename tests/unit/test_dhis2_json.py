import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from knowdo.formats import FileRejected, OutOfScope, ParseContext, Rejection, Row
from knowdo.formats.dhis2 import parse_json as _parse_json

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "dhis2_dataValueSetJ.json"
MAPPING = {
    "data_elements": {"f7n9E0hX8qk": "mh_outpatient_contacts", "DE2": "mh_outpatient_contacts"},
    "org_units": {"DiszpKrYNg8": "GH-AA"},
}


def parse_json(path, mapping, today):
    return _parse_json(path, ParseContext(mapping=mapping, today=today))


def write(tmp_path, doc, name="f.json"):
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return p


def test_real_dhis2_fixture_parses():
    items = list(parse_json(REAL, MAPPING, today=date(2026, 1, 1)))
    assert len(items) == 1 and isinstance(items[0], Row)
    values = dict(zip(["data_element", "period", "org_unit"], items[0].values[:3]))
    assert values == {"data_element": "f7n9E0hX8qk", "period": "201201", "org_unit": "DiszpKrYNg8"}
    assert items[0].values[5] == 10  # value
    assert items[0].values[-3:] == (date(2012, 1, 1), "month", date(2012, 1, 31))


def test_set_level_period_and_org_unit_apply_to_values(tmp_path):
    doc = {
        "period": "2024Q2",
        "orgUnit": "DiszpKrYNg8",
        "dataValues": [{"dataElement": "f7n9E0hX8qk", "value": "5"}],
    }
    (row,) = parse_json(write(tmp_path, doc), MAPPING, today=date(2026, 1, 1))
    assert row.values[1] == "2024Q2" and row.values[-3:] == (
        date(2024, 4, 1),
        "quarter",
        date(2024, 6, 30),
    )


def test_bad_rows_are_rejected_with_reasons_and_the_rest_loads(tmp_path):
    base = {
        "dataElement": "f7n9E0hX8qk",
        "period": "202401",
        "orgUnit": "DiszpKrYNg8",
        "value": "12",
    }
    doc = {
        "dataValues": [
            base,
            {**base, "period": "202402", "value": "-3"},
            {**base, "period": "202403", "value": "lots"},
            {**base, "period": "202404", "orgUnit": "UNKNOWN"},
            {**base, "period": "209901"},
            {**base},  # duplicate key of the first row
            {**base, "period": "202405", "value": "1,204"},
        ]
    }
    items = list(parse_json(write(tmp_path, doc), MAPPING, today=date(2026, 1, 1)))
    rows = [i for i in items if isinstance(i, Row)]
    rejections = {i.row: i for i in items if isinstance(i, Rejection)}
    assert [r.row for r in rows] == [1, 7]
    assert rows[1].values[5] == 1204
    assert "negative" in rejections[2].reason and rejections[2].field == "value"
    assert "not a number" in rejections[3].reason
    (outside,) = [i for i in items if isinstance(i, OutOfScope)]  # out of scope, not an error
    assert outside.row == 4 and outside.ids == (("org_unit", "UNKNOWN"),) and 4 not in rejections
    assert "future" in rejections[5].reason
    assert "duplicate" in rejections[6].reason


def test_deleted_values_are_kept_flagged(tmp_path):
    doc = {
        "dataValues": [
            {
                "dataElement": "f7n9E0hX8qk",
                "period": "202401",
                "orgUnit": "DiszpKrYNg8",
                "value": "",
                "deleted": True,
            }
        ]
    }
    (row,) = parse_json(write(tmp_path, doc), MAPPING, today=date(2026, 1, 1))
    assert row.values[6] is True and row.values[5] is None


def test_formula_text_is_kept_inert(tmp_path):
    doc = {
        "dataValues": [
            {
                "dataElement": "f7n9E0hX8qk",
                "period": "202401",
                "orgUnit": "DiszpKrYNg8",
                "value": "3",
                "comment": "=cmd|' /C calc'!A0",
            }
        ]
    }
    (row,) = parse_json(write(tmp_path, doc), MAPPING, today=date(2026, 1, 1))
    assert row.values[9] == "=cmd|' /C calc'!A0"  # stored as text, never evaluated


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"dataValues": [{"dataElement": "f7n9E0hX8qk", "period": "2024', "not valid JSON"),
        ('{"rows": []}', "not a DHIS2 dataValueSet"),
        ("dataelement,period\nX,202401\n", "not valid JSON"),
    ],
)
def test_unreadable_files_are_rejected_whole(tmp_path, content, message):
    with pytest.raises(FileRejected, match=message):
        list(parse_json(write(tmp_path, content), MAPPING, today=date(2026, 1, 1)))


def test_bom_is_accepted(tmp_path):
    p = tmp_path / "bom.json"
    p.write_bytes(b"\xef\xbb\xbf" + REAL.read_bytes())
    shutil.copy(REAL, tmp_path / "plain.json")
    assert len(list(parse_json(p, MAPPING, today=date(2026, 1, 1)))) == 1
