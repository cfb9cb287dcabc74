"""WHO GHO CSV exports: the two real files (API layout) and the portal and OData layouts."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FileRejected, ParseContext, Rejection, Row
from knowdo.formats.who_gho import COLUMNS, parse_csv

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "who_gho"
MH_6 = FIXTURES / "MH_6.csv"
GHED = FIXTURES / "GHED_GGHE-DCHE_SHA2011.csv"
TODAY = date(2026, 1, 1)

PORTAL_HEADER = (
    "IndicatorCode,Indicator,ValueType,ParentLocationCode,ParentLocation,Location type,"
    "SpatialDimValueCode,Location,Period type,Period,IsLatestYear,Dim1 type,Dim1,Dim1ValueCode,"
    "Dim2 type,Dim2,Dim2ValueCode,Dim3 type,Dim3,Dim3ValueCode,DataSourceDimValueCode,DataSource,"
    "FactValueNumericPrefix,FactValueNumeric,FactValueUoM,FactValueNumericLowPrefix,"
    "FactValueNumericLow,FactValueNumericHighPrefix,FactValueNumericHigh,Value,"
    "FactValueTranslationID,FactComments,Language,DateModified"
)


def portal_line(
    code="GHA",
    period="2019",
    sex="SEX_FMLE",
    value="4.1",
    low="2.9",
    high="5.6",
    text="4.1 [2.9-5.6]",
    location_type="Country",
    indicator="SDGSUICIDE",
):
    return (
        f"{indicator},Crude suicide rates (per 100 000 population),numeric,AFR,Africa,"
        f"{location_type},{code},Ghana,Year,{period},true,Sex,Female,{sex},,,,,,,,,,{value},,,"
        f"{low},,{high},{text},,,EN,2021-02-09T00:00:00.000Z"
    )


def parse(path, **options):
    return list(parse_csv(path, ParseContext(options=options, today=TODAY)))


def rows_of(items):
    return [dict(zip(COLUMNS, i.values)) for i in items if isinstance(i, Row)]


def write(tmp_path, *lines, name="gho.csv"):
    path = tmp_path / name
    path.write_text("\n".join([*lines, ""]), encoding="utf-8")
    return path


def test_mental_health_atlas_export_loads_every_row_with_its_values():
    items = parse(MH_6)
    rows = rows_of(items)
    assert len(items) == len(rows) == 146
    afg = rows[0]
    assert afg["export_layout"] == "api" and afg["indicator_code"] == "MH_6"
    assert (afg["spatial_type"], afg["spatial_code"], afg["country_code"]) == (
        "COUNTRY",
        "AFG",
        "AFG",
    )
    assert afg["period"] == 2016 and (afg["period_start"], afg["period_end"]) == (
        date(2016, 1, 1),
        date(2016, 12, 31),
    )
    # the unrounded NumericValue, not the rounded display Value
    assert afg["value_numeric"] == Decimal("0.2312") and afg["value_text"] == "0.231"
    assert afg["is_suppressed"] is False and afg["value_low"] is None
    assert afg["date_modified"] == datetime(2019, 4, 25, 15, 31, 58, tzinfo=UTC)
    ghana = next(r for r in rows if r["country_code"] == "GHA")
    assert ghana["value_numeric"] == Decimal("0.05801")
    assert items[0].period == "MH_6:2016" and items[0].period_start == date(2016, 1, 1)


def test_health_expenditure_export_keeps_regions_income_groups_and_the_globe():
    rows = rows_of(parse(GHED))
    assert len(rows) == 4637
    kinds = {}
    for r in rows:
        kinds[r["spatial_type"]] = kinds.get(r["spatial_type"], 0) + 1
    assert kinds == {"COUNTRY": 4384, "REGION": 138, "WORLDBANKINCOMEGROUP": 92, "GLOBAL": 23}
    assert all(r["country_code"] is None for r in rows if r["spatial_type"] != "COUNTRY")
    srb = rows[0]
    assert (srb["country_code"], srb["period"], srb["value_numeric"]) == (
        "SRB",
        2013,
        Decimal("59.86"),
    )
    assert srb["parent_location_code"] == "EUR"
    ghana_2021 = next(r for r in rows if r["country_code"] == "GHA" and r["period"] == 2021)
    assert (
        ghana_2021["value_numeric"] == Decimal("54.38338") and ghana_2021["value_text"] == "54.38"
    )
    world_2001 = next(r for r in rows if r["spatial_type"] == "GLOBAL" and r["period"] == 2001)
    assert world_2001["spatial_code"] == "GLOBAL" and world_2001["value_numeric"] == Decimal(
        "50.78688"
    )


def test_portal_export_layout_with_bounds_and_dimensions(tmp_path):
    path = write(
        tmp_path,
        PORTAL_HEADER,
        portal_line(),
        portal_line(sex="SEX_MLE", value="9.5", low="7.0", high="12.3"),
    )
    female, male = rows_of(parse(path))
    assert female["export_layout"] == "portal"
    assert female["indicator_name"] == "Crude suicide rates (per 100 000 population)"
    assert (female["spatial_type"], female["country_code"], female["period"]) == (
        "Country",
        "GHA",
        2019,
    )
    assert (female["dim1_type"], female["dim1_code"]) == ("Sex", "SEX_FMLE")
    assert (female["value_numeric"], female["value_low"], female["value_high"]) == (
        Decimal("4.1"),
        Decimal("2.9"),
        Decimal("5.6"),
    )
    assert (female["period_start"], female["period_end"]) == (date(2019, 1, 1), date(2019, 12, 31))
    assert male["dim1_code"] == "SEX_MLE" and male["value_numeric"] == Decimal("9.5")


def test_odata_field_names_are_read(tmp_path):
    path = write(
        tmp_path,
        "Id,IndicatorCode,SpatialDimType,SpatialDim,TimeDimType,TimeDim,Dim1Type,Dim1,"
        "NumericValue,Low,High,Value,Date",
        "1,MH_12,COUNTRY,SEN,YEAR,2020,SEX,SEX_BTSX,0.3,,,0.3,2021-05-01T00:00:00Z",
    )
    (row,) = rows_of(parse(path))
    assert row["export_layout"] == "odata" and row["country_code"] == "SEN"
    assert (row["dim1_type"], row["dim1_code"], row["value_numeric"]) == (
        "SEX",
        "SEX_BTSX",
        Decimal("0.3"),
    )


def test_facts_without_a_number_are_kept_categorical_or_flagged_never_zero(tmp_path):
    path = write(
        tmp_path,
        PORTAL_HEADER,
        portal_line(code="IND", value="", low="", high="", text="Yes"),
        portal_line(code="PAK", value="", low="", high="", text="No data"),
        portal_line(code="EGY", value="", low="", high="", text=""),
        portal_line(code="VNM", value="", low="", high="", text="*"),
        portal_line(code="SLE", value="", low="", high="", text="12.5"),
    )
    yes, no_data, empty, star, text_only = rows_of(parse(path))
    assert (yes["value_numeric"], yes["value_text"], yes["is_suppressed"]) == (None, "Yes", False)
    for missing in (no_data, empty, star):
        assert missing["value_numeric"] is None and missing["is_suppressed"] is True
    assert text_only["value_numeric"] == Decimal("12.5") and text_only["is_suppressed"] is False


def test_bad_rows_are_rejected_with_reasons(tmp_path):
    path = write(
        tmp_path,
        PORTAL_HEADER,
        portal_line(code="GH"),
        portal_line(code="COL", period="2015-2019"),
        portal_line(code="ECU", period="2031"),
        portal_line(code="ROU", low="6", high="2"),
        portal_line(code="TZA", value="four"),
        portal_line(code="MAR"),
        portal_line(code="MAR"),
        portal_line(code="AFR", location_type="WHO region"),
    )
    items = parse(path)
    assert [r["spatial_code"] for r in rows_of(items)] == ["MAR", "AFR"]
    rejected = {i.row: i for i in items if isinstance(i, Rejection)}
    assert set(rejected) == {1, 2, 3, 4, 5, 7}
    assert rejected[1].field == "SpatialDimValueCode" and "alpha-3" in rejected[1].reason
    assert rejected[2].field == "Period" and "not a year" in rejected[2].reason
    assert "future" in rejected[3].reason
    assert "above the upper bound" in rejected[4].reason
    assert rejected[5].field == "FactValueNumeric" and rejected[5].value == "four"
    assert "duplicate" in rejected[7].reason


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("IndicatorCode,Country,Year,Value\nMH_6,AFG,2016,0.2\n", "not a WHO GHO export"),
        ("", "empty"),
    ],
)
def test_unreadable_files_are_rejected_whole(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FileRejected, match=message):
        parse(path)


def test_the_format_is_detected_from_the_header(tmp_path):
    assert detect_format(MH_6) == detect_format(GHED) == "who-gho-csv"
    assert detect_format(write(tmp_path, PORTAL_HEADER, portal_line())) == "who-gho-csv"
