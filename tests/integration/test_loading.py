"""Landing and loading against the real cluster (every change rolled back after each test)."""

import json
from dataclasses import replace

import pytest

from knowdo.landing import sha256_of
from knowdo.loading import ingest_file
from knowdo.registry import load_registry
from knowdo.synth.dhis2 import org_unit_uid

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(settings):
    # a feed id of its own so nothing here can be mistaken for the sample ministry's data
    return replace(load_registry(settings.feeds_file)["gha_moh_dhis2"], id="test_loading_feed")


def dhis2_file(path, values):
    path.write_text(json.dumps({"dataValues": values}), encoding="utf-8")
    return path


def value(period="202401", v="12", coc="KdCocF00002"):
    return {"dataElement": "KdMhOpdVis1", "period": period, "orgUnit": org_unit_uid("GH-AA"),
            "categoryOptionCombo": coc, "value": v}


def test_file_is_landed_with_hash_and_loaded_once(loader_conn, feed, tmp_path):
    src = dhis2_file(tmp_path / "jan.json", [value(), value(coc="KdCocM00002", v="7")])
    first = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (first.status, first.rows_loaded, first.rows_rejected) == ("loaded", 2, 0)
    assert first.sha256 == sha256_of(src)
    landed = loader_conn.execute("select landing_path, size_bytes from ops.landed_files where file_sha256 = %s",
                                 (first.sha256,)).fetchone()
    assert sha256_of(__import__("pathlib").Path(landed[0])) == first.sha256 and landed[1] == src.stat().st_size
    rows = loader_conn.execute("select row_number, file_sha256, value from raw.dhis2_data_values"
                               " where batch_id = %s order by row_number", (first.batch_id,)).fetchall()
    assert rows == [(1, first.sha256, 12), (2, first.sha256, 7)]

    again = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert again.already_loaded and again.batch_id == first.batch_id
    n = loader_conn.execute("select count(*) from raw.dhis2_data_values where feed_id = %s", (feed.id,)).fetchone()[0]
    assert n == 2


def test_rejected_rows_are_recorded_and_the_rest_loads(loader_conn, feed, tmp_path):
    src = dhis2_file(tmp_path / "bad_rows.json", [value(), value(period="202402", v="-1"), value(period="202403")])
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 2, 1)
    rejected = loader_conn.execute("select row_number, field, value, reason from ops.rejected_rows"
                                   " where batch_id = %s", (result.batch_id,)).fetchall()
    assert len(rejected) == 1 and rejected[0][:3] == (2, "value", "-1") and "negative" in rejected[0][3]


def test_unreadable_file_is_kept_and_marked_failed(loader_conn, feed, tmp_path):
    src = tmp_path / "truncated.json"
    src.write_text('{"dataValues": [{"dataElement": "KdMhOpdVis1", "period": "2024', encoding="utf-8")
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert result.status == "failed" and "not valid JSON" in result.error
    batch = loader_conn.execute("select status, error from ops.load_batches where batch_id = %s",
                                (result.batch_id,)).fetchone()
    assert batch[0] == "failed"
    assert loader_conn.execute("select count(*) from raw.dhis2_data_values where batch_id = %s",
                               (result.batch_id,)).fetchone()[0] == 0
    assert loader_conn.execute("select count(*) from ops.landed_files where file_sha256 = %s",
                               (result.sha256,)).fetchone()[0] == 1


def test_corrected_resend_supersedes_the_earlier_batch(loader_conn, feed, tmp_path):
    first = ingest_file(loader_conn, feed, dhis2_file(tmp_path / "jan.json", [value(v="12")]), tmp_path / "l")
    resend = ingest_file(loader_conn, feed, dhis2_file(tmp_path / "jan_v2.json", [value(v="15")]), tmp_path / "l")
    assert resend.superseded == (first.batch_id,)
    status = dict(loader_conn.execute("select batch_id, status from ops.load_batches where feed_id = %s",
                                      (feed.id,)).fetchall())
    assert status == {first.batch_id: "superseded", resend.batch_id: "loaded"}
    # the earlier rows stay traceable
    assert loader_conn.execute("select count(*) from raw.dhis2_data_values where batch_id = %s",
                               (first.batch_id,)).fetchone()[0] == 1


def test_duplicate_keys_are_rejected_in_the_database_after_copy(loader_conn, feed, tmp_path):
    src = dhis2_file(tmp_path / "dups.json", [value(v="12"), value(v="13"), value(period="202402"), value(v="14")])
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (result.rows_loaded, result.rows_rejected) == (2, 2)
    kept = loader_conn.execute("select row_number, value from raw.dhis2_data_values where batch_id = %s"
                               " order by row_number", (result.batch_id,)).fetchall()
    assert kept == [(1, 12), (3, 12)]
    reasons = loader_conn.execute("select row_number, reason from ops.rejected_rows where batch_id = %s"
                                  " order by row_number", (result.batch_id,)).fetchall()
    assert [r[0] for r in reasons] == [2, 4] and all("duplicate key" in r[1] and "(row 1)" in r[1] for r in reasons)
    batch = loader_conn.execute("select rows_loaded, rows_rejected from ops.load_batches where batch_id = %s",
                                (result.batch_id,)).fetchone()
    assert batch == (2, 2)
