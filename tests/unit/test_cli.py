"""The `knowdo` command as data submitters and engineers use it (real subprocesses)."""

import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
KNOWDO = [str(REPO / ".venv" / "bin" / "knowdo")]
CHECK_KEYS = {"file", "format", "sha256", "rows_read", "rows_valid", "rows_rejected", "errors"}


def knowdo(*args):
    return subprocess.run(
        [*KNOWDO, *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_check_json_contract_on_a_file_with_a_bad_row():
    proc = knowdo(
        "check",
        str(REPO / "sample_feeds/dhis2/gha_moh/gha_mh_service_use_2025.json"),
        "--feed",
        "gha_moh_dhis2",
        "--json",
    )
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert CHECK_KEYS <= set(report)
    assert report["format"] == "dhis2-json" and len(report["sha256"]) == 64
    assert report["rows_rejected"] == 1 and report["rows_valid"] == report["rows_read"] - 1
    assert report["rows_out_of_scope"] == 0
    assert report["coverage"]["feed"] == "gha_moh_dhis2"
    assert report["coverage"]["unmapped_ids"] == []
    (error,) = report["errors"]
    assert set(error) == {"row", "field", "value", "reason"} and error["value"] == "-4"
    assert report["errors_total"] == 1


def test_check_of_a_dhis2_file_without_a_feed_checks_structure_and_lists_every_id():
    path = REPO / "sample_feeds/dhis2/gha_moh/gha_mh_service_use_2025.json"
    proc = knowdo("check", str(path), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    # no mapping: nothing is in scope, the negative count is a value check of a mapped element
    assert report["rows_valid"] == 0 and report["rows_rejected"] == 0
    assert report["rows_out_of_scope"] == report["rows_read"] > 0
    coverage = report["coverage"]
    assert coverage["feed"] is None and coverage["rows_in_scope"] == 0
    by_kind = {}
    for entry in coverage["unmapped_ids"]:
        by_kind.setdefault(entry["kind"], 0)
        by_kind[entry["kind"]] += entry["rows"]
    # every row names one data element and one org unit (the combos too, when they are unmapped)
    assert by_kind["data_element"] == by_kind["org_unit"] == report["rows_read"]
    text = knowdo("check", str(path)).stdout
    assert "no feed mapping" in text and "KdMhOpdVis1" in text


@pytest.mark.parametrize(
    "relative",
    [
        "sample_feeds/iati/who_activities.xml",
        "sample_feeds/360giving/wellcome_grants.json",
        "sample_feeds/360giving/nihr_grants.csv",
        "sample_feeds/who_gho/GHED_CHE_pc_US_SHA2011.csv",
        "sample_feeds/nhs_talking_therapies/measures_annual_2024-25.csv",
        "sample_feeds/population/gha_population.csv",
        "sample_feeds/budgets/gha_mh_budget.csv",
    ],
)
def test_check_detects_the_format_and_exits_0_on_valid_files(relative):
    proc = knowdo("check", str(REPO / relative), "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(proc.stdout)
    assert report["rows_rejected"] == 0 and report["rows_valid"] > 0


@pytest.mark.parametrize("content", [b"\x00\x01\x02 binary \xff\xfe", b"just some words\n", b""])
def test_unreadable_files_exit_2_with_one_line_and_no_traceback(tmp_path, content):
    path = tmp_path / "mystery.dat"
    path.write_bytes(content)
    proc = knowdo("check", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "mystery.dat" in proc.stderr


def test_truncated_file_with_explicit_format_exits_2(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text('{"dataValues": [{"dataElement": "x", "period": "2024')
    proc = knowdo("check", str(path), "--format", "dhis2-json", "--json")
    assert proc.returncode == 2 and "not valid JSON" in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize(
    "command", [[], ["check"], ["ingest"], ["feeds"], ["synth"], ["db", "migrate"]]
)
def test_help_everywhere(command):
    proc = knowdo(*command, "--help")
    assert proc.returncode == 0 and "Usage:" in proc.stdout


# --- issue 14: one command for every operation -------------------------------------------------
OPERATIONS = {  # subcommand: what its own --help names
    "main-job": "knowdo main-job",
    "gate-and-publish": "--run-id",
    "watchdog": "knowdo watchdog",
    "superset": "{import,wait}",
    "superset-access": "{apply}",
    "row-security": "{sql}",
    "stack": "{strays,kill-strays}",
}


@pytest.mark.parametrize("command", sorted(OPERATIONS))
def test_every_operation_is_a_knowdo_subcommand(command):
    listed = knowdo("--help")
    assert command in listed.stdout
    proc = knowdo(command, "--help")
    assert proc.returncode == 0 and OPERATIONS[command] in proc.stdout, proc.stdout + proc.stderr


def test_an_operation_with_a_missing_option_exits_2_naming_it():
    proc = knowdo("gate-and-publish")
    assert proc.returncode == 2 and "--run-id" in proc.stderr


def test_no_python_m_entry_point_is_left_in_the_scripts_and_docs():
    """Every operation goes through `knowdo <subcommand>` (or `python -m knowdo`, the same CLI)."""
    import re

    module_run = re.compile(r"""-m["']?,?\s*["']?knowdo\.\w""")
    places = [REPO / "Makefile", REPO / "README.md", *(REPO / "infra").rglob("*.sh")]
    places += [*(REPO / "tests").rglob("*.py"), *(REPO / "docs").rglob("*.md")]
    places += [*(REPO / "bench").rglob("*.py"), *(REPO / "src").rglob("*.py")]
    offenders = [
        str(path.relative_to(REPO))
        for path in places
        if path.name != "test_cli.py" and module_run.search(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, offenders
