"""Feed health against the real cluster, in a scratch warehouse database: the SQL that reads each
feed's deadline inputs from ops, the fresh-install run that has nothing to check, and a daily run
that alerts late submitters once (dbt source freshness included) and not again the same day."""

from __future__ import annotations

from datetime import date

import pytest

from knowdo.db import connect
from knowdo.feed_health import deadline, read_feed_submissions, run_feed_health
from knowdo.registry import sync_last_days_covered
from tests.helpers.scratch_warehouse import create_scratch_warehouse, scratch_settings

pytestmark = pytest.mark.integration
SCRATCH_DB = "knowdo_test_feed_health"
TODAY = date(2026, 11, 22)

FEEDS = [  # feed_id, publisher, schedule, due_within_days, in_registry
    ("ngo_monthly", "Sample NGO", "@monthly", 45, True),
    ("moh_yearly", "Sample ministry", "@yearly", 90, True),
    ("funder_iati", "Sample funder", "@quarterly", 60, True),
    ("silent_arc", "Silent ARC", "@yearly", 120, True),
    ("gone_feed", "Removed publisher", "@monthly", 45, False),
]
BATCHES = [  # feed_id, file, status, periods, period_start, period_end, received_at
    (
        "ngo_monthly",
        "ngo_2026a.csv",
        "loaded",
        ["KD-NGO-1:GHA:2026-01", "KD-NGO-1:GHA:2026-02"],
        "2026-01-01",
        "2026-02-01",
        "2026-03-10 08:00+00",
    ),
    (
        "ngo_monthly",
        "ngo_2025.csv",
        "loaded",
        ["KD-NGO-1:GHA:2025-12"],
        "2025-12-01",
        "2025-12-01",
        "2026-04-01 08:00+00",
    ),
    # newer periods, but not current: a superseded and a failed file do not count as data
    (
        "ngo_monthly",
        "ngo_old.csv",
        "superseded",
        ["KD-NGO-1:GHA:2026-06"],
        "2026-06-01",
        "2026-06-01",
        "2026-07-01 08:00+00",
    ),
    ("ngo_monthly", "ngo_bad.csv", "failed", None, None, None, "2026-10-01 08:00+00"),
    (
        "moh_yearly",
        "moh_2025.json",
        "loaded",
        ["202511", "202512"],
        "2025-11-01",
        "2025-12-01",
        "2026-01-15 08:00+00",
    ),
    ("funder_iati", "iati.xml", "loaded", [], None, None, "2026-02-01 10:00+00"),
    (
        "gone_feed",
        "gone.csv",
        "loaded",
        ["2020-01"],
        "2020-01-01",
        "2020-01-01",
        "2020-02-01 00:00+00",
    ),
]


def _fill(conn):
    for feed_id, name, schedule, due, in_registry in FEEDS:
        conn.execute(
            "insert into ops.feeds (feed_id, publisher_name, publisher_kind, domain, format,"
            " schedule, due_within_days, source, in_registry) values (%s, %s, 'ngo',"
            " 'service_use', 'knowdo-ngo-service-use-csv', %s, %s, '{}', %s)",
            (feed_id, name, schedule, due, in_registry),
        )
    for feed_id, file_name, status, periods, start, end, received in BATCHES:
        sha = f"feed-health-{file_name}"
        conn.execute(
            "insert into ops.landed_files (file_sha256, feed_id, file_name, size_bytes,"
            " landing_path, received_at) values (%s, %s, %s, 1, '/dev/null', %s)",
            (sha, feed_id, file_name, received),
        )
        conn.execute(
            "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table,"
            " status, periods, period_start, period_end, started_at) values (%s, %s, %s,"
            " 'x', 'raw.template_ngo_service_use', %s, %s, %s, %s, %s)",
            (feed_id, sha, file_name, status, periods, start, end, received),
        )
    # the last day each batch covers, as the registry sync backfills it (the loader writes it)
    sync_last_days_covered(conn, {feed_id: schedule for feed_id, _, schedule, _, _ in FEEDS})


@pytest.fixture(scope="module")
def scratch(cluster):
    create_scratch_warehouse(SCRATCH_DB, load_samples=False, seeds=False)
    with scratch_settings(SCRATCH_DB) as settings:
        yield settings


