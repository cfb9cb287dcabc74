"""Loading the funding formats (IATI XML, 360Giving JSON/CSV) into the real cluster's raw tables
(every change rolled back after each test)."""

import shutil
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.landing import sha256_of
from knowdo.loading import ingest_file
from knowdo.registry import Feed

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
IATI_REAL = FIXTURES / "iati" / "activity-standard-example-annotated.xml"
GRANTS_REAL = FIXTURES / "threesixtygiving" / "awefw001p00000zgyHZAAY.json"
GRANTS_CSV = FIXTURES / "threesixtygiving" / "grants-knowdo-test.csv"


def funding_feed(feed_id: str, fmt: str) -> Feed:
    return Feed(
        id=feed_id,
        publisher_name="Test funder",
        publisher_kind="funder",
        domain="funding",
        format=fmt,
        source={"folder": "unused"},
    )


def test_iati_activities_load_with_batch_hash_and_row_number(loader_conn, tmp_path):
    feed = funding_feed("test_funding_iati", "iati-xml")
    real = ingest_file(loader_conn, feed, IATI_REAL, tmp_path / "landing")
    assert (real.status, real.rows_loaded, real.rows_rejected) == ("loaded", 1, 0)
    row = loader_conn.execute(
        "select batch_id, file_sha256, row_number, feed_id, iati_identifier, is_mental_health,"
        " jsonb_array_length(transactions), transactions -> 0 -> 'value', sectors -> 0,"
        " activity_date_start from raw.iati_activities where batch_id = %s",
        (real.batch_id,),
    ).fetchone()
    assert row == (
        real.batch_id,
        sha256_of(IATI_REAL),
        1,
        feed.id,
        "AA-AAA-123456789-ABC123",
        False,
        1,
        1000,
        {"vocabulary": "2", "code": "111", "percentage": 50},
        date(2012, 4, 28),
    )
    submitted = loader_conn.execute(
        "select submitted_at from ops.load_batches where batch_id = %s", (real.batch_id,)
    ).fetchone()[0]
    assert submitted == datetime(
        2014, 9, 10, 7, 15, 37, tzinfo=UTC
    )  # the file's generated-datetime

    mixed = ingest_file(
        loader_conn,
        feed,
        FIXTURES / "iati" / "activities-2.02-categories.xml",
        tmp_path / "landing",
    )
    assert (mixed.status, mixed.rows_read, mixed.rows_loaded, mixed.rows_rejected) == (
        "loaded",
        4,
        2,
        2,
    )
    rejected = loader_conn.execute(
        "select row_number, field, value from ops.rejected_rows where batch_id = %s"
        " order by row_number",
        (mixed.batch_id,),
    ).fetchall()
    assert rejected == [
        (3, "transaction/value", "ten thousand"),
        (4, "iati-identifier", "XM-DAC-41114-NCD-1"),
    ]
    flagged = loader_conn.execute(
        "select iati_identifier from raw.iati_activities where batch_id = %s and is_mental_health",
        (mixed.batch_id,),
    ).fetchall()
    assert flagged == [("XM-DAC-41114-MH-2",)]


def test_iati_warnings_and_empty_attributes_reach_the_raw_table(loader_conn, tmp_path):
    feed = funding_feed("test_funding_iati", "iati-xml")
    result = ingest_file(
        loader_conn,
        feed,
        FIXTURES / "iati" / "activities-2.01-mental-health.xml",
        tmp_path / "landing",
    )
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    rows = dict(
        loader_conn.execute(
            "select iati_identifier, warnings from raw.iati_activities where batch_id = %s"
            " and warnings <> '[]'",
            (result.batch_id,),
        ).fetchall()
    )
    assert (
        list(rows) == ["GB-GOV-1-300124"] and "add up to 90" in rows["GB-GOV-1-300124"][0]["reason"]
    )
    empty = loader_conn.execute(
        "select recipient_countries -> 0 -> 'percentage', transactions -> 0 -> 'value'"
        " from raw.iati_activities where batch_id = %s and iati_identifier = 'GB-GOV-1-300125'",
        (result.batch_id,),
    ).fetchone()
    assert empty == (None, None)  # JSON null: unknown, never zero


