"""The raw suites against the real cluster, in a scratch warehouse database (the shared `warehouse`
is untouched): every raw suite passes on the bundled sample feeds, and a planted bad row makes the
suite of its table fail naming the expectation, the feed and batch, and example rows."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest
from psycopg.types.json import Jsonb

from knowdo.db import connect
from tests.helpers.scratch_warehouse import RAW_TABLES, clone_template, scratch_settings

pytestmark = pytest.mark.integration
SCRATCH_DB = "knowdo_test_quality_raw"
PLANTED_FEED = "zz_planted_raw"


@pytest.fixture(scope="module")
def scratch(scratch_template, tmp_path_factory):
    """A copy of the session's template warehouse (the sample feeds ingested): the plants below are
    committed, and the gate's outcomes recorded in ops."""
    clone_template(scratch_template, SCRATCH_DB)
    with scratch_settings(SCRATCH_DB) as settings:
        yield replace(settings, gx_docs_dir=tmp_path_factory.mktemp("data_docs"))


def _raw_gate(settings):
    from knowdo.quality import run_gate

    return run_gate(settings=settings, layers=("raw",))


def test_every_raw_table_has_a_suite_and_all_pass_on_the_sample_feeds(scratch):
    result = _raw_gate(scratch)
    audited = {o.table for o in result.outcomes}
    assert audited == set(RAW_TABLES), audited ^ set(RAW_TABLES)
    assert result.success, result.summary()
    for o in result.outcomes:
        assert o.layer == "raw" and o.evaluated >= 10, f"{o.qualified_table}: {o.evaluated}"
    assert "Data Docs:" in result.summary()


def _plant_batch(conn, raw_table: str, rows: int, periods: list[str], first=None, last=None) -> int:
    sha = f"planted-{raw_table}-{os.getpid()}"
    conn.execute(
        "insert into ops.landed_files (file_sha256, feed_id, file_name, size_bytes,"
        " landing_path) values (%s, %s, %s, 1, '/dev/null')",
        (sha, PLANTED_FEED, f"planted_{raw_table}.csv"),
    )
    return conn.execute(
        "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table, status,"
        " rows_read, rows_loaded, periods, period_start, period_end)"
        " values (%s, %s, %s, 'planted', %s, 'loaded', %s, %s, %s, %s, %s) returning batch_id",
        (
            PLANTED_FEED,
            sha,
            f"planted_{raw_table}.csv",
            f"raw.{raw_table}",
            rows,
            rows,
            periods,
            first,
            last,
        ),
    ).fetchone()[0]


@pytest.fixture
def planted(scratch):
    """One bad row in each of three raw families, committed (GX reads through its own connection)
    and deleted afterwards. Each row breaks exactly one rule; everything else about it is valid."""
    from datetime import date

    with connect(scratch.warehouse_url) as conn, conn.transaction():
        ngo = _plant_batch(
            conn,
            "template_ngo_service_use",
            1,
            ["KD-NGO-0042:GHA:GH-AA:2024-03"],
            date(2024, 3, 1),
            date(2024, 3, 1),
        )
        conn.execute(
            "insert into raw.template_ngo_service_use (batch_id, file_sha256, row_number, feed_id,"
            " organisation_id, country_code, geography_code, period, intervention_code, stratifier,"
            " group_code, people_reached, sessions_delivered, contract_version)"
            " values (%s, 'x', 2, %s, 'KD-NGO-0042', 'GHA', 'GH-AA', '2024-03-01',"
            " 'problem_management_plus', 'all', 'all', 40, 12, '1.0.0')",
            (ngo, PLANTED_FEED),
        )
        who = _plant_batch(
            conn,
            "who_gho_values",
            1,
            ["GHED_CHE_pc_US_SHA2011:2020"],
            date(2020, 1, 1),
            date(2020, 1, 1),
        )
        conn.execute(
            "insert into raw.who_gho_values (batch_id, file_sha256, row_number, feed_id,"
            " export_layout, indicator_code, spatial_type, spatial_code, country_code, period,"
            " period_start, period_end, value_numeric, value_text, is_suppressed)"
            " values (%s, 'x', 2, %s, 'api', 'GHED_CHE_pc_US_SHA2011', 'COUNTRY', 'GHA', 'GHA',"
            " 2020, '2020-01-01', '2020-12-31', -85.2, '-85.2', false)",
            (who, PLANTED_FEED),
        )
        iati = _plant_batch(conn, "iati_activities", 1, [])
        transactions = [
            {"type": "2", "date": "2024-01-10", "value": "1000", "currency": "USD"},
            {"type": "99", "date": "2024-02-10", "value": "500", "currency": "USD"},
        ]
        conn.execute(
            "insert into raw.iati_activities (batch_id, file_sha256, row_number, feed_id,"
            " iati_identifier, iati_version, default_currency, participating_orgs, sectors,"
            " recipient_countries, recipient_regions, transactions, is_mental_health)"
            " values (%s, 'x', 1, %s, 'XX-PLANTED-1', '2.03', 'USD', '[]', %s, %s, '[]', %s, true)",
            (
                iati,
                PLANTED_FEED,
                Jsonb([{"code": "12340", "percentage": 100, "vocabulary": "1"}]),
                Jsonb([{"code": "GH", "percentage": 100}]),
                Jsonb(transactions),
            ),
        )
    yield {"template_ngo_service_use": ngo, "who_gho_values": who, "iati_activities": iati}
    with connect(scratch.warehouse_url) as conn, conn.transaction():
        for table in ("template_ngo_service_use", "who_gho_values", "iati_activities"):
            conn.execute(f"delete from raw.{table} where feed_id = %s", (PLANTED_FEED,))
        conn.execute("delete from ops.load_batches where feed_id = %s", (PLANTED_FEED,))
        conn.execute("delete from ops.landed_files where feed_id = %s", (PLANTED_FEED,))


