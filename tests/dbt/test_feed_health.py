"""Feed-health marts (dbt_project/models/marts/ops) against the loader's own tables, on the
warehouse that env.sh names, with the sample feeds ingested: counts recomputed independently from
ops.*, and the planted faults of sample_feeds/README.md (late Senegal 2025, failed Sierra Leone
2023, superseded Tanzania 2024, Ghana's negative count) showing where a data engineer would look."""

from __future__ import annotations

import psycopg
import pytest

pytestmark = pytest.mark.integration

MODELS = "path:models/staging/ops path:models/marts/ops"
MARTS = (
    "mart_feed_health",
    "fct_feed_submissions",
    "mart_rejections_by_reason",
    "mart_quality_gate_history",
)


@pytest.fixture(scope="module")
def built(run_dbt, transformer_conninfo):
    with psycopg.connect(transformer_conninfo) as conn:
        sample = conn.execute(
            "select count(*) from ops.load_batches where file_name = 'sen_mh_service_use_2025.json'"
        ).fetchone()[0]
    if not sample:
        pytest.fail(
            "the sample feeds are not loaded in this warehouse: run"
            " `knowdo ingest` (or pipeline.ingest_feed for every feed) first"
        )
    result = run_dbt("build", "--select", MODELS, "--indirect-selection=cautious")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return True


@pytest.fixture
def db(built, transformer_conninfo):
    with psycopg.connect(transformer_conninfo, autocommit=True) as conn:
        yield conn


def health(db, feed_id: str) -> dict:
    cur = db.execute(
        "select * from marts_candidate.mart_feed_health where feed_id = %s", (feed_id,)
    )
    row = cur.fetchone()
    assert row is not None, f"{feed_id} missing from mart_feed_health"
    return dict(zip([c.name for c in cur.description], row, strict=True))


def test_one_row_per_registry_feed_with_files_counted_independently(db):
    expected = dict(
        db.execute(
            "select f.feed_id, count(b.batch_id) from ops.feeds f"
            " left join ops.load_batches b on b.feed_id = f.feed_id group by f.feed_id"
        ).fetchall()
    )
    actual = dict(
        db.execute(
            "select feed_id, files_received from marts_candidate.mart_feed_health"
        ).fetchall()
    )
    assert actual == expected
    by_status = db.execute(
        "select feed_id, count(*) filter (where status = 'loaded'),"
        " count(*) filter (where status = 'failed'), count(*) filter (where status = 'superseded')"
        " from ops.load_batches group by feed_id"
    ).fetchall()
    mart = {
        r[0]: r[1:]
        for r in db.execute(
            "select feed_id, files_loaded, files_failed, files_superseded"
            " from marts_candidate.mart_feed_health"
        ).fetchall()
    }
    for feed_id, *counts in by_status:
        assert mart[feed_id] == tuple(counts), feed_id


def test_rows_loaded_and_rejected_are_those_of_the_loaded_files(db):
    expected = dict(
        db.execute(
            "select feed_id, (sum(rows_loaded), sum(rows_rejected), sum(rows_out_of_scope))"
            " from ops.load_batches where status = 'loaded' group by feed_id"
        ).fetchall()
    )
    for feed_id, (loaded, rejected, outside) in expected.items():
        row = health(db, feed_id)
        assert (row["rows_loaded"], row["rows_rejected"], row["rows_out_of_scope"]) == (
            int(loaded),
            int(rejected),
            int(outside),
        ), feed_id


def test_senegal_2025_completed_in_april_2026_is_late(db):
    file = db.execute(
        "select timeliness, days_late, submission_time_source, last_period_end::text"
        " from marts_candidate.fct_feed_submissions"
        " where file_name = 'sen_mh_service_use_2025.json'"
    ).fetchone()
    assert file[0] == "late", f"Senegal 2025 (completeDate 2026-04-20) is {file}"
    assert file[1] > 0 and file[2] == "publisher" and file[3] == "2025-12-31"
    senegal = health(db, "sen_moh_dhis2")
    assert (senegal["submitted_late"], senegal["submitted_on_time"]) == (1, 4)
    # every other ministry completed its DHIS2 files on 15 January: on time
    others_late = db.execute(
        "select feed_id from marts_candidate.mart_feed_health where format = 'dhis2-json'"
        " and feed_id <> 'sen_moh_dhis2' and submitted_late > 0"
    ).fetchall()
    assert others_late == []