def test_the_sql_reads_each_registered_feeds_last_period_arrival_and_deadline(scratch):
    with connect(scratch.warehouse_url) as conn, conn.transaction(force_rollback=True):
        _fill(conn)
        feeds = {f.feed_id: f for f in read_feed_submissions(conn)}
    assert set(feeds) == {"ngo_monthly", "moh_yearly", "funder_iati", "silent_arc"}
    ngo = feeds["ngo_monthly"]
    # the latest period of a loaded file (2026-02), not the superseded June file; the last arrival
    # of a loaded file (2026-04-01), not the failed one
    assert (
        ngo.due_within_days,
        ngo.last_day_covered,
        ngo.last_loaded_on,
        ngo.files_received,
    ) == (45, date(2026, 2, 28), date(2026, 4, 1), 4)
    # data to 2026-02-28, one month on (2026-03-28) + 45 days
    assert (
        deadline(ngo, TODAY).reference,
        deadline(ngo, TODAY).due_on,
        deadline(ngo, TODAY).status,
    ) == (date(2026, 2, 28), date(2026, 5, 12), "late")
    moh = feeds["moh_yearly"]
    assert (moh.last_day_covered, moh.due_within_days) == (date(2025, 12, 31), 90)
    assert deadline(moh, TODAY).status == "on_time"  # due 2027-03-31
    iati = deadline(feeds["funder_iati"], TODAY)
    assert (iati.basis, iati.reference, iati.due_on, iati.status) == (
        "received",
        date(2026, 2, 1),
        date(2026, 6, 30),
        "late",
    )
    assert deadline(feeds["silent_arc"], TODAY).status == "never"
    assert feeds["silent_arc"].files_received == 0


def test_a_fresh_warehouse_has_nothing_to_check_and_alerts_nothing(scratch):
    report = run_feed_health(scratch, TODAY)
    assert not report.checked and report.alerts == []
    assert report.summary() == (
        "feed health: nothing to check: no file has been received yet (ops.load_batches is empty)"
    )
    with connect(scratch.transformer_url) as conn:
        assert conn.execute("select count(*) from ops.alerts").fetchone()[0] == 0


@pytest.fixture
def filled(scratch):
    with connect(scratch.warehouse_url) as conn, conn.transaction():
        _fill(conn)
    yield scratch
    with connect(scratch.warehouse_url) as conn, conn.transaction():
        conn.execute("delete from ops.load_batches")
        conn.execute("delete from ops.landed_files")
        conn.execute("delete from ops.feeds")
        conn.execute("delete from ops.alerts")


def test_a_daily_run_alerts_each_late_submitter_once(filled):
    report = run_feed_health(filled, TODAY)
    assert report.checked
    late = sorted(a.about for a in report.alerts if a.kind == "late_submitter")
    assert late == ["funder_iati", "ngo_monthly", "silent_arc"]
    # dbt source freshness ran against this database: its ops tables are sources too
    stale = {a.about for a in report.alerts if a.kind == "stale_feed"}
    assert "raw.template_ngo_service_use" in stale  # a feed loads into it, yet it has no rows
    assert "raw.mhsds_measures" not in stale  # no feed loads into it: empty, not stale
    with connect(filled.transformer_url) as conn:
        recorded = conn.execute(
            "select about from ops.alerts where kind = 'late_submitter' order by about"
        ).fetchall()
    assert [r[0] for r in recorded] == late
    # the next run the same day finds the same, and sends nothing again
    run_feed_health(filled, TODAY, freshness=False)
    with connect(filled.transformer_url) as conn:
        assert (
            conn.execute(
                "select count(*) from ops.alerts where kind = 'late_submitter'"
            ).fetchone()[0]
            == 3
        )


def test_the_latest_raw_gate_per_feed_is_the_newest_raw_layer_run_over_its_latest_raw_table(
    scratch,
):
    """ops.feed_latest_raw_gate (read by mart_feed_health when dbt builds it and by
    show_gate_in_feed_health after the gate): per feed, the newest `raw`-layer run over the table
    of its latest batch, matched by table name whatever the schema; a newer `marts` run or a run
    over another table does not count; a feed whose table was never checked has no row."""
    gate_runs = [  # run_id, checked_at, suite, layer, table, success
        ("r1", "2026-06-01", "raw_template_ngo_service_use", "raw",
         "raw.template_ngo_service_use", True),
        ("r2", "2026-06-02", "raw_template_ngo_service_use", "raw",
         "template_ngo_service_use", False),
        ("r3", "2026-06-03", "mart_feed_health", "marts", "marts_candidate.mart_feed_health", True),
        ("r3", "2026-06-03", "raw_dhis2_data_values", "raw", "raw.dhis2_data_values", True),
    ]  # fmt: skip
    with connect(scratch.warehouse_url) as conn, conn.transaction(force_rollback=True):
        _fill(conn)
        for run_id, checked_at, suite, layer, table, success in gate_runs:
            conn.execute(
                "insert into ops.quality_gate_runs (run_id, checked_at, suite_name, success,"
                " evaluated, failed, layer, table_name) values (%s, %s, %s, %s, 1, 0, %s, %s)",
                (run_id, checked_at, suite, success, layer, table),
            )
        rows = conn.execute(
            "select feed_id, raw_table_name, run_id, success from ops.feed_latest_raw_gate"
            " order by feed_id"
        ).fetchall()
    # every batch of _fill loads into raw.template_ngo_service_use
    assert rows == [
        (feed_id, "template_ngo_service_use", "r2", False)
        for feed_id in ("funder_iati", "gone_feed", "moh_yearly", "ngo_monthly")
    ]
