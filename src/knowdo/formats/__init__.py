"""Feed formats: each turns one file into raw rows (or rejections) for one raw table.

A parser is a generator of `Row` and `Rejection` objects; it raises `FileRejected` when the file as a
whole cannot be read as its declared format. Parsers stream: memory stays flat in the file's size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any


class FileRejected(Exception):
    """The whole file cannot be read as the declared format; the message is one plain sentence."""


@dataclass(frozen=True)
class Rejection:
    row: int
    field: str | None
    value: str | None
    reason: str


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
    file_name: str | None = None  # the name the file was received under (landing copies are hash-named)
    # The loader finds duplicate keys in the database after COPY (memory stays flat in file size);
    # `knowdo check`, which has no database, finds them in memory.
    defer_duplicate_check: bool = False


ParseFn = Callable[[Path, ParseContext], Iterator[Row | Rejection]]
SniffFn = Callable[[str], bool]


@dataclass(frozen=True)
class FormatSpec:
    name: str
    raw_table: str  # schema-qualified
    columns: tuple[str, ...]  # raw columns filled by the parser (batch columns are added by the loader)
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
        import hashlib

        digest = int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "big")
        first = self._first.setdefault(digest, row)
        return first if first != row else None


def _registry() -> dict[str, FormatSpec]:
    """Every module of this package that defines FORMAT_SPECS contributes its formats."""
    import importlib
    import pkgutil

    specs: dict[str, FormatSpec] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for spec in getattr(module, "FORMAT_SPECS", ()):
            if spec.name in specs:
                raise RuntimeError(f"format {spec.name} defined twice")
            specs[spec.name] = spec
    return specs


FORMATS: dict[str, FormatSpec] = _registry()
