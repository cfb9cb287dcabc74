"""Bounds every parser works within (issue 13): no file can make a parser hurt the platform.

- `guarded_json`: a file object for ijson that checks each block *before* ijson sees it: nesting
  depth, number length and token length (yajl's C backend grows memory with the square of the
  depth and crashes on a 5 MB number; it must never see such a document).
- `bounded_parse`: wraps every format's row parser: a compressed file fails before any parsing (no
  decompression, so no decompression bomb), and a row with a value over `max_field_chars` becomes
  a rejection naming the column and the limit (the rest of the file loads).

The memory ceiling that catches whatever gets past these bounds is in `knowdo.isolation`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO, Self

from knowdo.config import Limits
from knowdo.formats.base import FileRejected, ParseContext, ParseFn, Rejection, Row

# ---- JSON ------------------------------------------------------------------------------------

_NUMBER_CHARS = b"-+0123456789.eE"
_NUMBERS_AS_1 = bytes(0x31 if b in _NUMBER_CHARS else 0x30 for b in range(256))
_SLICE = 1 << 20  # the guard works on at most this much at once (bounded memory for read(-1))


class JsonTooDeep(FileRejected):
    pass


class GuardedJson:
    """Wraps a binary file: `read` returns the same bytes, after checking them (see module doc).

    Vectorised with numpy, a block at a time: quotes not escaped by an odd run of backslashes
    open and close strings (the state goes on across blocks), and only brackets, number
    characters and string lengths outside/inside strings as JSON defines them are counted, so text
    such as "[[[" never counts. Linear in the file's size, a small fraction of ijson's own time."""

    def __init__(self, fh: BinaryIO, limits: Limits | None = None) -> None:
        import numpy as np

        self._np = np
        self._fh = fh
        self.limits = limits or Limits.from_env()
        self.depth = 0
        self.offset = 0  # bytes of the file checked so far
        self._in_string = False
        self._string = 0  # bytes of the string the last block ended in
        self._backslashes = 0  # backslashes at the end of the last block
        self._run = 0  # number characters at the end of the last block (outside strings)
        lut = np.zeros(256, dtype=bool)
        lut[list(_NUMBER_CHARS)] = True
        self._number_lut = lut
        steps = np.zeros(256, dtype=np.int8)
        steps[[ord("["), ord("{")]] = 1
        steps[[ord("]"), ord("}")]] = -1
        self._steps = steps

    # only read() and close(): anything else (readinto, peek, ...) would hand ijson unchecked bytes

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(size)
        for at in range(0, len(block), _SLICE):
            self.check(block[at : at + _SLICE])
        return block

    def check(self, block: bytes) -> None:
        np = self._np
        start, n = self.offset, len(block)
        self.offset += n
        if not n:
            return
        data = np.frombuffer(block, dtype=np.uint8)
        quotes = np.flatnonzero(data == ord('"'))
        if len(quotes) and (self._backslashes or b"\\" in block):
            quotes = self._unescaped(block, quotes)
        trailing = self._trailing_backslashes(block)  # a run may go on from the last block
        self._backslashes = trailing + (self._backslashes if trailing == n else 0)
        was_in_string = self._in_string
        self._check_strings(quotes, n, start)
        # brackets count only outside strings: an even number of quotes before them (counting
        # the string the block began in)
        steps = self._steps[data]
        brackets = np.flatnonzero(steps)
        if len(brackets):
            outside = ((np.searchsorted(quotes, brackets) + was_in_string) & 1) == 0
            levels = np.cumsum(steps[brackets[outside]], dtype=np.int64)
            if len(levels):
                if self.depth + int(levels.max()) > self.limits.max_json_depth:
                    raise JsonTooDeep(
                        f"JSON nested deeper than {self.limits.max_json_depth} levels in the "
                        f"block at byte {start:,} (the KNOWDO_MAX_JSON_DEPTH bound): no feed "
                        "format nests that deep"
                    )
                self.depth += int(levels[-1])
        self._check_numbers(block, data, quotes, was_in_string, start)

    def _unescaped(self, block: bytes, quotes):
        """The quote positions not escaped by an odd run of backslashes before them."""
        np = self._np
        keep = np.ones(len(quotes), dtype=bool)
        data = np.frombuffer(block, dtype=np.uint8)
        after_slash = np.flatnonzero(data[np.maximum(quotes - 1, 0)] == ord("\\"))
        if self._backslashes and quotes[0] == 0:
            after_slash = np.union1d(after_slash, [0])
        for i in after_slash.tolist():
            at = int(quotes[i])
            stop = at
            while stop > 0 and block[stop - 1] == 0x5C:
                stop -= 1
            run = at - stop + (self._backslashes if stop == 0 else 0)
            keep[i] = run % 2 == 0
        return quotes[keep]

    @staticmethod
    def _trailing_backslashes(block: bytes) -> int:
        return len(block) - len(block.rstrip(b"\\"))

    def _check_strings(self, quotes, n: int, start: int) -> None:
        """Follow string lengths: `quotes` are the block's unescaped quote positions."""
        limit = self.limits.max_record_bytes
        if not len(quotes):
            if self._in_string:
                self._string += n
        else:
            if self._in_string:  # the string the last block ended in closes here
                self._string += int(quotes[0])
                if self._string > limit:
                    raise self._too_long(start + n, limit)
            if n > limit:  # a block large enough to hold a long string whole
                first = 1 if self._in_string else 0
                opens, closes = quotes[first::2], quotes[first + 1 :: 2]
                if len(closes) and int((closes - opens[: len(closes)]).max()) > limit:
                    raise self._too_long(start + n, limit)
            self._in_string = (len(quotes) + self._in_string) % 2 == 1
            self._string = n - int(quotes[-1]) - 1 if self._in_string else 0
        if self._string > limit:
            raise self._too_long(start + n, limit)

    @staticmethod
    def _too_long(end: int, limit: int) -> FileRejected:
        return FileRejected(
            f"a JSON string ending before byte {end:,} is longer than {limit:,} "
            "bytes (the KNOWDO_MAX_RECORD_BYTES bound)"
        )

    def _check_numbers(self, block: bytes, data, quotes, was_in_string: bool, start: int) -> None:
        """No run of number characters outside strings longer than the bound. The raw block is
        searched first (digits in strings count there too, so it can only over-report); only a
        block where that finds a long run is looked at exactly."""
        np = self._np
        limit = self.limits.max_json_number_chars
        lead = len(block) - len(block.lstrip(_NUMBER_CHARS))
        if self._run + lead <= limit and b"1" * (limit + 1) not in block.translate(_NUMBERS_AS_1):
            trail = len(block) - len(block.rstrip(_NUMBER_CHARS))
            self._run = self._run + lead if lead == len(block) else trail
            return
        inside = np.zeros(len(block) + 1, dtype=np.int8)
        np.add.at(inside, quotes, 1)
        inside = ((np.cumsum(inside[:-1]) + was_in_string) & 1).astype(bool)
        inside[quotes] = True
        numeric = self._number_lut[data] & ~inside
        edges = np.flatnonzero(np.diff(np.concatenate(([0], numeric.astype(np.int8), [0]))))
        if not len(edges):
            self._run = 0
            return
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        if starts[0] == 0:
            lengths[0] += self._run
        if int(lengths.max()) > limit:
            raise FileRejected(
                f"a JSON number near byte {start:,} has more than {limit} characters (the "
                "KNOWDO_MAX_JSON_NUMBER_CHARS bound): no data value is that long"
            )
        self._run = int(lengths[-1]) if ends[-1] == len(block) else 0


