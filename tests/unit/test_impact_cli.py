"""`knowdo evaluate its|did` as an analyst runs it (real subprocesses): the JSON keys the issue
fixes, agreement with the library functions, and one-line exit 2 for bad columns."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from knowdo.impact.did import staggered_did

REPO = Path(__file__).resolve().parents[2]
KNOWDO = str(REPO / ".venv" / "bin" / "knowdo")
FIXTURES = REPO / "tests" / "fixtures" / "impact"
ESTIMATE_KEYS = {"estimate", "lower", "upper", "p_value"}


def knowdo(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [KNOWDO, "evaluate", *args], capture_output=True, text=True, timeout=120, check=False
    )


ITS_ARGS = ["--outcome", "aces", "--time", "time", "--intervention", "smokban"]
DID_ARGS = ["--outcome", "lemp", "--unit", "countyreal", "--time", "year",
            "--first-treated", "first.treat"]  # fmt: skip


def test_its_json_keys_and_values():
    proc = knowdo(
        "its",
        str(FIXTURES / "sicily.csv"),
        *ITS_ARGS,
        "--offset", "stdpop", "--season", "month", "--harmonics", "2", "--period", "12",
        "--slope-change", "--family", "quasipoisson", "--confidence", "0.95", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    required = {"method", "family", "n", "dispersion", "level_change", "slope_change", "trend",
                "autocorrelation"}  # fmt: skip
    assert required <= set(doc)
    assert doc["method"] == "its" and doc["family"] == "quasipoisson" and doc["n"] == 59
    for key in ("level_change", "slope_change", "trend"):
        assert set(doc[key]) == ESTIMATE_KEYS
        assert doc[key]["lower"] < doc[key]["estimate"] < doc[key]["upper"]
    assert 0.82 < doc["level_change"]["estimate"] < 0.93  # a ratio: exp of the coefficient
    assert doc["autocorrelation"]["test"] == "breusch-godfrey"


def test_its_without_slope_change_gives_null_slope_and_gaussian_gives_differences():
    proc = knowdo("its", str(FIXTURES / "sicily.csv"), *ITS_ARGS, "--family", "gaussian", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["slope_change"] is None
    assert doc["level_change"]["estimate"] < 0  # a difference in counts, not a ratio


@pytest.mark.parametrize("control", ["never", "not-yet"])
def test_did_json_keys_and_agreement_with_the_library(control):
    proc = knowdo("did", str(FIXTURES / "mpdta.csv"), *DID_ARGS, "--control", control, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert {"att_gt", "overall", "event_study", "pretrend_p"} <= set(doc)
    assert {"group", "time", "att", "se", "lower", "upper"} <= set(doc["att_gt"][0])
    assert {"simple", "group"} <= set(doc["overall"])
    for name in ("simple", "group"):
        assert {"estimate", "se", "lower", "upper"} <= set(doc["overall"][name])
    assert {"e", "att", "lower", "upper"} <= set(doc["event_study"][0])
    lib = staggered_did(
        pd.read_csv(FIXTURES / "mpdta.csv"),
        outcome="lemp",
        unit="countyreal",
        time="year",
        first_treated="first.treat",
        control=control,
    )
    assert doc["att_gt"] == lib.as_json()["att_gt"]
    assert doc["overall"]["simple"] == lib.overall["simple"]
    assert doc["pretrend_p"] == pytest.approx(lib.pretrend_p, abs=1e-15)


def test_human_output_names_the_estimates():
    proc = knowdo("did", str(FIXTURES / "mpdta.csv"), *DID_ARGS)
    assert proc.returncode == 0, proc.stderr
    assert "overall (simple): -0.03995" in proc.stdout
    assert "pre-trend test p = 0.1681" in proc.stdout


@pytest.mark.parametrize("command", ["its", "did"])
def test_missing_column_is_one_line_and_exit_2(command):
    args = ITS_ARGS if command == "its" else DID_ARGS
    args = [a if a not in ("aces", "lemp") else "nope" for a in args]
    path = FIXTURES / ("sicily.csv" if command == "its" else "mpdta.csv")
    proc = knowdo(command, str(path), *args, "--json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "outcome column 'nope' is missing" in lines[0] and str(path) in lines[0]


def test_non_numeric_column_names_the_row(tmp_path):
    frame = pd.read_csv(FIXTURES / "mpdta.csv").astype({"countyreal": object})
    frame.loc[9, "countyreal"] = "Adams"
    path = tmp_path / "panel.csv"
    frame.to_csv(path, index=False)
    proc = knowdo("did", str(path), *DID_ARGS, "--json")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"knowdo: {path}: unit column 'countyreal' is not numeric: row 11 is 'Adams' "
        "(1 such row(s))"
    )


def _two_series_csv(tmp_path: Path) -> Path:
    """Two monthly series, the group's rate 3.5 times the reference's, a 15% fall in the group
    from month 12 (deterministic: expected counts rounded, so the fit is nearly exact)."""
    import math

    rows = []
    for group, rate, pop in ((1, 0.0035, 300_000), (0, 0.001, 2_400_000)):
        for t in range(36):
            season = 1 + 0.1 * math.sin(2 * math.pi * (t % 12) / 12)
            mu = pop * rate * season * (0.85 if group and t >= 12 else 1.0)
            rows.append({"month": t, "cal": t % 12 + 1, "live": int(t >= 12),
                         "grp": group, "pop": pop, "n": round(mu)})  # fmt: skip
    path = tmp_path / "groups.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("command, column", [("cits", "--treated"), ("gap", "--group")])
def test_two_series_commands_print_what_the_library_computes(tmp_path, command, column):
    from knowdo.impact.comparative import controlled_its, gap_change

    path = _two_series_csv(tmp_path)
    args = ["--outcome", "n", "--time", "month", "--intervention", "live", column, "grp",
            "--offset", "pop", "--season", "cal", "--harmonics", "1"]  # fmt: skip
    proc = knowdo(command, str(path), *args, "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    function, kw = (controlled_its, "treated") if command == "cits" else (gap_change, "group")
    expected = function(
        pd.read_csv(path), outcome="n", time="month", intervention="live", offset="pop",
        season="cal", harmonics=1, **{kw: "grp"},
    ).as_json()  # fmt: skip
    assert doc["method"] == ("controlled_its" if command == "cits" else "gap_change")
    assert set(doc["level_change"]) == ESTIMATE_KEYS
    assert doc["level_change"]["estimate"] == pytest.approx(0.85, abs=0.01)
    assert doc["level_change"] == pytest.approx(expected["level_change"])
    assert doc["contrast_before"]["estimate"] == pytest.approx(3.5, abs=0.05)
    assert doc["verdict"] == expected["verdict"]
    if command == "gap":
        assert doc["verdict"] == "narrowed"
    bad = knowdo(command, str(path), *args[:6], column, "nope", "--json")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and "'nope' is missing" in bad.stderr
