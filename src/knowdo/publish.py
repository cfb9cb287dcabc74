"""Publish: swap audited candidate marts into `marts` in one transaction (write-audit-publish).

Readers of `marts` see either the previous version of every mart or the new version of every mart,
never a mix, and never an error:

- All tables change in ONE transaction, so a reader's snapshot holds all old or all new versions.
- A mart whose columns are unchanged is refreshed in place (`delete` + `insert`): PostgreSQL's MVCC
  lets readers go on reading the old version until the commit, without waiting. (`truncate` would
  be faster but is not MVCC-safe: a reader with an older snapshot would see an empty table.)
- A mart whose columns changed (or a new mart) is rebuilt beside the old one and renamed over it
  under ACCESS EXCLUSIVE locks taken all at once (NOWAIT, retried: never waiting while holding one,
  so no deadlock with a reader of several marts); readers wait for the commit, then read the new
  table.

Every published table gets its row-level security policies in the same transaction
(knowdo.row_security): viewers' database roles read only their own rows, whatever SQL they send.

Only what the gate audited is published: the candidate tables are locked against writes (SHARE) and
their fingerprints compared with those the gate recorded, so a candidate rebuilt after its audit (a
concurrent dbt run) is refused rather than published unaudited.
"""

from __future__ import annotations

import logging

from psycopg import sql

from knowdo.config import Settings
from knowdo.db import connect
from knowdo.row_security import RowSecurityError, apply_policies

log = logging.getLogger(__name__)
READER_ROLE = "knowdo_marts_reader"


class PublishRefused(RuntimeError):
    """Publishing would put unaudited or failed data in front of readers; the message says why."""


def _columns(conn, schema: str, table: str) -> list[tuple[str, str]]:
    return conn.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
        " where a.attrelid = to_regclass(%s) and a.attnum > 0 and not a.attisdropped"
        " order by a.attnum",
        (f'"{schema}"."{table}"',),
    ).fetchall()


def publish(
    tables: list[str],
    settings: Settings | None = None,
    source_schema: str = "marts_candidate",
    target_schema: str = "marts",
    expected_fingerprints: dict[str, str] | None = None,
) -> dict[str, int]:
    """Copy each candidate table into the target schema, all in one transaction; rows per table.

    With `expected_fingerprints` (table -> fingerprint the gate recorded) a candidate whose content
    differs from what was audited is refused and nothing is published.
    """
    from knowdo.quality import fingerprint

    settings = settings or Settings.from_env()
    tables = sorted(set(tables))
    if not tables:
        raise PublishRefused("nothing to publish: the gate audited no candidate mart")
    counts: dict[str, int] = {}
    with connect(settings.transformer_url) as conn, conn.transaction():
        conn.execute("set local lock_timeout = '120s'")
        # the candidate cannot change between the check below and the copy
        conn.execute(
            sql.SQL("lock table {} in share mode").format(
                sql.SQL(", ").join(sql.Identifier(source_schema, t) for t in tables)
            )
        )
        if expected_fingerprints is not None:
            for table in tables:
                now = fingerprint(conn, source_schema, table)
                if expected_fingerprints.get(table) != now:
                    raise PublishRefused(
                        f"{source_schema}.{table} changed after the quality gate audited it"
                        " (another build ran meanwhile?): nothing published; rerun the transform"
                    )
        in_place, rebuilt = [], []
        for table in tables:
            target = _columns(conn, target_schema, table)
            (
                in_place if target and target == _columns(conn, source_schema, table) else rebuilt
            ).append(table)
        existing = [t for t in rebuilt if _columns(conn, target_schema, t)]
        if existing:
            _lock_exclusively(conn, target_schema, existing)
        for table in tables:
            src = sql.Identifier(source_schema, table)
            dst = sql.Identifier(target_schema, table)
            if table in in_place:
                conn.execute(sql.SQL("delete from {}").format(dst))
                counts[table] = conn.execute(
                    sql.SQL("insert into {} select * from {}").format(dst, src)
                ).rowcount
            else:
                new = sql.Identifier(target_schema, f"{table}__publishing")
                conn.execute(sql.SQL("drop table if exists {}").format(new))
                conn.execute(sql.SQL("create table {} (like {} including all)").format(new, src))
                counts[table] = conn.execute(
                    sql.SQL("insert into {} select * from {}").format(new, src)
                ).rowcount
                conn.execute(sql.SQL("drop table if exists {}").format(dst))
                conn.execute(
                    sql.SQL("alter table {} rename to {}").format(new, sql.Identifier(table))
                )
            # row-level security (knowdo.row_security) in this same transaction, before the grant:
            # no reader ever sees a published table without its policies (a rebuilt table has
            # none; a refreshed one keeps them and this takes no lock unless they changed)
            try:
                apply_policies(conn, target_schema, table)
            except RowSecurityError as exc:
                raise PublishRefused(f"{exc}: nothing published") from exc
            if table not in in_place:
                conn.execute(
                    sql.SQL("grant select on {} to {}").format(dst, sql.Identifier(READER_ROLE))
                )
            conn.execute(sql.SQL("analyze {}").format(dst))
            how = "refreshed in place" if table in in_place else "rebuilt (columns changed or new)"
            log.info("published %s.%s: %s rows, %s", target_schema, table, counts[table], how)
    return counts


def _lock_exclusively(conn, schema: str, tables: list[str], timeout_s: float = 120.0) -> None:
    """Take every ACCESS EXCLUSIVE lock at once or none (NOWAIT, retried).

    Waiting for one table's lock while holding another's could deadlock with a reader that reads
    the tables in the other order; never waiting while holding makes that impossible.
    """
    import time

    from psycopg import errors

    statement = sql.SQL("lock table {} in access exclusive mode nowait").format(
        sql.SQL(", ").join(sql.Identifier(schema, t) for t in tables)
    )
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with conn.transaction():  # a savepoint: a refused attempt leaves nothing behind
                conn.execute(statement)
            return
        except errors.LockNotAvailable:
            if time.monotonic() > deadline:
                raise PublishRefused(
                    f"readers kept {schema}.{', '.join(tables)} busy for {timeout_s:.0f}s:"
                    " nothing published; rerun the transform"
                ) from None
            time.sleep(0.02)


def audited_tables(run_id: str, settings: Settings | None = None) -> dict[str, str]:
    """The candidate marts the gate passed in this run, with their fingerprints; refuses
    otherwise."""
    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn:
        rows = conn.execute(
            "select suite_name, success, layer, table_name, fingerprint from ops.quality_gate_runs"
            " where run_id = %s",
            (run_id,),
        ).fetchall()
    if not rows:
        raise PublishRefused(
            f"no quality gate outcome recorded for run {run_id}: nothing published"
        )
    failed = sorted(name for name, success, *_ in rows if not success)
    if failed:
        raise PublishRefused(
            f"the quality gate failed for run {run_id} (suites: {', '.join(failed)}):"
            " nothing published; marts keep their last good version"
        )
    return {
        table.split(".", 1)[1]: fp
        for _, _, layer, table, fp in rows
        if layer == "marts" and fp is not None
    }


def publish_audited(run_id: str, settings: Settings | None = None) -> dict[str, int]:
    """Publish exactly what the gate passed in `run_id`, as it was when audited."""
    audited = audited_tables(run_id, settings)
    return publish(list(audited), settings, expected_fingerprints=audited)
