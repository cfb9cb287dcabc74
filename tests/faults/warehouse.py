"""The warehouse side of the fault tests: the clean-run fingerprint, and taking one file back out of
the warehouse so that a fault can hit its (re)load."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.conftest import REPO


@dataclass(frozen=True)
class SampleFile:
    feed_id: str
    path: Path
    sha256: str
    raw_table: str


def sample_file(settings, feed_id: str, name: str | None = None) -> SampleFile:
    """The sample inbox's file `name` for `feed_id` (its only file when `name` is None)."""
    from knowdo.formats import FORMATS
    from knowdo.landing import sha256_of
    from knowdo.registry import load_registry
    from knowdo.sources import waiting_files

    feed = load_registry(settings.feeds_file)[feed_id]
    files = waiting_files(feed, settings.inbox_dir, settings.local_dir / "downloads")
    if name is not None:
        files = [p for p in files if p.name == name]
    assert len(files) == 1, (
        f"{feed_id}: expected one sample file{f' named {name}' if name else ''}, found {files}"
    )
    return SampleFile(feed_id, files[0], sha256_of(files[0]), FORMATS[feed.format].raw_table)


def forget(conn: psycopg.Connection, f: SampleFile) -> None:
    """Take the file back out, as if it had never been received: its raw rows, rejected rows, batch,
    landing record and landed copy. Refuses a file whose batch superseded another (taking it out
    would not restore the warehouse before it)."""
    with conn.transaction():
        batches = [
            b
            for (b,) in conn.execute(
                "select batch_id from ops.load_batches where feed_id = %s and file_sha256 = %s",
                (f.feed_id, f.sha256),
            )
        ]
        if batches:
            (superseding,) = conn.execute(
                "select count(*) from ops.load_batches where superseded_by = any(%s)", (batches,)
            ).fetchone()
            assert superseding == 0, (
                f"{f.path.name}: its batch superseded others; pick another file"
            )
        schema, table = f.raw_table.split(".")
        conn.execute(
            psycopg.sql.SQL("delete from {} where file_sha256 = %s").format(
                psycopg.sql.Identifier(schema, table)
            ),
            (f.sha256,),
        )
        conn.execute("delete from ops.rejected_rows where batch_id = any(%s)", (batches,))
        conn.execute("delete from ops.load_batches where batch_id = any(%s)", (batches,))
        landed = conn.execute(
            "delete from ops.landed_files where file_sha256 = %s returning landing_path",
            (f.sha256,),
        ).fetchall()
    for (path,) in landed:
        Path(path).unlink(missing_ok=True)


def batches_of(conn: psycopg.Connection, f: SampleFile) -> list[tuple]:
    return conn.execute(
        "select batch_id, status, rows_loaded, error from ops.load_batches"
        " where feed_id = %s and file_sha256 = %s",
        (f.feed_id, f.sha256),
    ).fetchall()


def raw_rows_of(conn: psycopg.Connection, f: SampleFile) -> int:
    schema, table = f.raw_table.split(".")
    return conn.execute(
        psycopg.sql.SQL("select count(*) from {} where file_sha256 = %s").format(
            psycopg.sql.Identifier(schema, table)
        ),
        (f.sha256,),
    ).fetchone()[0]


def knowdo_ingest(f: SampleFile, *prefix: str, timeout: float = 120, **popen) -> subprocess.Popen:
    """`knowdo ingest FILE --feed ID` as a user runs it (its own process)."""
    return subprocess.Popen(
        [
            *prefix,
            str(REPO / ".venv" / "bin" / "knowdo"),
            "ingest",
            str(f.path),
            "--feed",
            f.feed_id,
        ],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )
