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
from knowdo.formats import FileRejected, ParseContext, ParseFn, Rejection, Row

# ---- JSON ------------------------------------------------------------------------------------

# From outside a string: any run of non-quote bytes or complete strings (possessive: no backtracking).
_OUTSIDE = re.compile(rb'(?:[^"]++|"(?:[^"\\]++|\\.)*+")*+', re.DOTALL)
_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)
_STRING_TEXT = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)  # a string's text, up to its quote
_NUMBER_CHARS = b"-+0123456789.eE"
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class JsonTooDeep(FileRejected):
    pass


class GuardedJson:
    """Wraps a binary file: `read` returns the same bytes, after checking them (see module doc).

    Strings are skipped exactly (escapes included, across blocks), so brackets inside text never
    count; a string longer than `max_record_bytes` fails the file. Linear in the file's size."""

    def __init__(self, fh: BinaryIO, limits: Limits | None = None) -> None:
        self._fh = fh
        self.limits = limits or Limits.from_env()
        self.depth = 0
        self.offset = 0  # bytes of the file checked so far
        self._string: int | None = None  # bytes of an unfinished string at the end of the last block
        self._escaped = False  # the last block ended inside a string on an unpaired backslash
        self._run = 0  # number characters at the end of the last block

    # only read() and close(): anything else (readinto, peek, ...) would hand ijson unchecked bytes

    def close(self) -> None:
        self._fh.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self._fh.close()

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(size)
        self.check(block)
        return block

    def check(self, block: bytes) -> None:
        start = self.offset
        self.offset += len(block)
        pos = 0
        if self._string is not None:  # go on with the string the last block ended in
            pos = self._in_string(block, 1 if self._escaped else 0, start)
            if pos is None:
                return
        end = _OUTSIDE.match(block, pos).end()
        if end < len(block):  # a string starts and does not end in this block
            self._string = 0
            self._in_string(block, end + 1, start)
        if end - pos > self.limits.max_record_bytes:  # a block large enough to hold a long string
            longest = max((len(m.group()) - 2 for m in _STRING.finditer(block, pos, end)), default=0)
            if longest > self.limits.max_record_bytes:
                raise FileRejected(
                    f"a JSON string in the block at byte {start:,} is longer than "
                    f"{self.limits.max_record_bytes:,} bytes (the KNOWDO_MAX_RECORD_BYTES bound)")
        outside = _STRING.sub(b'""', block[pos:end])
        self._check_numbers(outside, start)
        self._check_depth(outside.translate(None, _NOT_BRACKETS), start)

    def _in_string(self, block: bytes, pos: int, start: int) -> int | None:
        """Scan a string's text from `pos`: the position after its closing quote, or None when the
        block ends inside it."""
        self._escaped = False
        end = _STRING_TEXT.match(block, min(pos, len(block))).end()
        if end < len(block) and block[end:end + 1] == b'"':
            self._string = None
            return end + 1
        self._escaped = end < len(block)  # stopped on a backslash with nothing after it
        self._string += max(0, len(block) - pos)
        if self._string > self.limits.max_record_bytes:
            raise FileRejected(
                f"a JSON string ending after byte {start + len(block):,} is longer than "
                f"{self.limits.max_record_bytes:,} bytes (the KNOWDO_MAX_RECORD_BYTES bound)")
        return None

    def _check_numbers(self, outside: bytes, start: int) -> None:
        limit = self.limits.max_json_number_chars
        lead = len(outside) - len(outside.lstrip(_NUMBER_CHARS))
        longest = self._run + lead  # a number may go on from the last block
        if lead == len(outside):
            self._run = longest
        else:
            if longest <= limit and re.search(rb"[-+0-9.eE]{%d}" % (limit + 1), outside):
                longest = limit + 1
            self._run = len(outside) - len(outside.rstrip(_NUMBER_CHARS))
        if longest > limit:
            raise FileRejected(
                f"a JSON number near byte {start:,} has more than {limit} characters (the "
                "KNOWDO_MAX_JSON_NUMBER_CHARS bound): no data value is that long")

    def _check_depth(self, brackets: bytes, start: int) -> None:
        if not brackets:
            return
        limit = self.limits.max_json_depth
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self.depth + opens <= limit:  # cannot go past the bound within this block
            self.depth += 2 * opens - len(brackets)
            return
        import numpy as np

        steps = np.frombuffer(brackets, dtype=np.uint8)
        levels = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1)) + self.depth
        deepest = int(levels.max())
        if deepest > limit:
            raise JsonTooDeep(
                f"JSON nested deeper than {limit} levels in the block at byte {start:,} (the "
                "KNOWDO_MAX_JSON_DEPTH bound): no feed format nests that deep")
        self.depth = int(levels[-1])


def guarded_json(path: Path, limits: Limits | None = None) -> GuardedJson:
    """Open a JSON file for ijson, past a UTF-8 byte-order mark, behind the guard."""
    fh = path.open("rb")
    if fh.read(3) != b"\xef\xbb\xbf":
        fh.seek(0)
    return GuardedJson(fh, limits)


# ---- every format ----------------------------------------------------------------------------

_ARCHIVES = (
    (b"PK\x03\x04", "a zip archive"), (b"PK\x05\x06", "an empty zip archive"),
    (b"\x1f\x8b", "a gzip file"), (b"BZh", "a bzip2 file"), (b"\xfd7zXZ\x00", "an xz file"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"(\xb5/\xfd", "a zstd file"),
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
                "decompressed); send the file inside it")
        try:
            yield from _within_bounds(parse(path, ctx), columns, ctx.limits.max_field_chars, json)
        except FileRejected as exc:  # one sentence (yajl appends the line and a caret under it)
            lines = str(exc).strip().splitlines()
            if len(lines) > 1:
                raise type(exc)(lines[0].strip()) from None
            raise

    parse_bounded.__wrapped__ = parse  # type: ignore[attr-defined]
    return parse_bounded


def _within_bounds(items: Iterator[Row | Rejection], columns: tuple[str, ...], limit: int,
                   json: bool) -> Iterator[Row | Rejection]:
    for item in items:
        if isinstance(item, Row) and (big := oversized(item.values, columns, limit)):
            column, value = big
            yield Rejection(item.row, column, value[:40] + "…",
                            f"{column} is {len(value):,} characters long, over the limit of "
                            f"{limit:,} (KNOWDO_MAX_FIELD_CHARS)")
        elif json and isinstance(item, Row) and (bad := not_text(item.values, columns)):
            column, value = bad
            yield Rejection(item.row, column, value.encode("utf-8", "backslashreplace")
                            .decode("ascii", "replace")[:80],
                            f"{column} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff "
                            "without its pair), which is not text")
        elif isinstance(item, Rejection) and item.value and len(item.value) > limit:
            yield replace(item, value=item.value[:40] + "…")  # never store a huge value
        else:
            yield item