def test_sierra_leone_2023_truncated_upload_is_counted_as_failed(db):
    sierra_leone = health(db, "sle_moh_dhis2")
    assert (
        sierra_leone["files_received"],
        sierra_leone["files_loaded"],
        sierra_leone["files_failed"],
    ) == (5, 4, 1)
    assert sierra_leone["submitted_timeliness_unknown"] == 1
    assert sierra_leone["freshness_status"] != "never"
    failed = db.execute(
        "select batch_status, timeliness, error_message from marts_candidate.fct_feed_submissions"
        " where file_name = 'sle_mh_service_use_2023.json'"
    ).fetchone()
    assert failed[:2] == ("failed", "unknown") and "JSON" in failed[2]


def test_tanzania_2024_first_file_is_superseded_by_its_resend(db):
    tanzania = health(db, "tza_moh_dhis2")
    assert (tanzania["files_received"], tanzania["files_loaded"], tanzania["files_superseded"]) == (
        6,
        5,
        1,
    )
    pair = db.execute(
        "select s.batch_status, r.file_name, r.batch_status"
        " from marts_candidate.fct_feed_submissions s"
        " join marts_candidate.fct_feed_submissions r on r.batch_id = s.superseded_by_batch_id"
        " where s.file_name = 'tza_mh_service_use_2024.json'"
    ).fetchone()
    assert pair == ("superseded", "tza_mh_service_use_2024_v2.json", "loaded")


def test_ghana_negative_count_is_a_rejection_reason(db):
    ghana = health(db, "gha_moh_dhis2")
    assert ghana["rows_rejected"] == 1 and 0 < ghana["rejection_rate"] < 1
    reasons = db.execute(
        "select rejection_reason, rows_rejected, reason_rank, country_code"
        " from marts_candidate.mart_rejections_by_reason where feed_id = 'gha_moh_dhis2'"
    ).fetchall()
    assert reasons == [("negative count", 1, 1, "GHA")]


def test_marts_never_expose_landing_paths(db, settings):
    landing = str(settings.landing_dir)
    for table in MARTS:
        columns = [
            r[0]
            for r in db.execute(
                "select column_name from information_schema.columns"
                " where table_schema = 'marts_candidate' and table_name = %s",
                (table,),
            ).fetchall()
        ]
        assert columns, f"{table} was not built"
        assert not {"landing_path", "source", "data_docs"} & set(columns), table
        hits = db.execute(
            f"select count(*) from marts_candidate.{table} t where t::text like %s",
            (f"%{landing}%",),
        ).fetchone()[0]
        assert hits == 0, f"{table} mentions the landing zone"


def test_gate_status_is_the_latest_run_over_the_feeds_raw_table(db):
    expected = dict(
        db.execute(
            "with latest as (select distinct on (table_name) table_name, success"
            "   from ops.quality_gate_runs where layer = 'raw'"
            "   order by table_name, checked_at desc, run_id desc),"
            " feed_tables as (select distinct on (feed_id) feed_id, raw_table"
            "   from ops.load_batches where raw_table is not null order by feed_id, batch_id desc)"
            " select f.feed_id, case when l.success then 'passed' when not l.success then 'failed'"
            "   else 'not_checked' end"
            " from ops.feeds f left join feed_tables t on t.feed_id = f.feed_id"
            " left join latest l on l.table_name = t.raw_table"
        ).fetchall()
    )
    actual = dict(
        db.execute(
            "select feed_id, last_gate_status from marts_candidate.mart_feed_health"
        ).fetchall()
    )
    assert actual == expected


def test_the_dashboard_and_the_late_submitter_alerts_agree_on_every_feed(db):
    """mart_feed_health (the Data health dashboard) and knowdo.feed_health (the alerts) both take
    the deadline rule from knowdo.schedules: for every feed of the sample, the same next due date
    and the same verdict (stale = late, fresh = on time)."""
    from knowdo.feed_health import deadline, read_feed_submissions

    verdict = {"late": "stale", "on_time": "fresh", "never": "never", "unscheduled": "unscheduled"}
    mart = {
        feed_id: (due, status)
        for feed_id, due, status, as_of in db.execute(
            "select feed_id, next_due_on, freshness_status, as_of_date"
            " from marts_candidate.mart_feed_health where is_in_registry"
        )
    }
    (as_of,) = db.execute(
        "select distinct as_of_date from marts_candidate.mart_feed_health"
    ).fetchone()
    python = {}
    for feed in read_feed_submissions(db):
        d = deadline(feed, as_of)
        python[feed.feed_id] = (d.due_on, verdict[d.status])
    assert len(mart) >= 40
    assert python == mart
