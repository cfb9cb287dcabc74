"""Load one landed file into its raw table: one batch per file, in one transaction, with COPY.

Rows that break the feed's contract go to ops.rejected_rows with a plain-language reason and the rest
of the file loads. A file that cannot be read at all is kept, its batch marked failed with one reason,
and nothing of it reaches raw. A crash mid-file leaves nothing half-loaded (one transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from knowdo.formats import FORMATS, FileRejected, Rejection, Row
from knowdo.landing import land
from knowdo.registry import Feed

BATCH_COLUMNS = ("batch_id", "file_sha256", "row_number", "feed_id")


@dataclass(frozen=True)
class LoadResult:
    feed_id: str
    file_name: str
    sha256: str
    batch_id: int
    status: str  # loaded | failed | superseded (an earlier load of the same bytes)
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    error: str | None
    already_loaded: bool
    superseded: tuple[int, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("loaded", "superseded")


def _existing_batch(conn: psycopg.Connection, feed_id: str, sha: str):
    return conn.execute(
        "select batch_id, status, rows_read, rows_loaded, rows_rejected, error"
        " from ops.load_batches where feed_id = %s and file_sha256 = %s",
        (feed_id, sha),
    ).fetchone()


def ingest_file(
    conn: psycopg.Connection,
    feed: Feed,
    path: Path,
    landing_dir: Path,
    on_progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Land `path` for `feed` and load it. Idempotent: the same bytes again change nothing."""
    spec = FORMATS[feed.format]
    landed = land(conn, landing_dir, feed.id, path)
    if existing := _existing_batch(conn, feed.id, landed.sha256):
        batch_id, status, read, loaded, rejected, error = existing
        return LoadResult(feed.id, path.name, landed.sha256, batch_id, status, read, loaded,
                          rejected, error, already_loaded=True)

    read = loaded = rejected = 0
    periods: set[str] = set()
    first_period = last_period = None
    try:
        with conn.transaction():
            batch_id = conn.execute(
                "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table, status)"
                " values (%s, %s, %s, %s, %s, 'loading') returning batch_id",
                (feed.id, landed.sha256, path.name, feed.format, spec.raw_table),
            ).fetchone()[0]
            rejections: list[Rejection] = []
            rejected_rows: set[int] = set()
            columns = ", ".join(BATCH_COLUMNS + spec.columns)
            with conn.cursor() as cur, cur.copy(f"copy {spec.raw_table} ({columns}) from stdin") as copy:
                ctx = replace(feed.parse_context(file_name=path.name),
                              defer_duplicate_check=bool(spec.key_columns))
                for item in spec.parse(landed.path, ctx):
                    if isinstance(item, Row):
                        copy.write_row((batch_id, landed.sha256, item.row, feed.id, *item.values))
                        loaded += 1
                        if item.period:
                            periods.add(item.period)
                        if item.period_start:
                            first_period = min(first_period or item.period_start, item.period_start)
                            last_period = max(last_period or item.period_start, item.period_start)
                        read = max(read, item.row)
                    else:
                        rejections.append(item)
                        rejected_rows.add(item.row)
                        read = max(read, item.row)
                    if on_progress and (loaded + len(rejected_rows)) % 10000 == 0:
                        on_progress(loaded + len(rejected_rows))
            if spec.key_columns:
                duplicates = _reject_duplicate_keys(conn, spec, batch_id, landed.sha256)
                loaded -= len(duplicates)
                rejected_rows.update(duplicates)
            rejected = len(rejected_rows)
            if rejections:
                with conn.cursor() as cur, cur.copy(
                    "copy ops.rejected_rows (batch_id, file_sha256, row_number, field, value, reason)"
                    " from stdin"
                ) as copy:
                    for r in rejections:
                        copy.write_row((batch_id, landed.sha256, r.row, r.field, r.value, r.reason))
            superseded = _supersede_earlier(conn, feed.id, batch_id, sorted(periods))
            # fresh statistics, or the planner misjudges row counts in the models built next
            conn.execute(f"analyze {spec.raw_table}")
            conn.execute(
                "update ops.load_batches set status = 'loaded', rows_read = %s, rows_loaded = %s,"
                " rows_rejected = %s, periods = %s, period_start = %s, period_end = %s,"
                " submitted_at = %s, finished_at = now() where batch_id = %s",
                (read, loaded, rejected, sorted(periods), first_period, last_period,
                 spec.submitted_at(landed.path) if spec.submitted_at else None, batch_id),
            )
    except FileRejected as exc:
        with conn.transaction():
            batch_id = conn.execute(
                "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table,"
                " status, error, finished_at) values (%s, %s, %s, %s, %s, 'failed', %s, now())"
                " returning batch_id",
                (feed.id, landed.sha256, path.name, feed.format, spec.raw_table, str(exc)),
            ).fetchone()[0]
        return LoadResult(feed.id, path.name, landed.sha256, batch_id, "failed", 0, 0, 0,
                          str(exc), already_loaded=False)
    if on_progress:
        on_progress(loaded + rejected)
    return LoadResult(feed.id, path.name, landed.sha256, batch_id, "loaded", read, loaded,
                      rejected, None, already_loaded=False, superseded=tuple(superseded))


def _reject_duplicate_keys(conn: psycopg.Connection, spec, batch_id: int, sha256: str) -> set[int]:
    """Move every repeat of a key within this batch from raw to ops.rejected_rows (the first
    occurrence stays). Done in SQL after COPY so memory stays flat however large the file."""
    from psycopg import sql

    table = sql.Identifier(*spec.raw_table.split("."))
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key_columns)
    rows = conn.execute(
        sql.SQL(
            """
            with ranked as (
                select ctid as rid, row_number,
                       min(row_number) over (partition by {keys}) as first_row
                from {table} where batch_id = %(batch)s
            ),
            removed as (
                delete from {table} t using ranked
                where t.batch_id = %(batch)s and t.ctid = ranked.rid and ranked.row_number > ranked.first_row
                returning ranked.row_number, ranked.first_row
            )
            insert into ops.rejected_rows (batch_id, file_sha256, row_number, field, value, reason)
            select %(batch)s, %(sha)s, row_number, %(field)s, null,
                   'duplicate key: the same ' || %(what)s || ' appear earlier in this file (row '
                   || first_row || ')'
            from removed
            returning row_number
            """
        ).format(keys=keys, table=table),
        {"batch": batch_id, "sha": sha256, "field": spec.key_columns[0],
         "what": spec.key_description or ", ".join(spec.key_columns)},
    ).fetchall()
    return {r[0] for r in rows}


def _supersede_earlier(conn: psycopg.Connection, feed_id: str, batch_id: int, periods: list[str]) -> list[int]:
    """A corrected resend replaces earlier loads of the same feed whose periods it covers entirely.

    The earlier batch keeps its rows (traceable) and points at its successor; models read only the
    latest loaded batch per feed and period, so a partial overlap never double counts either.
    """
    if not periods:
        return []
    rows = conn.execute(
        "update ops.load_batches set status = 'superseded', superseded_by = %s"
        " where feed_id = %s and status = 'loaded' and batch_id <> %s and periods <@ %s::text[]"
        " returning batch_id",
        (batch_id, feed_id, batch_id, periods),
    ).fetchall()
    return [r[0] for r in rows]
