"""End to end: the real DAGs (`airflow dags test`), dbt through cosmos, the GX gate and publish."""

from decimal import Decimal

import psycopg
import pytest

from tests.conftest import airflow_dags_test

pytestmark = pytest.mark.e2e


def _tail(proc) -> str:
    return (proc.stdout + proc.stderr)[-4000:]


@pytest.fixture(scope="module")
def analyst(pipeline_run, settings):
    import os

    with psycopg.connect(
        host=os.environ["KNOWDO_PG_HOST"],
        port=os.environ["KNOWDO_PG_PORT"],
        dbname=os.environ["KNOWDO_WAREHOUSE_DB"],
        user="knowdo_analyst",
        password=os.environ["KNOWDO_ANALYST_PASSWORD"],
        autocommit=True,
    ) as conn:
        yield conn


def test_ingest_and_transform_dags_succeed(pipeline_run):
    for name, proc in pipeline_run.items():
        assert proc.returncode == 0, f"{name} DAG failed:\n{_tail(proc)}"
    assert "state=success" in pipeline_run["transform"].stdout + pipeline_run["transform"].stderr


def test_published_national_counts_equal_the_raw_feed(analyst, settings):
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        expected = dict(
            conn.execute(
                """
            select v.period_start, sum(v.value)
            from raw.dhis2_data_values v
            join ops.load_batches b using (batch_id)
            where b.status = 'loaded' and b.feed_id = 'gha_moh_dhis2' and not v.deleted
              and v.period_type = 'month'
            group by 1
            """
            ).fetchall()
        )
    published = dict(
        analyst.execute(
            "select period_start, numerator from marts.fct_service_use"
            " where geography_code = 'GHA' and stratifier = 'all'"
            " and indicator_code = 'mh_outpatient_contacts'"
        ).fetchall()
    )
    assert len(published) == 60 and published == expected  # 2021-2025, monthly


def test_published_rates_carry_denominator_ci_and_disclosure_control(analyst):
    rows = analyst.execute(
        "select geography_level, numerator, denominator, multiplier, value, lower_95, upper_95,"
        " is_suppressed, suppression_reason, group_code from marts.fct_service_use"
    ).fetchall()
    assert rows
    suppressed = [r for r in rows if r[7]]
    assert suppressed, "the sample feed has small regional counts that must be suppressed"
    assert {r[0] for r in rows} >= {"national", "region", "icb", "arc"}
    for level, num, den, mult, value, lo, hi, is_sup, reason, group in rows:
        if group == "not_stated":  # ethnicity not stated: no population counts it, so no rate
            assert den is None and value is None
        else:
            assert den and den > 0
        if is_sup:
            assert level != "national" and num is None and value is None and lo is None and reason
            continue
        if level != "national":
            assert num % 5 == 0 and num >= 5
        if den is None:
            continue
        assert abs(value - Decimal(num) / den * mult) < Decimal("0.0001")
        assert lo <= value <= hi


def test_analysts_read_marts_but_never_raw_or_restricted(analyst):
    for table in (
        "raw.dhis2_data_values",
        "restricted.restricted_service_use__unrounded",
        "marts_candidate.fct_service_use",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            analyst.execute(f"select 1 from {table} limit 1")


def test_gate_outcome_is_recorded(settings):
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        success, published = conn.execute(
            "select success, published from ops.quality_gate_runs"
            " where suite_name = 'fct_service_use' order by checked_at desc limit 1"
        ).fetchone()
    assert success and published


def test_rerunning_ingest_changes_nothing(pipeline_run, settings):
    from knowdo.db import connect

    def counts():
        with connect(settings.transformer_url) as conn:
            return conn.execute(
                "select (select count(*) from raw.dhis2_data_values),"
                " (select count(*) from ops.load_batches)"
            ).fetchone()

    before = counts()
    proc = airflow_dags_test("knowdo_ingest")
    assert proc.returncode == 0, _tail(proc)
    assert counts() == before
    assert "already received" in proc.stdout + proc.stderr


def test_feed_health_shows_the_gate_of_the_run_that_published_it(pipeline_run, analyst, settings):
    """Issue 14: mart_feed_health is built by dbt before its run's gate; the published table must
    still show that gate (it showed the run before: on a fresh warehouse every feed `not_checked`
    although the gate passed)."""
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        (run_id,) = conn.execute(
            "select run_id from ops.quality_gate_runs where published"
            " order by checked_at desc limit 1"
        ).fetchone()
        expected = dict(
            conn.execute(
                "with feed_tables as (select distinct on (feed_id) feed_id, raw_table"
                "   from ops.load_batches where raw_table is not null"
                "   order by feed_id, batch_id desc)"
                " select t.feed_id, g.success from feed_tables t"
                " join ops.quality_gate_runs g on g.table_name = t.raw_table and g.layer = 'raw'"
                " where g.run_id = %s",
                (run_id,),
            ).fetchall()
        )
    assert expected, f"the gate of {run_id} checked no raw table of a feed"
    shown = {
        feed: (status, gate_run, published)
        for feed, status, gate_run, published in analyst.execute(
            "select feed_id, last_gate_status, last_gate_run_id, last_gate_published"
            " from marts.mart_feed_health"
        )
    }
    for feed, success in expected.items():
        assert shown[feed] == ("passed" if success else "failed", run_id, True), (
            f"{feed}: feed health shows {shown[feed]}, the last published gate is {run_id}"
        )
    assert all(expected.values()), "the sample feeds' raw suites pass"
