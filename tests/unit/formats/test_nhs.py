"""NHS Talking Therapies (monthly, annual) and MHSDS monthly CSVs: one row per measure value."""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FileRejected, ParseContext, Rejection, Row
from knowdo.formats.nhs import (
    MHSDS_COLUMNS,
    TALKING_THERAPIES_COLUMNS,
    impossible_value,
    parse_mhsds,
    parse_talking_therapies,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "nhs"
TT_MONTHLY = FIXTURES / "measures_monthly_2025-09.csv"
TT_ANNUAL = FIXTURES / "measures_annual_2024-25.csv"
MHSDS_JUNE = FIXTURES / "mhsds_monthly_2025-06.csv"  # UTF-8 with BOM, CRLF, dd/mm/yyyy
MHSDS_MAY = FIXTURES / "mhsds_monthly_2025-05_latin1.csv"  # Latin-1, ISO dates, two bad rows
TODAY = date(2026, 1, 1)
MHSDS_HEADER = (
    "REPORTING_PERIOD_START,REPORTING_PERIOD_END,STATUS,BREAKDOWN,PRIMARY_LEVEL,"
    "PRIMARY_LEVEL_DESCRIPTION,SECONDARY_LEVEL,SECONDARY_LEVEL_DESCRIPTION,MEASURE_ID,"
    "MEASURE_NAME,MEASURE_VALUE"
)


def tt(path, **options):
    return list(parse_talking_therapies(path, ParseContext(options=options, today=TODAY)))


def mhsds(path, **options):
    return list(parse_mhsds(path, ParseContext(options=options, today=TODAY)))


def tt_rows(items):
    return [dict(zip(TALKING_THERAPIES_COLUMNS, i.values)) for i in items if isinstance(i, Row)]


def mhsds_rows(items):
    return [dict(zip(MHSDS_COLUMNS, i.values)) for i in items if isinstance(i, Row)]


def rejections(items):
    return {i.row: i for i in items if isinstance(i, Rejection)}


def mhsds_line(
    value="25",
    measure_id="MHS32",
    name="Referrals starting in the reporting period",
    start="2025-05-01",
    end="2025-05-31",
):
    return (
        f"{start},{end},Performance,England,England,England,NONE,NONE,{measure_id},{name},{value}"
    )


def write(tmp_path, *lines, name="f.csv"):
    path = tmp_path / name
    path.write_text("\n".join([*lines, ""]), encoding="utf-8")
    return path


# --- Talking Therapies monthly (real national rows) ---------------------------------------------


def test_talking_therapies_monthly_real_file():
    items = tt(TT_MONTHLY)
    rows = tt_rows(items)
    assert len(items) == len(rows) == 6
    referrals = rows[0]
    assert referrals["file_layout"] == "monthly"
    assert (referrals["reporting_period_start"], referrals["reporting_period_end"]) == (
        date(2025, 9, 1),
        date(2025, 9, 30),
    )
    assert (referrals["org_level"], referrals["org_code"], referrals["org_name"]) == (
        "England",
        "all",
        "all SubICBs",
    )
    assert (referrals["secondary_org_code"], referrals["secondary_org_name"]) == (
        "all",
        "all Providers",
    )
    assert (referrals["measure_id"], referrals["measure_name"]) == (
        "M001",
        "Count_ReferralsReceived",
    )
    assert referrals["measure_value"] == 154572 and referrals["is_suppressed"] is False
    assert [r["measure_value"] for r in rows[1:4]] == [104068, 14258, 412]
    other_primary_care = rows[4]
    assert (
        other_primary_care["measure_value"] is None and other_primary_care["is_suppressed"] is True
    )
    assert other_primary_care["raw_value"] == "*"
    assert items[0].period == "2025-09-01/2025-09-30"


# --- Talking Therapies annual (wide, VariableType breakdowns) ----------------------------------


def test_talking_therapies_annual_is_unpivoted_one_row_per_measure():
    items = tt(TT_ANNUAL, reporting_period="2024-25")
    rows = tt_rows(items)
    assert len(rows) == 6 * 44 and not rejections(items)
    england = [r for r in rows if r["org_code"] == "CODE1"]
    assert len(england) == 44 and {r["file_layout"] for r in rows} == {"annual"}
    first = england[0]
    assert (first["org_level"], first["org_name"]) == ("England", "Name 1")
    assert (first["breakdown"], first["breakdown_group"], first["breakdown_subgroup"]) == (
        "Problem Descriptor",
        "Value 1",
        "Value 1",
    )
    assert (first["measure_name"], first["measure_value"]) == ("Count_ReferralsReceived", 10)
    assert (first["reporting_period_start"], first["reporting_period_end"]) == (
        date(2024, 4, 1),
        date(2025, 3, 31),
    )
    assert england[-1]["measure_name"] == "Percentage_Variable_withFCTandES"
    assert items[0].period == "2024-04-01/2025-03-31"
    assert {r.row for r in items} == {1, 2, 3, 4, 5, 6}


def test_talking_therapies_annual_markers_are_null_and_flagged_never_zero():
    provider = [r for r in tt_rows(tt(TT_ANNUAL)) if r["org_code"] == "CODE5"]
    assert len(provider) == 44
    assert all(r["measure_value"] is None and r["is_suppressed"] for r in provider)
    assert [r["raw_value"] for r in provider[:4]] == ["*", "-", "N/A", "NULL"]
    # without a declared period the rows still parse, with no period
    assert provider[0]["reporting_period_start"] is None


def test_talking_therapies_annual_impossible_cell_rejects_its_record(tmp_path):
    path = write(
        tmp_path,
        "OrgType,OrgCode,OrgName,VariableType,VariableA,VariableB,"
        "Count_ReferralsReceived,Percentage_Recovery,Mean_WaitAccessingServices",
        "ICB,QWO,West Yorkshire ICB,IMD Decile,1,1 - most deprived,420,48.5,21.3",
        "ICB,QWO,West Yorkshire ICB,IMD Decile,2,2,390,140,19",
        "ICB,QWO,West Yorkshire ICB,Ethnicity,Black,Black or Black British,-5,50,-2",
    )
    items = tt(path)
    assert [r["breakdown_group"] for r in tt_rows(items)] == ["1"] * 3
    bad = [i for i in items if isinstance(i, Rejection)]
    assert [(b.row, b.field) for b in bad] == [
        (2, "Percentage_Recovery"),
        (3, "Count_ReferralsReceived"),
        (3, "Mean_WaitAccessingServices"),
    ]
    assert "between 0 and 100" in bad[0].reason and "negative count" in bad[1].reason


@dataclass(frozen=True)
class ReceivedAs(ParseContext):
    """A parse context that knows the name the file was received under (the loader passes it)."""

    file_name: str | None = None


@pytest.mark.parametrize(
    ("file_name", "declared", "expected"),
    [
        ("measures_annual_2023-24.csv", None, (date(2023, 4, 1), date(2024, 3, 31))),
        ("measures_annual_2023-24.csv", "2024-25", (date(2024, 4, 1), date(2025, 3, 31))),
        ("measures_annual_2023-25.csv", None, (None, None)),  # not one financial year
        ("measures_annual.csv", None, (None, None)),
    ],
)
def test_annual_period_comes_from_the_feed_else_the_file_name(file_name, declared, expected):
    options = {"reporting_period": declared} if declared else {}
    items = list(
        parse_talking_therapies(
            TT_ANNUAL, ReceivedAs(options=options, today=TODAY, file_name=file_name)
        )
    )
    (period,) = {(r["reporting_period_start"], r["reporting_period_end"]) for r in tt_rows(items)}
    assert period == expected and items[0].period_start == expected[0]


@pytest.mark.parametrize("declared", ["2024-26", "last year"])
def test_a_wrongly_declared_annual_period_rejects_the_file(declared):
    with pytest.raises(FileRejected, match="reporting_period"):
        tt(TT_ANNUAL, reporting_period=declared)


def test_talking_therapies_header_mismatch(tmp_path):
    with pytest.raises(FileRejected, match="not a Talking Therapies"):
        tt(write(tmp_path, "ORG,MEASURE,VALUE", "A,B,1"))


# --- MHSDS monthly ---------------------------------------------------------------------------


def test_mhsds_file_with_bom_crlf_and_uk_dates():
    assert (
        MHSDS_JUNE.read_bytes().startswith(b"\xef\xbb\xbf") and b"\r\n" in MHSDS_JUNE.read_bytes()
    )
    items = mhsds(MHSDS_JUNE)
    rows = mhsds_rows(items)
    assert len(items) == len(rows) == 8
    national = rows[0]
    assert (national["reporting_period_start"], national["reporting_period_end"]) == (
        date(2025, 6, 1),
        date(2025, 6, 30),
    )
    assert national["status"] == "Performance" and national["measure_id"] == "MHS01"
    assert national["measure_value"] == 1512345 and national["raw_value"] == "1,512,345"
    trust = rows[2]
    assert (
        trust["primary_level_description"]
        == "Cumbria, Northumberland, Tyne and Wear NHS Foundation Trust"
    )
    suppressed = [r["measure_id"] for r in rows if r["is_suppressed"]]
    assert suppressed == ["MHS07", "MHS01", "EIP23i"]
    assert all(r["measure_value"] is None for r in rows if r["is_suppressed"])
    assert (
        rows[4]["breakdown"] == "England; Gender"
        and rows[4]["secondary_level_description"] == "Male"
    )
    assert rows[6]["measure_value"] == Decimal("71.4")


def test_mhsds_latin1_file_read_as_declared_with_its_bad_rows_rejected():
    items = mhsds(MHSDS_MAY, encoding="latin-1")
    rows = mhsds_rows(items)
    assert len(rows) == 3
    assert rows[0]["secondary_level_description"] == "Ménière's disease and vertigo service"
    assert rows[0]["measure_value"] == 1385 and rows[0]["reporting_period_start"] == date(
        2025, 5, 1
    )
    assert [(r["raw_value"], r["is_suppressed"]) for r in rows[1:]] == [("-", True), ("NULL", True)]
    bad = rejections(items)
    assert set(bad) == {4, 5}
    assert bad[4].field == "MEASURE_VALUE" and bad[4].value == "104.2"
    assert "between 0 and 100" in bad[4].reason
    assert bad[5].value == "-15" and "negative value" in bad[5].reason
    with pytest.raises(FileRejected, match="not valid utf-8"):
        mhsds(MHSDS_MAY)


@pytest.mark.parametrize("marker", ["*", "-", "N/A", "NA", "NULL", ""])
def test_every_suppression_marker_becomes_null_and_flagged(tmp_path, marker):
    (row,) = mhsds_rows(mhsds(write(tmp_path, MHSDS_HEADER, mhsds_line(value=marker))))
    assert row["measure_value"] is None and row["is_suppressed"] is True
    assert row["raw_value"] == marker


def test_zero_is_a_value_not_a_suppression(tmp_path):
    (row,) = mhsds_rows(mhsds(write(tmp_path, MHSDS_HEADER, mhsds_line(value="0"))))
    assert row["measure_value"] == 0 and row["is_suppressed"] is False


def test_mhsds_bad_rows_are_rejected_with_reasons(tmp_path):
    path = write(
        tmp_path,
        MHSDS_HEADER,
        mhsds_line(start="31/05/2025", end="2025-05-01"),
        mhsds_line(start="2025-13-01"),
        mhsds_line(start="2099-01-01", end="2099-01-31"),
        mhsds_line(value="many"),
        mhsds_line(value="12.5", name="Number of people in contact with services"),
        mhsds_line(measure_id=""),
        mhsds_line(
            value="-1.5",
            measure_id="MHS105",
            name="Mean change in ReQoL score between first and last contact",
        ),
        mhsds_line(start="01/05/2025", end="31/05/2025", value="40"),
    )
    items = mhsds(path)
    assert [r["measure_value"] for r in mhsds_rows(items)] == [Decimal("-1.5"), 40]
    bad = rejections(items)
    assert set(bad) == {1, 2, 3, 4, 5, 6}
    assert "ends before it starts" in bad[1].reason
    assert bad[2].field == "REPORTING_PERIOD_START" and "not a date" in bad[2].reason
    assert "future" in bad[3].reason
    assert "not a number" in bad[4].reason
    assert "whole number" in bad[5].reason
    assert bad[6].field == "MEASURE_ID"


def test_mhsds_header_mismatch_names_the_missing_columns(tmp_path):
    path = write(tmp_path, MHSDS_HEADER.replace(",MEASURE_VALUE", ""), "x")
    with pytest.raises(FileRejected, match="missing column.*MEASURE_VALUE"):
        mhsds(path)


@pytest.mark.parametrize(
    ("measure", "value", "allowed"),
    [
        ("Percentage_Recovery", "100", True),
        ("Percentage_Recovery", "100.1", False),
        ("Proportion of referrals entering treatment within two weeks", "-1", False),
        ("Count_ReferralsReceived", "0", True),
        ("Count_ReferralsReceived", "3.5", False),
        ("Number of people in contact with services", "-2", False),
        ("Mean_WaitAccessingServices", "-0.5", False),
        ("Mean change in PHQ-9 score", "-4.2", True),
        ("Crude rate per 100,000", "1234.5", True),
    ],
)
def test_impossible_values_are_judged_from_the_measure_name(measure, value, allowed):
    assert (impossible_value(measure, Decimal(value)) is None) is allowed


def test_formats_are_detected_from_the_header():
    assert detect_format(TT_MONTHLY) == "nhs-talking-therapies-csv"
    assert detect_format(TT_ANNUAL) == "nhs-talking-therapies-csv"
    assert detect_format(MHSDS_JUNE) == "mhsds-csv"


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("proms_annual_2019-20.csv", "PROMs"),
        ("therapy_position_annual_2022-23.csv", "therapy position"),
    ],
)
def test_annual_tables_knowdo_does_not_map_fail_naming_those_it_does(name, table):
    path = Path(__file__).resolve().parents[2] / "fixtures" / "nhs" / name
    assert detect_format(path) == "nhs-talking-therapies-csv"  # recognised, so the reason is told
    with pytest.raises(FileRejected) as caught:
        list(parse_talking_therapies(path, ParseContext(today=date(2026, 1, 1))))
    message = str(caught.value)
    assert f"annual {table}" in message and "does not map" in message
    assert "monthly activity and performance file" in message
    assert "annual main measures table (OrgType, OrgCode, OrgName, VariableType" in message


def test_the_cli_exits_2_on_an_unmapped_annual_table():
    import subprocess

    repo = Path(__file__).resolve().parents[3]
    path = repo / "tests" / "fixtures" / "nhs" / "proms_annual_2019-20.csv"
    proc = subprocess.run(
        [str(repo / ".venv" / "bin" / "knowdo"), "check", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "PROMs" in proc.stderr and "KnowDo maps" in proc.stderr
