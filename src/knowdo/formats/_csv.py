"""Shared reading of delimited text feeds: encodings, headers, records.

Streaming: one record at a time (csv handles CRLF and quoted newlines). A file that is not in its
declared encoding, or whose header lacks required columns, raises FileRejected with one sentence.
What one cell's text means (numbers, dates, suppression markers) is in knowdo.cells.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

from knowdo.config import Limits
from knowdo.formats.base import FileRejected, ParseContext

csv.field_size_limit(Limits.from_env().max_record_bytes)  # issue 13: records() sets it per file


def encoding_of(ctx: ParseContext) -> str:
    """The feed's declared encoding (registry `options.encoding`), UTF-8 by default."""
    declared = str(ctx.options.get("encoding", "utf-8")).lower()
    try:
        name = codecs.lookup(declared).name
    except LookupError:
        raise FileRejected(f"the feed declares an unknown encoding '{declared}'") from None
    return "utf-8-sig" if name == "utf-8" else name  # utf-8-sig: a byte-order mark is dropped


class _Decoded:
    """Iterate lines of a text file, turning a decoding error into one clear FileRejected."""

    def __init__(
        self, fh: TextIO, encoding: str, path: Path | None = None, feed_id: str | None = None
    ) -> None:
        self.fh, self.encoding, self.line = fh, encoding, 0
        self.path, self.feed_id = path, feed_id  # issue 13: to name the likely encoding

    def __iter__(self):
        return self

    def __next__(self) -> str:
        try:
            text = next(self.fh)
        except UnicodeDecodeError as exc:
            if self.path is None:
                hint = (
                    "if the publisher sends another encoding, declare it in the registry "
                    "(options: {encoding: latin-1})"
                )
            else:  # issue 13: the likely encoding and the registry line to change
                from knowdo.formats._encoding import encoding_hint

                hint = encoding_hint(self.path, self.encoding, self.feed_id)
            raise FileRejected(
                f"not valid {self.encoding.replace('-sig', '')} text near line {self.line + 1} "
                f"(byte {exc.start} of that block): {hint}"
            ) from None
        self.line += 1
        return text


def records(
    path: Path, ctx: ParseContext, required: Iterable[str], delimiter: str | None = None
) -> Iterator[tuple[int, dict[str, str]]]:
    """(record number, {column: text}) for each data record; 1 is the first record after the header.

    Header names are matched after stripping spaces; `required` columns must all be present.
    A record with more cells than the header is yielded with key None holding the extra cells.
    """
    encoding = encoding_of(ctx)
    delimiter = delimiter or ctx.options.get("delimiter", ",")
    limits = ctx.limits  # issue 13: a field over max_record_bytes fails the file (one over
    csv.field_size_limit(limits.max_record_bytes)  # max_field_chars only its row: formats/_bounds)
    with path.open("rb") as raw:
        head = raw.read(4096)
        if b"\x00" in head and not encoding.startswith(("utf-16", "utf-32")):
            if head[:2] in (b"\xff\xfe", b"\xfe\xff"):  # issue 13: name the encoding
                raise FileRejected(
                    "UTF-16 text (it starts with a UTF-16 byte-order mark) but the feed declares "
                    f"{encoding.replace('-sig', '')}: ask the publisher for UTF-8, or declare "
                    "options: {encoding: utf-16} in the feed's registry entry"
                )
            raise FileRejected("binary content: this is not a text file")
    with path.open("r", encoding=encoding, newline="") as fh:
        lines = _Decoded(fh, encoding, path, ctx.feed_id)
        reader = csv.reader(lines, delimiter=delimiter, strict=False)
        try:
            header = next(reader)
        except StopIteration:
            raise FileRejected("the file is empty: a header row is expected") from None
        except csv.Error as exc:
            raise FileRejected(
                f"not readable as delimited text: {_csv_error(exc, limits)}"
            ) from None
        if len(header) > limits.max_columns:  # issue 13: bounds
            raise FileRejected(
                f"the header has {len(header):,} columns, over the limit of "
                f"{limits.max_columns:,} (KNOWDO_MAX_COLUMNS)"
            )
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise FileRejected(
                f"header mismatch: missing column(s) {', '.join(missing)}; the header has "
                f"{', '.join(header[:20])}{' ...' if len(header) > 20 else ''}"
            )
        width = len(header)
        number = 0
        try:
            for cells in reader:
                if not cells or all(not c.strip() for c in cells):
                    continue  # blank line
                number += 1
                record = dict(zip(header, cells))
                if len(cells) > width:
                    record[None] = cells[width:]
                elif len(cells) < width:
                    for column in header[len(cells) :]:
                        record.setdefault(column, None)
                yield number, record
        except csv.Error as exc:
            raise FileRejected(
                f"malformed delimited text after record {number}: {_csv_error(exc, limits)}"
            ) from None


def _csv_error(exc: csv.Error, limits: Limits) -> str:
    """csv's message, with the setting to name when it is the field size bound (issue 13)."""
    if "field larger than field limit" in str(exc):
        return (
            f"a field longer than {limits.max_record_bytes:,} characters (the "
            "KNOWDO_MAX_RECORD_BYTES bound)"
        )
    return str(exc)


def sniff_header(head: str, required: Iterable[str], delimiter: str = ",") -> bool:
    """True when the first line of `head` (decoded text) has every required column."""
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    cells = {c.strip().strip('"') for c in first.split(delimiter)}
    return all(c in cells for c in required)


def read_header(path: Path, ctx: ParseContext, delimiter: str = ",") -> list[str]:
    """The stripped header cells, or [] when the file has none that can be read (records() then
    raises the precise FileRejected: empty, binary, wrong encoding)."""
    try:
        with path.open("r", encoding=encoding_of(ctx), newline="") as fh:
            return [cell.strip() for cell in next(csv.reader(fh, delimiter=delimiter))]
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return []
