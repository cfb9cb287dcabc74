"""No file can hurt the platform (issue 13), on the project's own cluster: an abusive file ingested
with `knowdo ingest` fails alone, in seconds, with a clear reason in ops.load_batches, and a file
that gets past the parse bounds is stopped by the memory ceiling; in the same run another feed's
file loads. The ingest goes through the same `pipeline.ingest_feed` the ingest DAG calls."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from knowdo.db import connect
from knowdo.pipeline import ingest_feed

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FEEDS = ("test_bounds_abusive", "test_bounds_good")
GOOD = {
    "dataValues": [
        {
            "dataElement": "KdMhOpdVis1",
            "period": f"2019{m:02d}",
            "orgUnit": "KdOuGHAA000",
            "categoryOptionCombo": coc,
            "value": str(m),
        }
        for m in range(1, 13)
        for coc in ("KdCocF00001", "KdCocM00001")
    ]
}


@pytest.fixture
def stage(settings, tmp_path, cluster):
    """A registry of two feeds (copies of the first DHIS2 ministry) reading a temporary inbox."""
    real = yaml.safe_load(settings.feeds_file.read_text(encoding="utf-8"))
    template = next(f for f in real["feeds"] if f["id"] == "gha_moh_dhis2")
    entries = [
        {**template, "id": fid, "source": {"folder": fid, "glob": "*.json"}} for fid in FEEDS
    ]
    registry = tmp_path / "registry.yml"
    registry.write_text(yaml.safe_dump({"feeds": entries}), encoding="utf-8")
    inbox = tmp_path / "inbox"
    for fid in FEEDS:
        (inbox / fid).mkdir(parents=True)
    staged = replace(
        settings,
        feeds_file=registry,
        inbox_dir=inbox,
        landing_dir=tmp_path / "landing",
        local_dir=tmp_path / "local",
    )
    yield staged
    with connect(settings.warehouse_url) as conn, conn.transaction():
        batches = [
            r[0]
            for r in conn.execute(
                "select batch_id from ops.load_batches where feed_id = any(%s)", (list(FEEDS),)
            )
        ]
        conn.execute("delete from raw.dhis2_data_values where feed_id = any(%s)", (list(FEEDS),))
        conn.execute("delete from ops.rejected_rows where batch_id = any(%s)", (batches,))
        conn.execute("delete from ops.load_batches where feed_id = any(%s)", (list(FEEDS),))
        conn.execute("delete from ops.landed_files where feed_id = any(%s)", (list(FEEDS),))


def _knowdo_ingest(staged, path: Path, feed_id: str, **env) -> tuple[int, dict, float]:
    started = time.monotonic()
    done = subprocess.run(
        [str(REPO / ".venv/bin/knowdo"), "ingest", str(path), "--feed", feed_id, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={
            **os.environ,
            "KNOWDO_FEEDS_FILE": str(staged.feeds_file),
            "KNOWDO_LANDING_DIR": str(staged.landing_dir),
            **env,
        },
    )
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout), time.monotonic() - started


def _batch(settings, batch_id: int):
    with connect(settings.warehouse_url) as conn:
        return conn.execute(
            "select status, error, rows_loaded from ops.load_batches where batch_id = %s",
            (batch_id,),
        ).fetchone()


def test_knowdo_ingest_fails_a_deeply_nested_file_in_seconds_with_the_bound_named(
    settings, stage, tmp_path
):
    abusive = tmp_path / "deep.json"
    abusive.write_bytes(b"[" * 400_000)
    code, result, seconds = _knowdo_ingest(stage, abusive, FEEDS[0])
    assert code == 2 and result["status"] == "failed"
    assert "nested deeper than 64 levels" in result["error"]
    assert seconds < 60
    status, error, loaded = _batch(settings, result["batch_id"])
    assert (status, loaded) == ("failed", 0) and "KNOWDO_MAX_JSON_DEPTH" in error


def test_a_file_past_the_bounds_is_stopped_by_the_memory_ceiling(settings, stage, tmp_path):
    abusive = tmp_path / "deep.json"
    abusive.write_bytes(b"[" * 400_000)
    code, result, seconds = _knowdo_ingest(
        stage, abusive, FEEDS[0], KNOWDO_MAX_JSON_DEPTH="100000000", KNOWDO_PARSE_MEMORY_MB="300"
    )
    assert code == 2 and result["status"] == "failed"
    assert "more than 300 MB of memory (the KNOWDO_PARSE_MEMORY_MB ceiling)" in result["error"]
    assert seconds < 120
    assert _batch(settings, result["batch_id"])[0] == "failed"


def test_in_one_run_the_abusive_feed_fails_alone_and_the_other_feed_loads(settings, stage):
    (stage.inbox_dir / FEEDS[0] / "number.json").write_bytes(
        b'{"dataValues": [{"value": ' + b"9" * 5_000_000 + b"}]}"
    )
    (stage.inbox_dir / FEEDS[0] / "deep.json").write_bytes(b'{"dataValues": ' + b"[" * 100_000)
    (stage.inbox_dir / FEEDS[1] / "good.json").write_text(json.dumps(GOOD), encoding="utf-8")
    abusive = ingest_feed(FEEDS[0], stage)
    good = ingest_feed(FEEDS[1], stage)
    assert sorted(abusive["failed_files"]) == ["deep.json", "number.json"]
    assert abusive["new_batches"] == []
    assert good["failed_files"] == [] and len(good["new_batches"]) == 1
    with connect(settings.warehouse_url) as conn:
        rows = conn.execute(
            "select file_name, status, error, rows_loaded from ops.load_batches"
            " where feed_id = any(%s) order by file_name",
            (list(FEEDS),),
        ).fetchall()
    by_name = {r[0]: r[1:] for r in rows}
    assert (
        by_name["deep.json"][0] == "failed" and "KNOWDO_MAX_JSON_DEPTH" in by_name["deep.json"][1]
    )
    assert by_name["number.json"][0] == "failed"
    assert "KNOWDO_MAX_JSON_NUMBER_CHARS" in by_name["number.json"][1]
    assert by_name["good.json"] == ("loaded", None, 24)
