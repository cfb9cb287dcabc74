"""Load one landed file into its raw table: one batch per file, in one transaction, with COPY.

Rows that break the feed's contract go to ops.rejected_rows with a plain-language reason and the
rest of the file loads. A file that cannot be read at all is kept, its batch marked failed with one
reason, and nothing of it reaches raw. A crash mid-file leaves nothing half-loaded (one
transaction).
"""

from __future__ import annotations

import queue
import tempfile
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TypeVar

import psycopg

from knowdo.config import Settings
from knowdo.formats import (
    FORMATS,
    FastPathUnavailable,
    FileRejected,
    OutOfScope,
    ParseContext,
    Rejection,
    Row,
)
from knowdo.landing import LandedFile, land
from knowdo.registry import Feed
from knowdo.schedules import last_day_covered

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
    vectorised: bool = False  # loaded through the format's vectorised path (not row by row)
    # rows outside the feed's mapping (DHIS2): neither loaded nor rejected, see ops.out_of_scope_ids
    rows_out_of_scope: int = 0


def _existing_batch(conn: psycopg.Connection, feed_id: str, sha: str):
    return conn.execute(
        "select batch_id, status, rows_read, rows_loaded, rows_rejected, error, rows_out_of_scope"
        " from ops.load_batches where feed_id = %s and file_sha256 = %s",
        (feed_id, sha),
    ).fetchone()


def ingest_file(
    conn: psycopg.Connection,
    feed: Feed,
    path: Path,
    landing_dir: Path,
    on_progress: Callable[[int], None] | None = None,
    vectorised: bool = True,
    copy_format: str | None = None,
) -> LoadResult:
    """Land `path` for `feed` and load it. Idempotent: the same bytes again change nothing.

    A format with a vectorised path (`FormatSpec.load_tables`) is loaded through it, a block at a
    time, unless `vectorised` is False; both paths load the same rows and rejections.
    `copy_format` ("binary" or "csv") is how the vectorised path sends its blocks; by default the
    KNOWDO_COPY_FORMAT setting (see `resolve_copy_format`)."""
    spec = FORMATS[feed.format]
    copy_format = resolve_copy_format(copy_format)
    vectorised = bool(spec.load_tables and vectorised)
    if vectorised:  # pyarrow's imports (~0.5 s) overlap the landing's hashing and copying
        threading.Thread(target=_import_pyarrow, name="knowdo-import-pyarrow", daemon=True).start()
    landed = land(conn, landing_dir, feed.id, path)
    if existing := _already_received(conn, feed, path, landed):
        return existing
    try:
        return _load_landed(conn, feed, spec, path, landed, on_progress, vectorised, copy_format)
    except psycopg.errors.UniqueViolation as exc:
        # another ingest of the same bytes for this feed committed its batch while this one was
        # loading (the unique key made this one wait for it): the file has been received once
        if exc.diag.constraint_name != "load_batches_feed_id_file_sha256_key":
            raise
        if existing := _already_received(conn, feed, path, landed):
            return existing
        raise


def _already_received(
    conn: psycopg.Connection, feed: Feed, path: Path, landed: LandedFile
) -> LoadResult | None:
    if existing := _existing_batch(conn, feed.id, landed.sha256):
        batch_id, status, read, loaded, rejected, error, out_of_scope = existing
        return LoadResult(
            feed.id,
            path.name,
            landed.sha256,
            batch_id,
            status,
            read,
            loaded,
            rejected,
            error,
            already_loaded=True,
            rows_out_of_scope=out_of_scope,
        )
    return None


