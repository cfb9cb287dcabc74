"""WHO GHO's older CSV layout (`GHO (CODE)`, `YEAR (DISPLAY)`, `COUNTRY (CODE)`, `Numeric`,
`Display Value`): aggregate rows kept apart from countries at their own level, "No data" and
empty values as missing, year ranges read with their first and last day."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FileRejected, ParseContext, Rejection, Row
from knowdo.formats.who_gho import COLUMNS, parse_csv

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "who_gho" / "athena_MH_6_layout.csv"
TODAY = date(2026, 1, 1)


def rows(path=FIXTURE):
    return [
        dict(zip(COLUMNS, r.values), row=r.row)
        for r in parse_csv(path, ParseContext(today=TODAY))
        if isinstance(r, Row)
    ]


def test_the_older_layout_is_detected():
    assert detect_format(FIXTURE) == "who-gho-csv"


def test_countries_carry_their_code_and_region_aggregates_do_not():
    by_row = {r["row"]: r for r in rows()}
    assert len(by_row) == 9
    afg = by_row[1]
    assert (
        afg["export_layout"],
        afg["indicator_code"],
        afg["spatial_type"],
        afg["spatial_code"],
        afg["country_code"],
        afg["parent_location_code"],
    ) == ("athena", "MH_6", "COUNTRY", "AFG", "AFG", "EMR")
    assert afg["value_numeric"] == Decimal("0.2312") and afg["value_text"] == "0.23"
    assert afg["indicator_name"].startswith("Psychiatrists")
    # a WHO region, an income group and the world: loaded at their own level, never as countries
    levels = {
        r: (by_row[r]["spatial_type"], by_row[r]["spatial_code"], by_row[r]["country_code"])
        for r in (5, 6, 7)
    }
    assert levels == {
        5: ("REGION", "AFR", None),
        6: ("WORLDBANKINCOMEGROUP", "WB_LI", None),
        7: ("GLOBAL", "GLOBAL", None),
    }
    assert by_row[5]["parent_location_code"] is None


def test_no_data_and_empty_values_are_missing_never_zero():
    by_row = {r["row"]: r for r in rows()}
    for r in (4, 8):  # Sierra Leone "No data", Romania empty
        assert by_row[r]["value_numeric"] is None and by_row[r]["is_suppressed"] is True
    assert by_row[1]["is_suppressed"] is False


def test_a_year_range_keeps_its_first_and_last_day_and_other_dimensions():
    tza = next(r for r in rows() if r["spatial_code"] == "TZA")
    assert (tza["period"], tza["period_start"], tza["period_end"]) == (
        2015,
        date(2011, 1, 1),
        date(2015, 12, 31),
    )
    assert (tza["dim1_type"], tza["dim1_code"]) == ("SEX", "BTSX")


@pytest.mark.parametrize(
    ("cells", "field", "reason"),
    [
        ({"COUNTRY (CODE)": "Ghana"}, "COUNTRY (CODE)", "ISO 3166-1 alpha-3"),
        ({"YEAR (CODE)": "2099", "YEAR (DISPLAY)": "2099"}, "YEAR (CODE)", "in the future"),
        ({"Numeric": "lots"}, "Numeric", "not a number"),
    ],
)
def test_bad_rows_are_rejected_naming_the_athena_column(tmp_path, cells, field, reason):
    header, first = FIXTURE.read_text(encoding="utf-8").splitlines()[:2]
    import csv
    import io

    names = next(csv.reader([header]))
    values = next(csv.reader([first]))
    record = dict(zip(names, values)) | cells
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    writer.writerow(record)
    path = tmp_path / "bad.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    (item,) = parse_csv(path, ParseContext(today=TODAY))
    assert isinstance(item, Rejection) and item.field == field and reason in item.reason


def test_an_unknown_header_names_the_older_layout_among_those_expected(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("GHO,YEAR,COUNTRY,VALUE\nMH_6,2016,AFG,1\n", encoding="utf-8")
    with pytest.raises(FileRejected, match=r"GHO \(CODE\)"):
        list(parse_csv(path, ParseContext(today=TODAY)))
