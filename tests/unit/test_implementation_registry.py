"""Issue 15 item 1: the implementation registry template's contract, row by row (good and bad
rows), read the way `knowdo check` and the loader read a file (the template format)."""

from __future__ import annotations

import csv
from datetime import date

import pytest

from knowdo.checking import check_file
from knowdo.config import REPO_ROOT
from knowdo.contracts import load_contracts, parse_record
from knowdo.formats import ParseContext
from knowdo.synth import implementation

FORMAT = "knowdo-implementation-registry-csv"
CONTRACT = load_contracts()[FORMAT]
TODAY = date(2026, 12, 1)
GOOD = {
    "project_code": "pcref",
    "project_name": "Patient and Carer Race Equality Framework",
    "intervention_code": "pcref",
    "country_code": "GBR",
    "site_level": "icb",
    "site_code": "QOP",
    "pilot_date": "2023-01-01",
    "go_live_date": "2023-04-01",
    "scale_up_date": "2023-10-01",
    "de_implementation_date": "2025-03-31",
    "comparison_sites": "all_same_level",
    "outcome_indicator": "mha_people_detained",
    "stratifier": "ethnicity",
}


def problems(**changes):
    return [(p.field, p.reason) for p in parse_record(CONTRACT, GOOD | changes, TODAY).problems]


def test_a_good_row_types_its_dates_and_keeps_its_codes():
    parsed = parse_record(CONTRACT, GOOD, TODAY)
    assert parsed.problems == []
    assert parsed.values["go_live_date"] == date(2023, 4, 1)
    assert parsed.values["pilot_date"] == date(2023, 1, 1)
    assert parsed.values["comparison_sites"] == "all_same_level"
    assert CONTRACT.raw_table == "raw.template_implementation_registry"
    assert CONTRACT.grain == ("project_code", "site_code", "outcome_indicator", "stratifier")


@pytest.mark.parametrize(
    "changes",
    [
        {"pilot_date": "", "scale_up_date": "", "de_implementation_date": ""},  # go-live only
        {"go_live_date": "2030-01-01", "scale_up_date": "", "de_implementation_date": ""},  # plan
        {"de_implementation_date": "", "scale_up_date": "2023-04-01"},  # same day is ordered
        {"comparison_sites": "QT1;QKS;QHM"},
        {"site_level": "arc", "site_code": "arc_greater_manchester"},
        {"site_level": "country", "site_code": "GBR"},
        {"site_level": "region", "site_code": "CO-DC", "country_code": "COL"},
        {"site_level": "district", "site_code": "GH-AA-0101", "country_code": "GHA"},
        {"outcome_indicator": "mh_outpatient_contacts", "stratifier": "sex"},
    ],
)
def test_good_rows_pass(changes):
    assert problems(**changes) == []


@pytest.mark.parametrize(
    "changes, field, reason",
    [
        ({"pilot_date": "2023-05-01"}, "pilot_date,go_live_date", "pilot must start on or before"),
        (
            {"scale_up_date": "2023-03-01", "pilot_date": ""},
            "go_live_date,scale_up_date",
            "scale-up must begin on or after go-live",
        ),
        (
            {"de_implementation_date": "2023-03-31", "scale_up_date": "", "pilot_date": ""},
            "go_live_date,de_implementation_date",
            "de-implementation must be on or after go-live",
        ),
        (
            {"de_implementation_date": "2023-06-30"},
            "scale_up_date,de_implementation_date",
            "de-implementation must be on or after scale-up",
        ),
        ({"go_live_date": ""}, "go_live_date", "go_live_date is required but empty"),
        ({"go_live_date": "April 2023"}, "go_live_date", "April 2023"),
        ({"site_level": "county"}, "site_level", "not in code list site_levels"),
        ({"site_level": "ICB"}, "site_level", "codes are case-sensitive, write 'icb'"),
        ({"site_code": "Greater Manchester"}, "site_code", "does not have the expected form"),
        (
            {"site_level": "country", "site_code": "COL"},
            "site_code,country_code",
            "a site of level country is the country itself",
        ),
        (
            {"comparison_sites": "all_same_level;QT1"},
            "comparison_sites",
            "does not have the expected form",
        ),
        ({"comparison_sites": "QT1, QKS"}, "comparison_sites", "does not have the expected form"),
        ({"comparison_sites": "QOP"}, "comparison_sites,site_code", "its own comparison"),
        ({"comparison_sites": ""}, "comparison_sites", "comparison_sites is required but empty"),
        ({"outcome_indicator": "MHS09"}, "outcome_indicator", "not in code list impact_outcomes"),
        ({"stratifier": "race"}, "stratifier", "not in code list stratifiers"),
        ({"country_code": "UK"}, "country_code", "not in code list iso3_countries"),
        ({"project_code": "PCREF"}, "project_code", "does not have the expected form"),
    ],
)
def test_bad_rows_name_the_field_and_why(changes, field, reason):
    found = problems(**changes)
    assert any(f == field and reason in why for f, why in found), found


def write_csv(path, rows, header=None):
    header = header or list(GOOD)
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_check_reports_file_row_field_and_why_and_a_duplicate_grain(tmp_path):
    path = write_csv(
        tmp_path / "registry.csv",
        [
            GOOD,
            GOOD | {"stratifier": "all"},
            GOOD | {"site_code": "QWO", "pilot_date": "2023-06-01"},  # row 3: pilot after go-live
            GOOD,  # row 4: the grain of row 1 again
        ],
    )
    report = check_file(path, FORMAT, ParseContext(today=TODAY))
    assert (report["rows_read"], report["rows_valid"], report["rows_rejected"]) == (4, 2, 2)
    by_row = {e["row"]: e for e in report["errors"]}
    assert by_row[3]["field"] == "pilot_date,go_live_date"
    assert "pilot <= go-live <= scale-up <= de-implementation" in by_row[3]["reason"]
    assert "duplicate of row 1" in by_row[4]["reason"]


def test_optional_phase_columns_may_be_left_out_of_the_header(tmp_path):
    header = [c for c in GOOD if c not in ("pilot_date", "scale_up_date", "de_implementation_date")]
    row = {k: GOOD[k] for k in header}
    report = check_file(write_csv(tmp_path / "r.csv", [row], header), FORMAT)
    assert (report["rows_valid"], report["rows_rejected"]) == (1, 0)


def test_the_sample_registry_keeps_the_contract_and_names_every_project():
    path = REPO_ROOT / "sample_feeds" / implementation.FILE
    report = check_file(path, FORMAT)
    assert report["rows_rejected"] == 0 and report["rows_valid"] > 0, report["errors"]
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    projects = {r["project_code"] for r in rows}
    assert {"pcref", "parent_led_cbt", "alcohol_assertive_outreach"} <= projects
    # at least two Being-country programmes rolled out region by region at different dates
    staggered = {
        p
        for p in projects
        if {r["country_code"] for r in rows if r["project_code"] == p} != {"GBR"}
        and len({r["go_live_date"] for r in rows if r["project_code"] == p}) > 1
    }
    assert len(staggered) >= 2, staggered
    pcref = {r["site_code"]: r["go_live_date"] for r in rows if r["project_code"] == "pcref"}
    assert pcref == {"QOP": "2023-04-01", "QWO": "2023-04-01"}