def _load_landed(
    conn: psycopg.Connection,
    feed: Feed,
    spec,
    path: Path,
    landed: LandedFile,
    on_progress: Callable[[int], None] | None,
    vectorised: bool,
    copy_format: str,
) -> LoadResult:
    """Load a landed file as one batch in one transaction (a failed file as a failed batch)."""
    try:
        with conn.transaction():
            batch_id = conn.execute(
                "insert into ops.load_batches"
                " (feed_id, file_sha256, file_name, format, raw_table, status)"
                " values (%s, %s, %s, %s, %s, 'loading') returning batch_id",
                (feed.id, landed.sha256, path.name, feed.format, spec.raw_table),
            ).fetchone()[0]
            ctx = replace(
                feed.parse_context(file_name=path.name),
                defer_duplicate_check=bool(spec.key_columns),
            )
            copied = None
            if vectorised:
                try:
                    with (
                        conn.transaction()
                    ):  # a savepoint: a fall back keeps nothing of the attempt
                        copied = _copy_tables(
                            conn, spec, ctx, landed, batch_id, feed.id, on_progress, copy_format
                        )
                except FastPathUnavailable:
                    copied, vectorised = None, False
            if copied is None:
                copied = _copy_rows(conn, spec, ctx, landed, batch_id, feed.id, on_progress)
            loaded, rejected_rows, rejections = (
                copied.loaded,
                copied.rejected_rows,
                copied.rejections,
            )
            if spec.key_columns:
                duplicates = _reject_duplicate_keys(
                    conn, spec, batch_id, landed.sha256, copied.key_candidates
                )
                loaded -= len(duplicates)
                rejected_rows.update(duplicates)
            rejected = len(rejected_rows)
            if rejections:
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "copy ops.rejected_rows"
                        " (batch_id, file_sha256, row_number, field, value, reason) from stdin"
                    ) as copy,
                ):
                    for r in rejections:
                        copy.write_row((batch_id, landed.sha256, r.row, r.field, r.value, r.reason))
            if copied.out_of_scope_ids:
                with (
                    conn.cursor() as cur,
                    cur.copy(
                        "copy ops.out_of_scope_ids (batch_id, id_kind, source_id, row_count)"
                        " from stdin"
                    ) as copy,
                ):
                    for (kind, source_id), count in sorted(copied.out_of_scope_ids.items()):
                        copy.write_row((batch_id, kind, source_id, count))
            periods = sorted(copied.periods)
            superseded = _supersede_earlier(conn, feed.id, batch_id, periods)
            # fresh statistics, or the planner misjudges row counts in the models built next
            conn.execute(f"analyze {spec.raw_table}")
            conn.execute(
                "update ops.load_batches set status = 'loaded', rows_read = %s, rows_loaded = %s,"
                " rows_rejected = %s, rows_out_of_scope = %s, periods = %s, period_start = %s,"
                " period_end = %s, last_day_covered = %s, submitted_at = %s, finished_at = now()"
                " where batch_id = %s",
                (
                    copied.read,
                    loaded,
                    rejected,
                    copied.out_of_scope_rows,
                    periods,
                    copied.first_period,
                    copied.last_period,
                    last_day_covered(
                        copied.last_period, periods[-1] if periods else None, feed.schedule
                    ),
                    spec.submitted_at(landed.path) if spec.submitted_at else None,
                    batch_id,
                ),
            )
    except FileRejected as exc:
        with conn.transaction():
            batch_id = conn.execute(
                "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table,"
                " status, error, finished_at) values (%s, %s, %s, %s, %s, 'failed', %s, now())"
                " returning batch_id",
                (feed.id, landed.sha256, path.name, feed.format, spec.raw_table, str(exc)),
            ).fetchone()[0]
        return LoadResult(
            feed.id,
            path.name,
            landed.sha256,
            batch_id,
            "failed",
            0,
            0,
            0,
            str(exc),
            already_loaded=False,
        )
    if on_progress:
        on_progress(loaded + rejected)
    return LoadResult(
        feed.id,
        path.name,
        landed.sha256,
        batch_id,
        "loaded",
        copied.read,
        loaded,
        rejected,
        None,
        already_loaded=False,
        superseded=tuple(superseded),
        vectorised=vectorised,
        rows_out_of_scope=copied.out_of_scope_rows,
    )


def _import_pyarrow() -> None:
    import pyarrow as pa

    import knowdo.formats._arrow  # noqa: F401

    pa.array([0])  # the first conversion imports pandas (pyarrow looks for its types)


@dataclass
class _Copied:
    """What went into the raw table for one file, before the duplicate-key check."""

    read: int = 0
    loaded: int = 0
    rejections: list[Rejection] = field(default_factory=list)
    rejected_rows: set[int] = field(default_factory=set)
    periods: set[str] = field(default_factory=set)
    first_period: date | None = None
    last_period: date | None = None
    # keys that may repeat (the only ones the duplicate check must look at); None: look at all
    key_candidates: set[tuple] | None = None
    # records outside the feed's mapping, and rows per unmapped (id kind, id)
    out_of_scope_rows: int = 0
    out_of_scope_ids: Counter = field(default_factory=Counter)

    def add_out_of_scope(self, records: list[OutOfScope]) -> None:
        self.out_of_scope_rows += len(records)
        for record in records:
            self.out_of_scope_ids.update(record.ids)

    def add_periods(self, periods: set[str], first: date | None, last: date | None) -> None:
        self.periods |= periods
        if first is not None:
            self.first_period = min(self.first_period or first, first)
        if last is not None:
            self.last_period = max(self.last_period or last, last)


