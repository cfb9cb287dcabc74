"""Write-audit-publish against the real cluster, in scratch schemas (the real `marts` is untouched):
the swap is atomic under concurrent readers, only an audited candidate is published, and a
candidate that changed after its audit is refused."""

from __future__ import annotations

import os
import threading
import time
import uuid

import pytest
from psycopg import sql

from knowdo.db import connect
from knowdo.publish import PublishRefused, audited_tables, publish
from knowdo.quality import fingerprint

pytestmark = pytest.mark.integration
ROWS = 20000
TABLES = ("fct_alpha", "fct_beta")


@pytest.fixture
def schemas(cluster, settings):
    """Three candidate schemas (versions 1, 2 and 3 with an extra column) and a target schema."""
    tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
    names = {
        "v1": f"knowdo_test_cand1_{tag}",
        "v2": f"knowdo_test_cand2_{tag}",
        "v3": f"knowdo_test_cand3_{tag}",
        "target": f"knowdo_test_pub_{tag}",
    }
    with connect(settings.transformer_url, autocommit=True) as conn:
        for key, schema in names.items():
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
            if key == "target":
                continue
            version = int(key[1])
            extra = sql.SQL(", 'new column' as note") if version == 3 else sql.SQL("")
            for table in TABLES:
                conn.execute(
                    sql.SQL(
                        "create table {} as select g as row_key, {} as version,"
                        " (g * {}) % 97 as amount{} from generate_series(1, {}) g"
                    ).format(
                        sql.Identifier(schema, table),
                        sql.Literal(version),
                        sql.Literal(version),
                        extra,
                        sql.Literal(ROWS + version),
                    )
                )
    yield names
    with connect(settings.transformer_url, autocommit=True) as conn:
        for schema in names.values():
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def _content(conn, schema, table):
    return conn.execute(
        sql.SQL("select md5(string_agg(t::text, '|' order by t.row_key)) from {} t").format(
            sql.Identifier(schema, table)
        )
    ).fetchone()[0]


def test_publish_copies_every_table_and_a_rerun_changes_nothing(schemas, settings):
    counts = publish(list(TABLES), settings, schemas["v1"], schemas["target"])
    assert counts == {t: ROWS + 1 for t in TABLES}
    with connect(settings.transformer_url) as conn:
        first = {t: _content(conn, schemas["target"], t) for t in TABLES}
        assert first == {t: _content(conn, schemas["v1"], t) for t in TABLES}
        publish(list(TABLES), settings, schemas["v1"], schemas["target"])
        assert {t: _content(conn, schemas["target"], t) for t in TABLES} == first
        readers = conn.execute(
            "select count(*) from information_schema.role_table_grants where grantee ="
            " 'knowdo_marts_reader' and table_schema = %s and privilege_type = 'SELECT'",
            (schemas["target"],),
        ).fetchone()[0]
    assert readers == len(TABLES)


def test_readers_never_see_a_mix_or_an_error_while_publish_runs(schemas, settings):
    target = schemas["target"]
    publish(list(TABLES), settings, schemas["v1"], target)
    alpha, beta = (sql.Identifier(target, t) for t in TABLES)
    one_table = sql.SQL("(select count(*) || ':' || min(version) || ':' || max(version) from {})")
    queries = [  # both orders: a reader of several marts must never deadlock with publish
        sql.SQL("select {}, {}").format(one_table.format(alpha), one_table.format(beta)),
        sql.SQL("select {}, {}").format(one_table.format(beta), one_table.format(alpha)),
    ]
    seen: list[tuple[str, str]] = []
    errors: list[str] = []
    stop = threading.Event()

    def reader(query):
        with connect(settings.transformer_url, autocommit=True) as conn:
            while not stop.is_set():
                try:
                    seen.append(conn.execute(query).fetchone())
                except Exception as exc:  # noqa: BLE001 — any error is a finding
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=reader, args=(q,)) for q in queries]
    for t in threads:
        t.start()
    try:
        # in-place refreshes (v1 <-> v2) and column-changing rebuilds (v3) under the readers
        for source in ("v2", "v1", "v3", "v2", "v3", "v1"):
            publish(list(TABLES), settings, schemas[source], target)
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert errors == []
    assert len(seen) > 50, "the readers hardly ran: the test proved nothing"
    versions = set()
    for first, second in seen:
        count_a, low_a, high_a = first.split(":")
        count_b, low_b, high_b = second.split(":")
        assert low_a == high_a == low_b == high_b, (
            f"a reader saw a mix of versions: {first} / {second}"
        )
        assert count_a == count_b == str(ROWS + int(low_a)), (first, second)
        versions.add(low_a)
    assert versions >= {"1", "2"}, (
        f"readers saw only versions {versions}: no swap happened under them"
    )
    with connect(settings.transformer_url) as conn:
        columns = [
            r[0]
            for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = %s order by ordinal_position",
                (target, TABLES[0]),
            )
        ]
    assert columns == ["row_key", "version", "amount"]  # the v3 column left again with v1


