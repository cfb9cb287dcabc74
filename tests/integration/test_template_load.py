"""KnowDo CSV templates loaded into their raw tables on the real cluster (rolled back after each
test)."""

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.contracts import SQL_TYPES, load_contracts
from knowdo.loading import ingest_file
from knowdo.registry import Feed

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def feed(template, domain="service_use"):
    # a feed id of its own so nothing here can be mistaken for a real submitter's data
    return Feed(
        id=f"test_template_{template.replace('-', '_')}",
        publisher_name="Test NGO",
        publisher_kind="ngo",
        domain=domain,
        format=f"knowdo-{template}-csv",
        source={"folder": "templates", "glob": "*.csv"},
    )


def test_the_live_raw_tables_have_the_contracts_columns(loader_conn):
    for contract in load_contracts().values():
        schema, table = contract.raw_table.split(".")
        live = loader_conn.execute(
            "select column_name, udt_name, is_nullable from information_schema.columns"
            " where table_schema = %s and table_name = %s order by ordinal_position",
            (schema, table),
        ).fetchall()
        names = {c.name: c for c in contract.columns}
        for name, udt, nullable in live:
            if name in names:
                expected = {
                    "text": "text",
                    "bigint": "int8",
                    "integer": "int4",
                    "numeric": "numeric",
                    "date": "date",
                }[SQL_TYPES[names[name].type]]
                assert udt == expected, (contract.raw_table, name)
                required = names[name].required and not names[name].suppressible
                assert (nullable == "NO") == required, (contract.raw_table, name)
        assert [n for n, _, _ in live][4 : 4 + len(names)] == list(names), contract.raw_table


def test_a_service_use_file_loads_typed_with_its_suppressed_columns(loader_conn, tmp_path):
    result = ingest_file(
        loader_conn,
        feed("ngo-service-use"),
        FIXTURES / "ngo-service-use_good.csv",
        tmp_path / "landing",
    )
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 9, 0)
    rows = loader_conn.execute(
        "select row_number, organisation_id, period, group_code, people_reached,"
        " sessions_delivered, suppressed_columns, contract_version"
        " from raw.template_ngo_service_use"
        " where batch_id = %s order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert rows[0] == (1, "KD-NGO-0042", date(2024, 1, 1), "all", 1250, 4830, [], "1.0.0")
    assert rows[3][3:7] == ("0-14", None, None, ["people_reached", "sessions_delivered"])
    assert rows[8][2] == date(2024, 2, 1) and rows[8][6] == ["sessions_delivered"]
    periods = loader_conn.execute(
        "select periods from ops.load_batches where batch_id = %s", (result.batch_id,)
    ).fetchone()[0]
    assert sorted({p.rsplit(":", 1)[1] for p in periods}) == ["2024-01", "2024-02"]
    assert all(p.startswith("KD-NGO-0042:GHA:") for p in periods)  # scoped by submitter and place


def test_bad_rows_go_to_rejected_rows_and_the_rest_loads(loader_conn, tmp_path):
    result = ingest_file(
        loader_conn,
        feed("ngo-outcomes", "outcome"),
        FIXTURES / "ngo-outcomes_bad_rows.csv",
        tmp_path / "landing",
    )
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 1, 7)
    rejected = loader_conn.execute(
        "select row_number, field, value, reason from ops.rejected_rows where batch_id = %s"
        " order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert rejected[0] == (
        2,
        "people_recovered,people_assessed",
        "people_recovered=61, people_assessed=60",
        "people_recovered exceeds people_assessed",
    )
    assert [r[0] for r in rejected] == [2, 3, 4, 5, 6, 7, 8]
    loaded = loader_conn.execute(
        "select instrument, people_assessed, mean_score_before from raw.template_ngo_outcomes"
        " where batch_id = %s",
        (result.batch_id,),
    ).fetchall()
    assert loaded == [("PHQ-9", 120, Decimal("15.1"))]


def test_budget_text_is_stored_verbatim(loader_conn, tmp_path):
    result = ingest_file(
        loader_conn,
        feed("ministry-budget", "funding"),
        FIXTURES / "ministry-budget_good.csv",
        tmp_path / "landing",
    )
    assert (result.status, result.rows_loaded) == ("loaded", 6)
    lines = dict(
        loader_conn.execute(
            "select row_number, coalesce(source_document, '') || ' | ' || budget_line"
            " from raw.template_ministry_budget where batch_id = %s",
            (result.batch_id,),
        ).fetchall()
    )
    assert lines[1].endswith("MOH/MH/01 Mental Health Authority\nrecurrent expenditure")
    assert lines[6].startswith("=cmd|' /C calc'!A0 | ")


def test_a_header_mismatch_fails_the_batch_and_loads_nothing(loader_conn, tmp_path):
    result = ingest_file(
        loader_conn,
        feed("ngo-outcomes", "outcome"),
        FIXTURES / "ngo-outcomes_unknown_column.csv",
        tmp_path / "landing",
    )
    assert result.status == "failed" and result.error.startswith(
        "header mismatch: unknown column(s) notes"
    )
    assert (
        loader_conn.execute(
            "select count(*) from raw.template_ngo_outcomes where batch_id = %s", (result.batch_id,)
        ).fetchone()[0]
        == 0
    )


@pytest.mark.parametrize(
    ("template", "fixture", "domain", "count"),
    [
        ("population", "population_minimal.csv", "reference", 2),
        ("prevalence", "prevalence_good.csv", "reference", 6),
    ],
)
def test_reference_templates_load(loader_conn, tmp_path, template, fixture, domain, count):
    result = ingest_file(
        loader_conn, feed(template, domain), FIXTURES / fixture, tmp_path / "landing"
    )
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", count, 0)