def _copy_rows(
    conn: psycopg.Connection,
    spec,
    ctx: ParseContext,
    landed: LandedFile,
    batch_id: int,
    feed_id: str,
    on_progress,
) -> _Copied:
    """The format's row parser into COPY, one row at a time (the exact path every format has)."""
    from knowdo.isolation import iter_isolated

    copied = _Copied()
    columns = ", ".join(BATCH_COLUMNS + spec.columns)
    with conn.cursor() as cur, cur.copy(f"copy {spec.raw_table} ({columns}) from stdin") as copy:
        # issue 13: parsed in a child process under the memory ceiling (knowdo.isolation)
        for item in iter_isolated(spec.parse, landed.path, ctx, limits=ctx.limits):
            if isinstance(item, Row):
                copy.write_row((batch_id, landed.sha256, item.row, feed_id, *item.values))
                copied.loaded += 1
                if item.period:
                    copied.periods.add(item.period)
                if item.period_start:
                    copied.add_periods(set(), item.period_start, item.period_start)
            elif isinstance(item, OutOfScope):
                copied.add_out_of_scope([item])
            else:
                copied.rejections.append(item)
                copied.rejected_rows.add(item.row)
            copied.read = max(copied.read, item.row)
            if on_progress and (copied.loaded + len(copied.rejected_rows)) % 10000 == 0:
                on_progress(copied.loaded + len(copied.rejected_rows))
    return copied


def resolve_copy_format(chosen: str | None = None) -> str:
    """How the vectorised path sends blocks: "binary" (PostgreSQL's binary COPY format, the
    default: 20-30% less work for the server) or "csv" (the former route, kept so the two can be
    compared). `chosen` wins; without it, the KNOWDO_COPY_FORMAT setting, else binary."""
    source = "copy_format" if chosen is not None else "KNOWDO_COPY_FORMAT"
    if chosen is None:
        chosen = Settings.from_env().copy_format
    chosen = chosen.strip().lower() or "binary"
    if chosen not in ("binary", "csv"):
        raise ValueError(f"{source} must be binary or csv, not {chosen!r}")
    return chosen


def _column_types(conn: psycopg.Connection, raw_table: str, names: tuple[str, ...]) -> list[str]:
    schema, table = raw_table.split(".")
    found = dict(
        conn.execute(
            "select column_name, data_type from information_schema.columns"
            " where table_schema = %s and table_name = %s",
            (schema, table),
        ).fetchall()
    )
    return [found.get(name, "") for name in names]


def _copy_tables(
    conn: psycopg.Connection,
    spec,
    ctx: ParseContext,
    landed: LandedFile,
    batch_id: int,
    feed_id: str,
    on_progress,
    copy_format: str,
) -> _Copied:
    """The format's vectorised path into COPY, a block at a time. Blocks are parsed and encoded in
    a thread while this one sends the previous block, so the client's work overlaps the server's.

    Binary COPY (see _pgbinary) by default: the rows whose values it cannot encode with certainty
    (rare: a numeric not written as plain digits, a naive timestamp in a DST change) are spilled
    to a temporary file as CSV and sent by a second COPY (format csv) after the binary one.
    Raises FastPathUnavailable (from the format) when the file needs the row path."""
    import pyarrow as pa

    from knowdo.formats import _pgbinary
    from knowdo.formats._arrow import KeyFilter, constant, copy_csv
    from knowdo.isolation import iter_isolated

    for thread in threading.enumerate():  # issue 13: no import in flight when the parser forks
        if thread.name == "knowdo-import-pyarrow":
            thread.join()

    copied = _Copied()
    names = BATCH_COLUMNS + spec.columns
    columns = ", ".join(names)
    binary = copy_format == "binary" and conn.info.encoding == "utf-8"
    if binary:
        types = _column_types(conn, spec.raw_table, names)
        binary = all(t in _pgbinary.SUPPORTED_TYPES for t in types)
        zone = _pgbinary.session_zone(conn.info.parameter_status("TimeZone"))
    with (
        KeyFilter(spec.key_columns) if spec.key_columns else nullcontext() as key_filter,
        tempfile.TemporaryFile(prefix="knowdo-copy-csv-") as leftovers,
    ):

        def encoded():
            # issue 13: parsed in a child process under the memory ceiling (knowdo.isolation)
            for chunk in iter_isolated(
                spec.load_tables, landed.path, ctx, limits=ctx.limits, batch=1
            ):
                table = chunk.table
                if key_filter is not None:
                    key_filter.add(table)
                n = table.num_rows
                batch = {
                    "batch_id": constant(batch_id, n, pa.int64()),
                    "file_sha256": constant(landed.sha256, n, pa.string()),
                    "row_number": table.column("row_number"),
                    "feed_id": constant(feed_id, n, pa.string()),
                }
                arrays = [batch[c] if c in batch else table.column(c) for c in names]
                block = pa.Table.from_arrays(arrays, names=list(names))
                if not binary:
                    yield chunk, copy_csv(block)
                    continue
                data, rest = _pgbinary.encode(block, types, zone)
                if rest.num_rows:
                    leftovers.write(copy_csv(rest))
                yield chunk, data

        with (
            conn.cursor() as cur,
            cur.copy(
                f"copy {spec.raw_table} ({columns}) from stdin"
                f" with (format {'binary' if binary else 'csv'})"
            ) as copy,
        ):
            if binary:
                copy.write(_pgbinary.SIGNATURE)
            for chunk, data in _in_background(encoded()):
                if data:
                    copy.write(data)
                copied.loaded += chunk.table.num_rows
                copied.rejections.extend(chunk.rejections)
                copied.rejected_rows.update(r.row for r in chunk.rejections)
                copied.add_out_of_scope(chunk.out_of_scope)
                copied.read += chunk.records
                copied.add_periods(chunk.periods, chunk.first_period, chunk.last_period)
                if on_progress:
                    on_progress(copied.read)
            if binary:
                copy.write(_pgbinary.TRAILER)
        if leftovers.tell():
            leftovers.seek(0)
            with (
                conn.cursor() as cur,
                cur.copy(f"copy {spec.raw_table} ({columns}) from stdin with (format csv)") as copy,
            ):
                while data := leftovers.read(1 << 20):
                    copy.write(data)
        if key_filter is not None:
            copied.key_candidates = key_filter.repeated_keys()
    return copied