def test_hostile_iati_file_is_kept_and_marked_failed(loader_conn, tmp_path):
    feed = funding_feed("test_funding_iati", "iati-xml")
    result = ingest_file(
        loader_conn, feed, FIXTURES / "iati" / "billion-laughs.xml", tmp_path / "landing"
    )
    assert result.status == "failed" and "declares a DOCTYPE" in result.error
    assert loader_conn.execute(
        "select status, error from ops.load_batches where batch_id = %s", (result.batch_id,)
    ).fetchone() == ("failed", result.error)
    assert (
        loader_conn.execute(
            "select count(*) from raw.iati_activities where batch_id = %s", (result.batch_id,)
        ).fetchone()[0]
        == 0
    )
    assert (
        loader_conn.execute(
            "select count(*) from ops.landed_files where file_sha256 = %s", (result.sha256,)
        ).fetchone()[0]
        == 1
    )


def test_truncated_iati_file_loads_nothing_of_what_was_read_before_the_break(loader_conn, tmp_path):
    feed = funding_feed("test_funding_iati", "iati-xml")
    result = ingest_file(
        loader_conn, feed, FIXTURES / "iati" / "truncated.xml", tmp_path / "landing"
    )
    assert result.status == "failed" and result.error.startswith("not well-formed XML")
    assert (
        loader_conn.execute(
            "select count(*) from raw.iati_activities where feed_id = %s", (feed.id,)
        ).fetchone()[0]
        == 0
    )


def test_360giving_json_package_loads_every_grant(loader_conn, tmp_path):
    feed = funding_feed("test_funding_360g_json", "360giving-json")
    result = ingest_file(loader_conn, feed, GRANTS_REAL, tmp_path / "landing")
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == (
        "loaded",
        154,
        154,
        0,
    )
    totals = loader_conn.execute(
        "select count(*), sum(amount_awarded), min(row_number), max(row_number),"
        " count(distinct file_sha256), count(*) filter (where beneficiary_country_codes = '{GB}')"
        " from raw.threesixtygiving_grants where batch_id = %s",
        (result.batch_id,),
    ).fetchone()
    assert totals == (154, Decimal("16589361.49"), 1, 154, 1, 99)
    first = loader_conn.execute(
        "select grant_id, award_date, funding_org_name, extra ->> 'regrantType'"
        " from raw.threesixtygiving_grants where batch_id = %s and row_number = 1",
        (result.batch_id,),
    ).fetchone()
    assert first == (
        "360G-ABCT-0065I000002yzGKQAY",
        date(2020, 4, 28),
        "A B Charitable Trust",
        "FRG030",
    )


def test_360giving_csv_loads_with_rejections_and_verbatim_text(loader_conn, tmp_path):
    feed = funding_feed("test_funding_360g_csv", "360giving-csv")
    result = ingest_file(loader_conn, feed, GRANTS_CSV, tmp_path / "landing")
    assert (result.status, result.rows_read, result.rows_loaded, result.rows_rejected) == (
        "loaded",
        8,
        3,
        5,
    )
    titles = dict(
        loader_conn.execute(
            "select grant_id, title from raw.threesixtygiving_grants where batch_id = %s",
            (result.batch_id,),
        ).fetchall()
    )
    assert titles["360G-KDTEST-0002"] == "=cmd|' /C calc'!A0"
    assert (
        loader_conn.execute(
            "select count(*) from ops.rejected_rows"
            " where batch_id = %s and field = 'Amount Awarded'",
            (result.batch_id,),
        ).fetchone()[0]
        == 2
    )


def test_a_file_that_is_not_a_360giving_package_is_marked_failed(loader_conn, tmp_path):
    feed = funding_feed("test_funding_360g_json", "360giving-json")
    wrong = shutil.copy(FIXTURES / "dhis2_dataValueSetJ.json", tmp_path / "grants.json")
    result = ingest_file(loader_conn, feed, Path(wrong), tmp_path / "landing")
    assert result.status == "failed" and "no 'grants' array" in result.error
    assert (
        loader_conn.execute(
            "select count(*) from raw.threesixtygiving_grants where feed_id = %s", (feed.id,)
        ).fetchone()[0]
        == 0
    )
