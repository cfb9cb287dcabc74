"""`knowdo check` through the vectorised path gives the row parser's report, field for field."""

import json

import pytest

from knowdo import checking
from knowdo.formats import ParseContext
from knowdo.formats import _check_tables as check_tables
from tests.helpers.dhis2_csv_faults import MAPPING, TODAY, planted_faults_csv
from tests.helpers.dhis2_json_docs import values, write


def reports(path, fmt, mapping, monkeypatch, max_errors=100):
    ctx = ParseContext(mapping=mapping, today=TODAY, feed_id="f" if mapping else None)
    used = []
    real = check_tables.tally

    def spy(*args):
        result = real(*args)
        used.append(result is not None)
        return result

    monkeypatch.setattr(check_tables, "tally", spy)
    fast = checking.check_file(path, fmt, ctx, max_errors)
    monkeypatch.setattr(check_tables, "tally", lambda *args: None)
    rows = checking.check_file(path, fmt, ctx, max_errors)
    return fast, rows, used[0]


@pytest.mark.parametrize("mapping", [MAPPING, None], ids=["feed", "no-mapping"])
@pytest.mark.parametrize("max_errors", [100, 3])
def test_dhis2_json_check_is_the_row_parsers(tmp_path, monkeypatch, mapping, max_errors):
    items = [v for v in values(8, 700) if "period" not in v or v["period"] != "209901"]
    seen, unique = set(), []
    for item in items:  # no repeated key here: those go to the row parser (below)
        key = tuple(
            item.get(k) for k in ("dataElement", "period", "orgUnit", "categoryOptionCombo")
        )
        if key not in seen:
            seen.add(key)
            unique.append(item)
    path = write(tmp_path / "x.json", {"dataSet": "d", "dataValues": unique})
    fast, rows, vectorised = reports(path, "dhis2-json", mapping, monkeypatch, max_errors)
    assert vectorised
    assert fast == rows
    assert rows["rows_rejected"] > 3 and rows["rows_read"] == len(unique)


def test_dhis2_csv_check_is_the_row_parsers_and_a_repeated_key_goes_to_the_row_parser(
    tmp_path, monkeypatch
):
    path = planted_faults_csv(tmp_path / "faults.csv")  # it plants repeated keys
    fast, rows, vectorised = reports(path, "dhis2-csv", MAPPING, monkeypatch)
    assert not vectorised and fast == rows
    assert any("duplicate key" in e["reason"] for e in rows["errors"])


def test_a_repeated_json_key_goes_to_the_row_parser(tmp_path, monkeypatch):
    item = {"dataElement": "f7n9E0hX8qk", "period": "201201", "orgUnit": "Ou000000001"}
    item |= {"categoryOptionCombo": "cocF", "value": "1"}
    path = tmp_path / "dup.json"
    path.write_text(json.dumps({"dataValues": [item, dict(item, value="2")]}), encoding="utf-8")
    fast, rows, vectorised = reports(path, "dhis2-json", MAPPING, monkeypatch)
    assert not vectorised and fast == rows
    assert rows["errors"][0]["reason"].startswith("duplicate key") and rows["rows_valid"] == 1


def test_dhis2_csv_check_without_repeated_keys_is_vectorised_and_the_same(tmp_path, monkeypatch):
    path = planted_faults_csv(tmp_path / "faults.csv")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    # keep the first record of each key only (the planted repeats are the row parser's case)
    seen, kept = set(), lines[:1]
    for line in lines[1:]:
        key = tuple(c.strip() for c in line.split(",")[:5])
        if key not in seen:
            seen.add(key)
            kept.append(line)
    path.write_text("".join(kept), encoding="utf-8")
    fast, rows, vectorised = reports(path, "dhis2-csv", MAPPING, monkeypatch)
    if not vectorised:  # a repeat hidden by quoting/whitespace: then nothing is shown here
        pytest.fail("the deduplicated file still went to the row parser")
    assert fast == rows and rows["rows_rejected"] > 3


def test_the_check_command_under_a_small_memory_ceiling_gives_a_report(tmp_path):
    """Found by tests/fuzz: in a fresh process, numpy imported inside the parse's child (256 MB
    ceiling) ended it ('stopped without a result'); the command preloads the vectorised path's
    libraries before the fork, and `tally` never imports them in the child."""
    import os
    import subprocess
    import sys

    path = write(tmp_path / "small.json", {"dataValues": values(9, 50)})
    done = subprocess.run(
        [sys.executable, "-c", "from knowdo.cli import main; main()", "check", str(path)]
        + ["--format", "dhis2-json", "--json"],
        check=False,
        env={**os.environ, "KNOWDO_PARSE_MEMORY_MB": "256"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["rows_read"] == 50
