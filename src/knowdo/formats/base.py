"""The types every feed format shares: what a parser yields, what it is given, how it is declared.

A parser is a generator of `Row`, `Rejection` and `OutOfScope` objects; it raises `FileRejected`
when the file as a whole cannot be read as its declared format. This module imports nothing of
KnowDo's but its settings, so every format (and the loader) can import it without a cycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from knowdo.config import Limits


class FileRejected(Exception):
    """The whole file cannot be read as the declared format; the message is one plain sentence."""


class FastPathUnavailable(Exception):
    """A vectorised loader path cannot read this file exactly as the row parser would (an encoding
    it does not handle, a record with more or fewer cells than the header, ...): the loader
    discards whatever the attempt wrote and loads the file with `parse` instead."""


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str | None
    value: str | None
    reason: str


@dataclass(frozen=True)
class OutOfScope:
    """A record the feed does not take: well formed, but some of its ids are outside the feed's
    mapping (a ministry's DHIS2 export spans every programme). Neither loaded nor rejected: counted
    per id (`ids`: (kind, id) pairs such as ("data_element", "fbfJHSPpUQD"))."""

    row: int
    ids: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Row:
    row: int
    values: tuple  # in the order of FormatSpec.columns
    period: str | None = None  # the reporting period the row belongs to (for resend supersession)
    period_start: date | None = None  # its first day, when the format says (for feed health)


@dataclass(frozen=True)
class ParseContext:
    """What a parser knows besides the file: the feed's registry mapping and options."""

    mapping: dict[str, Any] = field(default_factory=dict)
    # per-feed reading options from the registry, e.g. {"encoding": "latin-1", "delimiter": ";"}
    options: dict[str, Any] = field(default_factory=dict)
    # "now" for plausibility checks (future periods); the day the file was received
    today: date = field(default_factory=date.today)
    feed_id: str | None = None
    file_name: str | None = (
        None  # the name the file was received under (landing copies are hash-named)
    )
    # The loader finds duplicate keys in the database after COPY (memory stays flat in file size);
    # `knowdo check`, which has no database, finds them in memory.
    defer_duplicate_check: bool = False
    limits: Limits = field(default_factory=Limits.from_env)  # issue 13: bounds (KNOWDO_MAX_*)


@dataclass
class TableChunk:
    """A block of a file parsed at once by a format's vectorised loader path (`load_tables`).

    `table` is a pyarrow Table: `row_number` (int64), then the spec's columns in order, already
    in the text PostgreSQL parses (numbers as decimal text, timestamps in ISO form)."""

    table: Any
    rejections: list[Rejection]
    records: int  # data records in this block (loaded or rejected; blank lines are not records)
    periods: set[str]  # the reporting periods of the loaded rows
    first_period: date | None = None
    last_period: date | None = None
    out_of_scope: list[OutOfScope] = field(default_factory=list)  # neither loaded nor rejected


ParseFn = Callable[[Path, ParseContext], Iterator[Row | Rejection | OutOfScope]]
TablesFn = Callable[[Path, ParseContext], Iterator[TableChunk]]
SniffFn = Callable[[str], bool]


@dataclass(frozen=True)
class FormatSpec:
    name: str
    raw_table: str  # schema-qualified
    columns: tuple[
        str, ...
    ]  # raw columns filled by the parser (batch columns are added by the loader)
    parse: ParseFn
    description: str
    # True when the decoded first few KB of a file look like this format (for `knowdo check`
    # without --format); formats that cannot be told apart by content leave it None.
    sniff: SniffFn | None = None
    # when the publisher says it completed the file (e.g. DHIS2 completeDate), read cheaply
    submitted_at: Callable[[Path], datetime | None] | None = None
    # raw columns that identify a value within one file; a repeat is a duplicate-key rejection
    key_columns: tuple[str, ...] = ()
    key_description: str = ""  # how a submitter would name that key, for the rejection reason
    # Optional vectorised path for the loader only (`knowdo check` always runs `parse`): yields
    # blocks with exactly the rows and rejections `parse` would give, or raises
    # FastPathUnavailable for a file it cannot read exactly as `parse` does.
    load_tables: TablesFn | None = None


class DuplicateKeys:
    """Within-file duplicate detection for `knowdo check`: remembers an 8-byte digest per key.

    When the context defers the check to the loader (which does it in SQL), it never reports.
    """

    def __init__(self, ctx: ParseContext) -> None:
        self.active = not ctx.defer_duplicate_check
        self._first: dict[int, int] = {}

    def earlier_row(self, key: tuple, row: int) -> int | None:
        if not self.active:
            return None
        digest = int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")
        first = self._first.setdefault(digest, row)
        return first if first != row else None