def test_a_candidate_changed_after_its_audit_is_refused(schemas, settings):
    publish(list(TABLES), settings, schemas["v1"], schemas["target"])
    with connect(settings.transformer_url, autocommit=True) as conn:
        audited = {t: fingerprint(conn, schemas["v2"], t) for t in TABLES}
        before = _content(conn, schemas["target"], TABLES[0])
        conn.execute(
            sql.SQL("update {} set amount = amount + 1 where row_key = 7").format(
                sql.Identifier(schemas["v2"], TABLES[1])
            )
        )
    with pytest.raises(
        PublishRefused, match=f"{schemas['v2']}.{TABLES[1]} changed after the quality gate"
    ):
        publish(
            list(TABLES), settings, schemas["v2"], schemas["target"], expected_fingerprints=audited
        )
    with connect(settings.transformer_url) as conn:
        # nothing published, not even the unchanged table (one transaction)
        assert _content(conn, schemas["target"], TABLES[0]) == before


def test_fingerprint_sees_a_single_changed_value(schemas, settings):
    with connect(settings.transformer_url, autocommit=True) as conn:
        before = fingerprint(conn, schemas["v1"], TABLES[0])
        conn.execute(
            sql.SQL("update {} set amount = amount + 1 where row_key = 1").format(
                sql.Identifier(schemas["v1"], TABLES[0])
            )
        )
        assert fingerprint(conn, schemas["v1"], TABLES[0]) != before


@pytest.fixture
def gate_run(cluster, settings):
    run_id = f"test_publish__{uuid.uuid4().hex}"
    yield run_id
    with connect(settings.warehouse_url, autocommit=True) as conn:  # the loader owns ops
        conn.execute("delete from ops.quality_gate_runs where run_id = %s", (run_id,))


def _record(
    settings, run_id, suite, success, layer="marts", table="marts_candidate.fct_x", fp="1:2"
):
    with connect(settings.transformer_url, autocommit=True) as conn:
        conn.execute(
            "insert into ops.quality_gate_runs (run_id, suite_name, success, evaluated, failed,"
            " layer, table_name, fingerprint) values (%s, %s, %s, 3, %s, %s, %s, %s)",
            (run_id, suite, success, 0 if success else 1, layer, table, fp),
        )


def test_only_a_run_whose_every_suite_passed_is_publishable(gate_run, settings):
    with pytest.raises(PublishRefused, match="no quality gate outcome recorded"):
        audited_tables(gate_run, settings)
    _record(settings, gate_run, "fct_x", True)
    _record(settings, gate_run, "raw_y", True, layer="raw", table="raw.y", fp=None)
    assert audited_tables(gate_run, settings) == {"fct_x": "1:2"}
    _record(settings, gate_run, "raw_z", False, layer="raw", table="raw.z", fp=None)
    with pytest.raises(PublishRefused, match=r"quality gate failed .* \(suites: raw_z\)"):
        audited_tables(gate_run, settings)