EXPECTED_FAILURE = {
    "template_ngo_service_use": (
        "everyone reached had at least one session (sessions >= people reached)"
    ),
    "who_gho_values": (
        "health expenditure (GHED) and Mental Health Atlas (MH) values are not negative"
    ),
    "iati_activities": "transaction types are IATI TransactionType codes 1-13",
}


def test_a_planted_bad_row_fails_its_suite_naming_feed_batch_and_rows(scratch, planted):
    result = _raw_gate(scratch)
    assert not result.success
    outcomes = {o.table: o for o in result.outcomes}
    text = result.summary()
    for table, description in EXPECTED_FAILURE.items():
        outcome = outcomes[table]
        assert not outcome.success, text
        # exactly the broken rule fails: the planted row is otherwise valid (manifest, periods...)
        assert [f.description for f in outcome.failures] == [description], text
        failure = outcome.failures[0]
        assert failure.unexpected_count == 1
        assert failure.batches == [f"{PLANTED_FEED} batch {planted[table]}"]
        assert failure.examples and failure.examples[0]["feed_id"] == PLANTED_FEED
        assert f"raw.{table}: suite raw_{table} FAILED" in text
        assert f"(1 rows) in {PLANTED_FEED} batch {planted[table]}: {description}" in text
    # the other raw tables still pass
    assert all(o.success for t, o in outcomes.items() if t not in EXPECTED_FAILURE), text


def test_a_column_expectation_names_the_rows_feed_and_batch(scratch):
    """Column expectations (not only row queries) say where their unexpected rows came from."""
    from datetime import date

    with connect(scratch.warehouse_url) as conn, conn.transaction():
        batch = _plant_batch(
            conn, "template_prevalence", 1, ["ZZZ:2024"], date(2024, 1, 1), date(2024, 1, 1)
        )
        conn.execute(
            "insert into raw.template_prevalence (batch_id, file_sha256, row_number, feed_id,"
            " geography_code, year, condition, sex, age_band, prevalence_percent, source,"
            " contract_version) values (%s, 'x', 7, %s, 'GHA', 2024, 'insomnia', 'all', 'all',"
            " 5.1, 'planted', '1.0.0')",
            (batch, PLANTED_FEED),
        )
    try:
        result = _raw_gate(scratch)
    finally:
        with connect(scratch.warehouse_url) as conn, conn.transaction():
            conn.execute("delete from raw.template_prevalence where feed_id = %s", (PLANTED_FEED,))
            conn.execute("delete from ops.load_batches where feed_id = %s", (PLANTED_FEED,))
            conn.execute("delete from ops.landed_files where feed_id = %s", (PLANTED_FEED,))
    outcome = next(o for o in result.outcomes if o.table == "template_prevalence")
    (failure,) = outcome.failures
    assert (failure.expectation, failure.column) == (
        "expect_column_values_to_be_in_set",
        "condition",
    )
    assert failure.batches == [f"{PLANTED_FEED} batch {batch}"]
    assert failure.examples == [
        {"feed_id": PLANTED_FEED, "batch_id": batch, "row_number": 7, "condition": "insomnia"}
    ]


def test_raw_outcomes_are_recorded_in_ops_for_the_data_health_marts(scratch):
    from knowdo.quality import record_gate

    result = _raw_gate(scratch)
    record_gate(result, "test_quality_raw", published=False, settings=scratch)
    with connect(scratch.transformer_url) as conn:
        rows = conn.execute(
            "select table_name, layer, success from ops.quality_gate_runs"
            " where run_id = 'test_quality_raw' order by 1"
        ).fetchall()
    assert [r[0] for r in rows] == sorted(f"raw.{t}" for t in RAW_TABLES)
    assert all(layer == "raw" and success for _t, layer, success in rows)
