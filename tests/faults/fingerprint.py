"""A fingerprint of the warehouse: every published mart and every raw and ops table, hashed
row by row.

The fault tests compare the warehouse after a fault and its rerun with the fingerprint of a clean
run: equal fingerprints mean nothing was lost and nothing was duplicated (each table is hashed as a
multiset of rows, so a duplicated row changes its hash as much as a lost one).

Only columns whose values legitimately differ between two runs of the same data are left out, and
they are named here, table by table (EXCLUDED_COLUMNS): load and run timestamps, serial ids and run
ids. Some tables are not a plain multiset:

* LAST_RUN_ONLY: ops.quality_gate_runs gains one row per suite on every transform run by design (a
  fault's rerun is one more run than the clean one). Only the *latest* gate run is compared: each
  suite's outcome (success, failures, published) on the data of that run. Its `evaluated` and
  `notes` are left out: a mart's first publication skips the row-count comparison with the published
  version (one check fewer, said in its notes), so a clean run on a fresh cluster and the rerun
  after it differ there with the same data; its `fingerprint` is the gate's hash of the mart, which
  the marts' own hashes here cover.
* NOT_COMPARED: ops.alerts — a fault is *meant* to leave an alert (db_outage, stalled_run, ...); the
  tests assert the alert they expect instead. marts.mart_quality_gate_history — the published log of
  every earlier gate run: a rerun adds its rows by design (its latest run is compared above).

Everything else found in the schemas marts, raw and ops (information_schema, at the time of the
call) is compared whole, so a table added later is covered without touching this file.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import sql

SCHEMAS = ("marts", "raw", "ops")

# (schema.table or schema.* ) -> columns left out, and why
EXCLUDED_COLUMNS: dict[str, tuple[str, ...]] = {
    # serial id of the batch: a rerun of the same file gets a new one (file_sha256 identifies the
    # file)
    "raw.*": ("batch_id",),
    "ops.load_batches": ("batch_id", "superseded_by", "started_at", "finished_at"),
    "ops.rejected_rows": ("batch_id", "rejected_at"),
    "ops.landed_files": ("received_at",),
    "ops.schema_migrations": ("applied_at",),
    "ops.feeds": ("synced_at",),
    # one row per suite per gate run: run id, time and the Data Docs page of that run; see
    # LAST_RUN_ONLY for the other three
    "ops.quality_gate_runs": (
        "run_id",
        "checked_at",
        "data_docs",
        "evaluated",
        "notes",
        "fingerprint",
    ),
    # the id and time of the gate run that checked the mart (its status and publication compared)
    "marts.mart_feed_health": ("last_gate_run_id", "last_gate_checked_at"),
}
LAST_RUN_ONLY = frozenset({"ops.quality_gate_runs"})
NOT_COMPARED = frozenset({"ops.alerts", "marts.mart_quality_gate_history"})


@dataclass(frozen=True)
class TableHash:
    rows: int
    digest: str


def excluded(table: str) -> tuple[str, ...]:
    schema = table.split(".", 1)[0]
    return EXCLUDED_COLUMNS.get(table, ()) + EXCLUDED_COLUMNS.get(f"{schema}.*", ())


def tables(conn: psycopg.Connection) -> list[str]:
    return [
        f"{s}.{t}"
        for s, t in conn.execute(
            "select table_schema, table_name from information_schema.tables"
            " where table_schema = any(%s) and table_type = 'BASE TABLE' order by 1, 2",
            (list(SCHEMAS),),
        )
        if f"{s}.{t}" not in NOT_COMPARED
    ]


def table_hash(conn: psycopg.Connection, table: str) -> TableHash:
    schema, name = table.split(".", 1)
    skip = set(excluded(table))
    columns = [
        c
        for (c,) in conn.execute(
            "select column_name from information_schema.columns"
            " where table_schema = %s and table_name = %s order by column_name",
            (schema, name),
        )
        if c not in skip
    ]
    row = sql.SQL("row({})::text").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    source = sql.SQL("select md5({row}) as h from {table}{where}").format(
        row=row,
        table=sql.Identifier(schema, name),
        where=sql.SQL(
            " where run_id = (select run_id from {} order by checked_at desc limit 1)"
            if table in LAST_RUN_ONLY
            else ""
        ).format(sql.Identifier(schema, name)),
    )
    count, digest = conn.execute(
        sql.SQL(
            "select count(*), coalesce(md5(string_agg(h, '' order by h)), '') from ({}) s"
        ).format(source)
    ).fetchone()
    return TableHash(count, digest)


def fingerprint(conn: psycopg.Connection) -> dict[str, TableHash]:
    """table -> (rows, digest) for every compared table, in one snapshot (repeatable read)."""
    with conn.transaction():
        conn.execute("set transaction isolation level repeatable read, read only")
        return {t: table_hash(conn, t) for t in tables(conn)}


def differences(expected: dict[str, TableHash], actual: dict[str, TableHash]) -> list[str]:
    """One line per table that differs (missing, extra, other rows), for an assertion message."""
    lines = []
    for table in sorted(expected.keys() | actual.keys()):
        e, a = expected.get(table), actual.get(table)
        if e == a:
            continue
        if e is None or a is None:
            lines.append(
                f"{table}: {'only after the fault' if e is None else 'missing after the fault'}"
            )
        else:
            lines.append(
                f"{table}: {e.rows} rows in the clean run, {a.rows} after the fault"
                + (" (same count, other content)" if e.rows == a.rows else "")
            )
    return lines


def assert_same(expected: dict[str, TableHash], actual: dict[str, TableHash], what: str) -> None:
    diff = differences(expected, actual)
    assert not diff, f"the warehouse after {what} differs from a clean run:\n  " + "\n  ".join(diff)
