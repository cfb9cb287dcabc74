"""KnowDo CSV templates: good and bad files of every template, header rules, sniffing,
`knowdo check`."""

import json
import os
import subprocess
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FORMATS, FileRejected, ParseContext, Rejection, Row

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "templates"
TODAY = date(2024, 6, 30)
TEMPLATES = ("ministry-budget", "ngo-service-use", "ngo-outcomes", "population", "prevalence")


def fmt(template):
    return f"knowdo-{template}-csv"


def parse(template, path, **options):
    return list(FORMATS[fmt(template)].parse(path, ParseContext(options=options, today=TODAY)))


def rows_of(template, path):
    spec = FORMATS[fmt(template)]
    items = parse(template, path)
    assert all(isinstance(i, Row) for i in items), [i for i in items if isinstance(i, Rejection)]
    return [dict(zip(spec.columns, i.values)) for i in items]


def rejections_of(template, path):
    """{row: [(field, reason), ...]} and the rows that loaded."""
    items = parse(template, path)
    rejected: dict[int, list] = {}
    for item in items:
        if isinstance(item, Rejection):
            rejected.setdefault(item.row, []).append((item.field, item.reason))
    return rejected, [i.row for i in items if isinstance(i, Row)]


def write(tmp_path, text, name="file.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --- good files -----------------------------------------------------------------------------


def test_service_use_with_bom_crlf_thousands_and_suppression_loads_every_row():
    raw = (FIXTURES / "ngo-service-use_good.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # the fixture is what Excel writes
    rows = rows_of("ngo-service-use", FIXTURES / "ngo-service-use_good.csv")
    assert len(rows) == 9
    first = rows[0]
    assert first["organisation_id"] == "KD-NGO-0042"  # the BOM is not part of the first column
    assert (first["people_reached"], first["sessions_delivered"]) == (1250, 4830)
    assert first["period"] == date(2024, 1, 1) and first["contract_version"] == "1.0.0"
    assert first["suppressed_columns"] == []
    suppressed = rows[3]
    assert (suppressed["group_code"], suppressed["people_reached"]) == ("0-14", None)
    assert suppressed["suppressed_columns"] == ["people_reached", "sessions_delivered"]
    assert rows[8]["suppressed_columns"] == ["sessions_delivered"]  # N/A, never zero


def test_service_use_rows_carry_their_period_for_resend_supersession():
    # the supersession scope is the submitter and place as well as the period: one feed may carry
    # many places' files, and a resend for one place must not supersede another's
    items = parse("ngo-service-use", FIXTURES / "ngo-service-use_good.csv")
    periods = {(i.period, i.period_start) for i in items}
    assert ("KD-NGO-0042:GHA:GH-AA:2024-01", date(2024, 1, 1)) in periods
    assert {p.rsplit(":", 1)[1] for p, _ in periods} == {"2024-01", "2024-02"}
    assert {start for _, start in periods} == {date(2024, 1, 1), date(2024, 2, 1)}


def test_outcomes_good_file():
    rows = rows_of("ngo-outcomes", FIXTURES / "ngo-outcomes_good.csv")
    assert len(rows) == 7
    assert rows[0]["mean_score_before"] == Decimal("15.8") and rows[0]["people_recovered"] == 187
    assert rows[4]["suppressed_columns"] == [
        "people_assessed",
        "mean_score_before",
        "mean_score_after",
        "people_reliably_improved",
        "people_recovered",
    ]
    assert {r["instrument"] for r in rows} == {"PHQ-9", "GAD-7"}


def test_budget_keeps_quoted_newlines_and_formula_text_verbatim():
    rows = rows_of("ministry-budget", FIXTURES / "ministry-budget_good.csv")
    assert len(rows) == 6
    assert rows[0]["budget_line"] == "MOH/MH/01 Mental Health Authority\nrecurrent expenditure"
    assert rows[0]["amount"] == Decimal(48500000) and rows[1]["amount"] == Decimal("12750000.50")
    assert rows[4]["amount"] == Decimal(1250000000) and rows[4]["currency"] == "XOF"
    assert rows[4]["budget_line"] == "Programme santé mentale — prise en charge communautaire"
    assert rows[5]["source_document"] == "=cmd|' /C calc'!A0"
    assert "suppressed_columns" not in rows[0]  # nothing in a budget can be suppressed


def test_population_with_and_without_its_optional_columns():
    full = rows_of("population", FIXTURES / "population_good.csv")
    assert len(full) == 7 and full[0]["ethnicity"] == "asian" and full[0]["imd_decile"] == "1"
    assert full[0]["population"] == 14210 and full[4]["ethnicity"] is None
    minimal = rows_of("population", FIXTURES / "population_minimal.csv")
    assert [(r["sex"], r["population"], r["ethnicity"]) for r in minimal] == [
        ("F", 5410220, None),
        ("M", 5502871, None),
    ]


def test_prevalence_good_file_allows_a_missing_interval():
    rows = rows_of("prevalence", FIXTURES / "prevalence_good.csv")
    assert len(rows) == 6
    assert (rows[0]["lower_percent"], rows[0]["prevalence_percent"], rows[0]["upper_percent"]) == (
        Decimal("5.1"),
        Decimal("5.9"),
        Decimal("6.8"),
    )
    assert rows[4]["lower_percent"] is None and rows[4]["upper_percent"] is None


# --- bad rows -------------------------------------------------------------------------------


SERVICE_USE_GRAIN = (
    "organisation_id,country_code,geography_code,period,intervention_code,stratifier,group_code"
)


def test_service_use_bad_rows_each_rejected_for_its_fault():
    rejected, loaded = rejections_of("ngo-service-use", FIXTURES / "ngo-service-use_bad_rows.csv")
    assert loaded == [1, 13]
    expected = {
        2: ("people_reached", "-3 is below the minimum of 0 (a count cannot be negative)"),
        3: ("period", "'2031-01' is in the future"),
        4: ("period", "is not a month (expected YYYY-MM"),
        5: ("country_code", "'GHX' is not in code list iso3_countries"),
        6: ("group_code", "'X' is not a group of stratifier 'sex'"),
        7: ("country_code", "case-sensitive, write 'GHA'"),
        8: ("people_reached", "'12.5' is not a whole number"),
        9: ("sessions_delivered,people_reached", "sessions_delivered is below people_reached"),
        10: (SERVICE_USE_GRAIN, "duplicate of row 1"),
        11: ("intervention_code", "intervention_code is required but empty"),
        12: (None, "the row has 1 more cell(s) than the header"),
    }
    assert sorted(rejected) == sorted(expected)
    for row, (field, reason) in expected.items():
        assert len(rejected[row]) == 1 and rejected[row][0][0] == field, rejected[row]
        assert reason in rejected[row][0][1], rejected[row]


def test_outcomes_bad_rows_break_counts_scores_codes_and_periods():
    rejected, loaded = rejections_of("ngo-outcomes", FIXTURES / "ngo-outcomes_bad_rows.csv")
    assert loaded == [1]
    assert {row: [r for _, r in problems] for row, problems in rejected.items()} == {
        2: ["people_recovered exceeds people_assessed"],
        3: ["people_reliably_improved exceeds people_assessed"],
        4: ["GAD-7 scores range from 0 to 21"],
        5: ["29 is above the maximum of 27"],
        6: [
            (
                "'PHQ9' is not in code list instruments (feeds/contracts/codelists.yml)"
                " (allowed: GAD-7, PHQ-9)"
            )
        ],
        7: ["'abc' is not a number"],
        8: ["'2031-03' is in the future (received 2024-06-30)"],
    }


def test_budget_bad_rows():
    rejected, loaded = rejections_of("ministry-budget", FIXTURES / "ministry-budget_bad_rows.csv")
    assert loaded == [1]
    fields = {row: sorted(f for f, _ in problems) for row, problems in rejected.items()}
    assert fields == {
        2: ["currency"],
        3: ["area_of_need"],
        4: ["amount"],
        5: ["fiscal_year"],
        6: ["amount", "amount_type"],
        7: ["country_code"],
    }
    assert "write numbers without units or symbols" in dict(rejected[6])["amount"]


def test_population_bad_rows():
    rejected, loaded = rejections_of("population", FIXTURES / "population_bad_rows.csv")
    assert loaded == [1]
    fields = {row: [f for f, _ in problems] for row, problems in rejected.items()}
    assert fields == {
        2: ["population"],
        3: ["sex"],
        4: ["age_band"],
        5: ["imd_decile"],
        6: ["year"],
        7: ["source"],
        8: ["geography_code,year,sex,age_band,ethnicity,imd_decile"],
    }
    assert "0 is below the minimum of 1" in rejected[2][0][1]


def test_prevalence_bad_rows():
    rejected, loaded = rejections_of("prevalence", FIXTURES / "prevalence_bad_rows.csv")
    assert loaded == [1]
    fields = {row: [f for f, _ in problems] for row, problems in rejected.items()}
    interval = "lower_percent,prevalence_percent,upper_percent"
    assert fields == {
        2: [interval],
        3: ["prevalence_percent"],
        4: ["condition"],
        5: ["year"],
        6: [interval],
    }


def test_an_invalid_first_row_does_not_hide_a_later_duplicate_of_a_valid_one(tmp_path):
    header = "geography_code,year,condition,sex,age_band,prevalence_percent,source"
    rows = [
        "GHA,2021,depression,F,all,500,x",
        "GHA,2021,depression,F,all,5,x",
        "GHA,2021,depression,F,all,6,x",
    ]
    path = write(tmp_path, "\n".join([header, *rows, ""]))
    rejected, loaded = rejections_of("prevalence", path)
    assert loaded == [2] and "above the maximum" in rejected[1][0][1]
    assert "duplicate of row 2" in rejected[3][0][1]


# --- whole-file rejections ------------------------------------------------------------------


def test_a_missing_required_column_rejects_the_file():
    with pytest.raises(
        FileRejected,
        match=r"^header mismatch: missing required column\(s\) "
        r"people_recovered of the ngo-outcomes template v1\.0\.0$",
    ):
        parse("ngo-outcomes", FIXTURES / "ngo-outcomes_missing_column.csv")


def test_an_unknown_column_rejects_the_file_naming_it():
    with pytest.raises(FileRejected, match=r"^header mismatch: unknown column\(s\) notes; "):
        parse("ngo-outcomes", FIXTURES / "ngo-outcomes_unknown_column.csv")


def test_a_repeated_or_unnamed_header_column_rejects_the_file(tmp_path):
    header = "geography_code,year,condition,sex,age_band,prevalence_percent,source"
    with pytest.raises(FileRejected, match=r"column\(s\) sex appear more than once"):
        parse("prevalence", write(tmp_path, header + ",sex\n"))
    with pytest.raises(FileRejected, match=r"unknown column\(s\) \(unnamed, position 8\)"):
        parse("prevalence", write(tmp_path, header + ",\n"))


def test_a_file_not_in_its_declared_encoding_is_rejected_and_reads_once_declared():
    with pytest.raises(FileRejected, match="not valid utf-8 text"):
        parse("prevalence", FIXTURES / "prevalence_latin1.csv")
    rows = parse("prevalence", FIXTURES / "prevalence_latin1.csv", encoding="latin-1")
    assert isinstance(rows[0], Row) and rows[0].values[8] == "Estimación del Ministerio de Salud"


def test_an_empty_file_is_rejected(tmp_path):
    with pytest.raises(FileRejected, match="the file is empty"):
        parse("population", write(tmp_path, ""))


def test_a_header_only_file_is_valid_and_empty(tmp_path):
    assert (
        parse("population", write(tmp_path, "geography_code,year,sex,age_band,population,source\n"))
        == []
    )


def test_a_semicolon_file_reads_when_the_feed_declares_its_delimiter(tmp_path):
    path = write(
        tmp_path,
        "geography_code;year;sex;age_band;population;source\nGHA;2024;F;0-14;5410220;UN WPP\n",
    )
    with pytest.raises(FileRejected, match="header mismatch"):
        parse("population", path)
    assert isinstance(parse("population", path, delimiter=";")[0], Row)


# --- format detection and `knowdo check` ----------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_is_recognised_from_its_header(template):
    assert detect_format(FIXTURES / f"{template}_good.csv") == fmt(template)


def test_a_header_with_only_the_required_columns_is_recognised_too():
    assert detect_format(FIXTURES / "population_minimal.csv") == "knowdo-population-csv"


def test_a_header_with_an_unknown_column_is_not_claimed_by_a_template():
    spec = FORMATS["knowdo-ngo-outcomes-csv"]
    header = (FIXTURES / "ngo-outcomes_unknown_column.csv").read_text(encoding="utf-8")
    assert not spec.sniff(header)
    assert spec.sniff((FIXTURES / "ngo-outcomes_good.csv").read_text(encoding="utf-8"))
    assert not spec.sniff(
        (FIXTURES / "ngo-outcomes_missing_column.csv").read_text(encoding="utf-8")
    )


def knowdo_check(path):
    return subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "knowdo"),
            "check",
            str(path),
            "--format",
            "knowdo-ngo-outcomes-csv",
            "--json",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ.copy(),
    )


def test_knowdo_check_exit_codes_for_a_submitter():
    good = knowdo_check(FIXTURES / "ngo-outcomes_good.csv")
    assert good.returncode == 0, good.stderr
    report = json.loads(good.stdout)
    assert (report["rows_read"], report["rows_valid"], report["rows_rejected"]) == (7, 7, 0)

    bad = knowdo_check(FIXTURES / "ngo-outcomes_bad_rows.csv")
    assert bad.returncode == 1, bad.stderr
    report = json.loads(bad.stdout)
    assert (report["rows_valid"], report["rows_rejected"]) == (1, 7)
    first = report["errors"][0]
    assert (first["row"], first["field"], first["reason"]) == (
        2,
        "people_recovered,people_assessed",
        "people_recovered exceeds people_assessed",
    )

    unreadable = knowdo_check(FIXTURES / "ngo-outcomes_missing_column.csv")
    assert unreadable.returncode == 2 and unreadable.stdout == ""
    assert "header mismatch: missing required column(s) people_recovered" in unreadable.stderr
    assert "Traceback" not in unreadable.stderr