T = TypeVar("T")


def _in_background(items: Iterator[T], ahead: int = 6) -> Iterator[T]:
    """Iterate `items` in a thread, at most `ahead` items ahead of the consumer (memory stays
    bounded; a few blocks of slack keep the server fed when the thread is briefly descheduled on
    a busy machine); its exceptions are raised here. If the consumer stops early, it stops too."""
    handoff: queue.Queue = queue.Queue(maxsize=ahead)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                handoff.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close:
                close()

    worker = threading.Thread(target=produce, name="knowdo-load-blocks", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


def _reject_duplicate_keys(
    conn: psycopg.Connection, spec, batch_id: int, sha256: str, candidates: set[tuple] | None = None
) -> set[int]:
    """Move every repeat of a key within this batch from raw to ops.rejected_rows (the first
    occurrence stays). Done in SQL after COPY so memory stays flat however large the file.

    `candidates` (from the vectorised path's key filter) are the only keys that may repeat: the
    check then looks at their rows alone, and costs nothing when there are none. None: all keys."""
    from psycopg import sql

    if candidates is not None and not candidates:
        return set()
    table = sql.Identifier(*spec.raw_table.split("."))
    keys = sql.SQL(", ").join(sql.Identifier(c) for c in spec.key_columns)
    restrict = sql.SQL("")
    params = {
        "batch": batch_id,
        "sha": sha256,
        "field": spec.key_columns[0],
        "what": spec.key_description or ", ".join(spec.key_columns),
    }
    if candidates is not None:
        # the candidate keys as one text array per key column (the loader may not create
        # temporary tables); NULL-safe match, and the coalesce equality lets PostgreSQL hash them
        names = [f"k{i}" for i in range(len(spec.key_columns))]
        for i, name in enumerate(names):
            params[name] = [None if key[i] is None else str(key[i]) for key in candidates]
        match = sql.SQL(" and ").join(
            sql.SQL(
                "coalesce(c.{n}, '') = coalesce(t.{k}::text, '')"
                " and c.{n} is not distinct from t.{k}::text"
            ).format(n=sql.Identifier(n), k=sql.Identifier(c))
            for n, c in zip(names, spec.key_columns)
        )
        restrict = sql.SQL(
            " and exists (select 1 from unnest({arrays}) as c({names}) where {match})"
        ).format(
            arrays=sql.SQL(", ").join(
                sql.SQL("{}::text[]").format(sql.Placeholder(n)) for n in names
            ),
            names=sql.SQL(", ").join(sql.Identifier(n) for n in names),
            match=match,
        )
    rows = conn.execute(
        sql.SQL(
            """
            with ranked as (
                select ctid as rid, row_number,
                       min(row_number) over (partition by {keys}) as first_row
                from {table} t where batch_id = %(batch)s {restrict}
            ),
            removed as (
                delete from {table} t using ranked
                where t.batch_id = %(batch)s and t.ctid = ranked.rid
                  and ranked.row_number > ranked.first_row
                returning ranked.row_number, ranked.first_row
            )
            insert into ops.rejected_rows (batch_id, file_sha256, row_number, field, value, reason)
            select %(batch)s, %(sha)s, row_number, %(field)s, null,
                   'duplicate key: the same ' || %(what)s || ' appear earlier in this file (row '
                   || first_row || ')'
            from removed
            returning row_number
            """
        ).format(keys=keys, table=table, restrict=restrict),
        params,
    ).fetchall()
    return {r[0] for r in rows}


def _supersede_earlier(
    conn: psycopg.Connection, feed_id: str, batch_id: int, periods: list[str]
) -> list[int]:
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