def guarded_json(path: Path, limits: Limits | None = None) -> GuardedJson:
    """Open a JSON file for ijson, past a UTF-8 byte-order mark, behind the guard."""
    fh = path.open("rb")
    if fh.read(3) != b"\xef\xbb\xbf":
        fh.seek(0)
    return GuardedJson(fh, limits)


# ---- every format ----------------------------------------------------------------------------

_ARCHIVES = (
    (b"PK\x03\x04", "a zip archive"),
    (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"BZh", "a bzip2 file"),
    (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"(\xb5/\xfd", "a zstd file"),
)


def compressed_kind(path: Path) -> str | None:
    """What kind of compressed file `path` is, from its first bytes; None for anything else."""
    with path.open("rb") as fh:
        head = fh.read(8)
    return next((kind for magic, kind in _ARCHIVES if head.startswith(magic)), None)


_SURROGATE = re.compile("[\ud800-\udfff]")


def oversized(values: tuple, columns: tuple[str, ...], limit: int) -> tuple[str, str] | None:
    """(column, value) of the first text value longer than `limit` characters, else None."""
    for column, value in zip(columns, values):
        if isinstance(value, str) and len(value) > limit:
            return column, value
    return None


def not_text(values: tuple, columns: tuple[str, ...]) -> tuple[str, str] | None:
    """(column, value) of the first value holding a lone UTF-16 surrogate (JSON's "\\ud800"
    escapes decode to one; PostgreSQL cannot store it), else None. ASCII values cost nothing."""
    for column, value in zip(columns, values):
        if isinstance(value, str) and not value.isascii() and _SURROGATE.search(value):
            return column, value
    return None


def bounded_parse(parse: ParseFn, columns: tuple[str, ...], json: bool = False) -> ParseFn:
    """A format's parser within the bounds (see module doc); its rows are otherwise unchanged."""

    def parse_bounded(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
        kind = compressed_kind(path)
        if kind:
            raise FileRejected(
                f"this is {kind}: KnowDo reads uncompressed files only (nothing was "
                "decompressed); send the file inside it"
            )
        try:
            yield from _within_bounds(parse(path, ctx), columns, ctx.limits.max_field_chars, json)
        except FileRejected as exc:  # one sentence (yajl appends the line and a caret under it)
            lines = str(exc).strip().splitlines()
            if len(lines) > 1:
                raise type(exc)(lines[0].strip()) from None
            raise

    parse_bounded.__wrapped__ = parse  # type: ignore[attr-defined]
    return parse_bounded


def _within_bounds(
    items: Iterator[Row | Rejection], columns: tuple[str, ...], limit: int, json: bool
) -> Iterator[Row | Rejection]:
    for item in items:
        if isinstance(item, Row) and (big := oversized(item.values, columns, limit)):
            column, value = big
            yield Rejection(
                item.row,
                column,
                value[:40] + "…",
                f"{column} is {len(value):,} characters long, over the limit of "
                f"{limit:,} (KNOWDO_MAX_FIELD_CHARS)",
            )
        elif json and isinstance(item, Row) and (bad := not_text(item.values, columns)):
            column, value = bad
            yield Rejection(
                item.row,
                column,
                value.encode("utf-8", "backslashreplace").decode("ascii", "replace")[:80],
                f"{column} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff "
                "without its pair), which is not text",
            )
        elif isinstance(item, Rejection) and item.value and len(item.value) > limit:
            yield replace(item, value=item.value[:40] + "…")  # never store a huge value
        else:
            yield item
