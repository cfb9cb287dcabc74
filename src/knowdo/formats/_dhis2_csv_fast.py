"""DHIS2 dataValueSets CSV for the loader, a block of records at a time (pyarrow).

The rows and rejections are exactly those of `dhis2_csv.parse_csv`, whose semantics stay defined by
`dhis2.map_value`: a record is loaded here without Python only when it is *certainly* valid (ids in
the mapping, a known period not in the future, a plain count >= 0); every other record goes through
`map_value` itself, so its rejections (field, value, reason, several per record) are the row
parser's. Anything pyarrow reads differently from Python's csv module (a record with more or fewer
cells than the header, undecodable bytes, NUL bytes, another declared encoding) raises
FastPathUnavailable and the loader parses the file with `parse_csv` instead.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from knowdo.formats import FastPathUnavailable, FileRejected, ParseContext, Rejection, TableChunk
from knowdo.formats._arrow import stripped
from knowdo.formats._csv import encoding_of
from knowdo.formats.dhis2 import COLUMNS, map_value
from knowdo.formats.dhis2_csv import _header_names, read_header
from knowdo.periods import parse_dhis2_period

BLOCK_BYTES = 1 << 20  # ~11,000 records of a typical export; larger blocks cost memory, not time

SCHEMA = pa.schema(
    [("row_number", pa.int64())]
    + [(name, pa.date32() if name == "period_start" else pa.bool_() if name == "deleted"
        else pa.string()) for name in COLUMNS]
)
# A count map_value certainly accepts once its commas are gone: ASCII digits, an optional fraction
# (Decimal also takes '+5', '1.', '.5', '1e3' or other scripts' digits: those take the exact path).
_PLAIN_COUNT = r"^[0-9]+(\.[0-9]+)?$"
_TRUE = pa.array(["true", "1", "yes"])  # dhis2._as_bool


class _NoNulBytes:
    """The file for pyarrow, refusing NUL bytes (Python's csv module and PostgreSQL text do not
    take them the way pyarrow does)."""

    def __init__(self, path: Path) -> None:
        self._fh = path.open("rb")
        self.closed = False

    def read(self, size: int = -1) -> bytes:
        block = self._fh.read(size)
        if b"\x00" in block:
            raise OSError("NUL byte in the file")
        return block

    def close(self) -> None:
        self._fh.close()
        self.closed = True


class _Lookups:
    """The feed's mapping as arrow arrays, built once per file. Only entries map_value would use as
    they are (string ids, string codes) are here; a record using any other goes the exact path."""

    def __init__(self, mapping: Mapping[str, Any]) -> None:
        def strings(table: Any) -> tuple[pa.Array, pa.Array]:
            if not isinstance(table, Mapping):
                raise FastPathUnavailable("the feed's mapping is not a table of ids")
            pairs = [(k, v) for k, v in table.items() if isinstance(k, str) and isinstance(v, str)]
            return pa.array([k for k, _ in pairs], pa.string()), pa.array([v for _, v in pairs],
                                                                          pa.string())

        self.data_elements = strings(mapping.get("data_elements", {}))
        self.org_units = strings(mapping.get("org_units", {}))
        combos = mapping.get("category_option_combos", {})
        if not isinstance(combos, Mapping):
            raise FastPathUnavailable("the feed's category_option_combos mapping is not a table")
        self.check_combos = bool(combos)
        usable = {k: (v or {}) for k, v in combos.items()
                  if isinstance(k, str) and (v is None or isinstance(v, Mapping))}
        usable = {k: v for k, v in usable.items()
                  if all(v.get(f) is None or isinstance(v.get(f), str) for f in ("sex", "age_band"))}
        self.combos = pa.array(list(usable), pa.string())
        self.sexes = pa.array([v.get("sex") for v in usable.values()], pa.string())
        self.age_bands = pa.array([v.get("age_band") for v in usable.values()], pa.string())


def _header_fields(path: Path, ctx: ParseContext, delimiter: str) -> tuple[int, dict[str, int]]:
    """(cells per record, {dataValue key: cell position}) as `parse_csv` reads the header."""
    try:
        names = _header_names(path, ctx)
    except FileRejected:
        raise FastPathUnavailable("the header is rejected: the row parser says why") from None
    header = read_header(path, ctx, delimiter)
    if not header or not names or any("\n" in c or "\r" in c for c in header):
        raise FastPathUnavailable("no header pyarrow can skip as one line")
    position = {name: i for i, name in enumerate(header)}  # a repeated name: the last cell wins
    fields: dict[str, int] = {}
    for name, key in names.items():  # two names for one key: the later name wins, as in parse_csv
        fields[key] = position[name]
    return len(header), fields


def _open(path: Path, ctx: ParseContext) -> tuple[pv.CSVStreamingReader, _NoNulBytes, dict[str, int]]:
    if encoding_of(ctx) != "utf-8-sig":
        raise FastPathUnavailable("a declared encoding other than UTF-8")
    delimiter = ctx.options.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\"\r\n":
        raise FastPathUnavailable("a delimiter pyarrow cannot take")
    with path.open("rb") as fh:
        if b"\x00" in fh.read(4096):
            raise FastPathUnavailable("binary content")
    width, fields = _header_fields(path, ctx, delimiter)
    names = [f"c{i}" for i in range(width)]
    source = _NoNulBytes(path)
    try:
        reader = pv.open_csv(
            source,
            read_options=pv.ReadOptions(column_names=names, skip_rows=1, block_size=BLOCK_BYTES,
                                          use_threads=False),
            parse_options=pv.ParseOptions(delimiter=delimiter, quote_char='"', double_quote=True,
                                          escape_char=False, newlines_in_values=True,
                                          ignore_empty_lines=True),
            convert_options=pv.ConvertOptions(column_types={n: pa.string() for n in names},
                                              strings_can_be_null=False,
                                              quoted_strings_can_be_null=False, check_utf8=True),
        )
    except (pa.ArrowException, OSError) as exc:
        source.close()
        raise FastPathUnavailable(f"pyarrow cannot read it as the row parser does: {exc}") from None
    return reader, source, fields


def load_tables(path: Path, ctx: ParseContext) -> Iterator[TableChunk]:
    """The file's records a block at a time; see the module docstring."""
    lookups = _Lookups(ctx.mapping)
    reader, source, fields = _open(path, ctx)
    numbered = 0
    try:
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except (pa.ArrowException, OSError) as exc:
                raise FastPathUnavailable(
                    f"pyarrow cannot read it as the row parser does: {exc}") from None
            if _longest_cell(batch) > ctx.limits.max_field_chars:  # issue 13: bounds
                raise FastPathUnavailable("a value over KNOWDO_MAX_FIELD_CHARS: the row parser "
                                          "rejects its row")
            chunk = _block(batch, numbered, fields, lookups, ctx)
            numbered += chunk.records
            if chunk.records:
                yield chunk
    finally:
        source.close()


def _longest_cell(batch: pa.RecordBatch) -> int:
    """The longest cell of a block in bytes (at least its length in characters)."""
    return max((pc.max(pc.binary_length(column)).as_py() or 0 for column in batch.columns),
               default=0)


def _per_distinct(cells: pa.Array, convert, type_: pa.DataType) -> pa.Array:
    """`convert` applied once per distinct value (a block holds few periods) and spread back."""
    encoded = pc.dictionary_encode(cells)
    converted = pa.array([convert(v) for v in encoded.dictionary.to_pylist()], type_)
    return pc.take(converted, encoded.indices)


def _period(text: str) -> tuple[date, str] | None:
    try:
        return parse_dhis2_period(text)
    except ValueError:
        return None


def _timestamp(text: str) -> str | None:
    """dhis2._parse_timestamp, as the text PostgreSQL reads: None when Python cannot read it."""
    try:
        return datetime.fromisoformat(text).isoformat(sep=" ")
    except ValueError:
        return None


def _block(batch: pa.RecordBatch, numbered: int, fields: dict[str, int], lookups: _Lookups,
           ctx: ParseContext) -> TableChunk:
    cells = [stripped(column) for column in batch.columns]
    # a record whose cells are all blank is a blank line: skipped and not numbered
    present = pc.is_valid(cells[0])
    for column in cells[1:]:
        present = pc.or_(present, pc.is_valid(column))
    count = pc.sum(present).as_py() or 0
    if count < batch.num_rows:
        cells = [pc.filter(column, present) for column in cells]
    rows = pa.array(np.arange(numbered + 1, numbered + count + 1, dtype=np.int64))
    absent = pa.nulls(count, pa.string())

    def field(key: str) -> pa.Array:
        return cells[fields[key]] if key in fields else absent

    element, org_unit, combo = field("dataElement"), field("orgUnit"), field("categoryOptionCombo")
    indicator = pc.take(lookups.data_elements[1],
                        pc.index_in(element, value_set=lookups.data_elements[0]))
    geography = pc.take(lookups.org_units[1], pc.index_in(org_unit, value_set=lookups.org_units[0]))
    certain = pc.and_(pc.is_valid(indicator), pc.is_valid(geography))
    if lookups.check_combos:
        combo_at = pc.index_in(combo, value_set=lookups.combos)
        sex, age_band = pc.take(lookups.sexes, combo_at), pc.take(lookups.age_bands, combo_at)
        certain = pc.and_(certain, pc.is_valid(combo_at))
    else:
        sex = age_band = absent

    period = field("period")
    today = ctx.today
    parsed = pc.dictionary_encode(period)
    periods = [_period(p) for p in parsed.dictionary.to_pylist()]
    period_start = pc.take(pa.array([p[0] if p else None for p in periods], pa.date32()),
                           parsed.indices)
    period_type = pc.take(pa.array([p[1] if p else None for p in periods], pa.string()),
                          parsed.indices)
    in_time = pc.take(pa.array([bool(p) and p[0] <= today for p in periods], pa.bool_()),
                      parsed.indices)
    certain = pc.and_(certain, pc.fill_null(in_time, False))

    value = pc.replace_substring(field("value"), ",", "")
    certain = pc.and_(certain, pc.fill_null(pc.match_substring_regex(value, _PLAIN_COUNT), False))
    certain = pc.fill_null(certain, False)

    deleted = pc.fill_null(pc.is_in(pc.utf8_lower(field("deleted")), value_set=_TRUE), False)
    stamp = pc.coalesce(field("lastUpdated"), field("created"))
    last_updated = _per_distinct(stamp, lambda t: t and _timestamp(t), pa.string())

    columns = {
        "row_number": rows, "data_element": element, "period": period, "org_unit": org_unit,
        "category_option_combo": combo, "attribute_option_combo": field("attributeOptionCombo"),
        "value": value, "deleted": deleted, "stored_by": field("storedBy"),
        "last_updated": last_updated, "comment": field("comment"), "indicator_code": indicator,
        "geography_code": geography, "sex_code": sex, "age_band_code": age_band,
        "period_start": period_start, "period_type": period_type,
    }
    table = pa.Table.from_arrays([columns[n] for n in SCHEMA.names], schema=SCHEMA)
    rejections: list[Rejection] = []
    certain_count = pc.sum(certain).as_py() or 0
    if certain_count < count:
        loaded = table.filter(certain)
        exact, rejections = _exact(pc.indices_nonzero(pc.invert(certain)), rows, fields, cells, ctx)
        table = pa.concat_tables([loaded, exact]) if exact.num_rows else loaded
    first = last = None
    if table.num_rows:
        bounds = pc.min_max(table.column("period_start"))
        first, last = bounds["min"].as_py(), bounds["max"].as_py()
    return TableChunk(table=table, rejections=rejections, records=count,
                      periods=set(pc.unique(table.column("period")).to_pylist()),
                      first_period=first, last_period=last)


def _exact(positions: pa.Array, rows: pa.Array, fields: dict[str, int], cells: list[pa.Array],
           ctx: ParseContext) -> tuple[pa.Table, list[Rejection]]:
    """The records not certainly valid, through map_value exactly as parse_csv hands them over."""
    numbers = pc.take(rows, positions).to_pylist()
    texts = {key: pc.take(cells[i], positions).to_pylist() for key, i in fields.items()}
    loaded: list[tuple] = []
    rejections: list[Rejection] = []
    for j, number in enumerate(numbers):
        item = {key: values[j] for key, values in texts.items()}
        result = map_value(item, number, ctx.mapping, ctx.today)
        if isinstance(result, list):
            rejections.extend(result)
        else:
            loaded.append((number, *result.values))
    return _as_table(loaded), rejections


def _as_table(rows: list[tuple]) -> pa.Table:
    """map_value's rows in SCHEMA's types, as the row loader would have sent them as text."""
    columns = list(zip(*rows)) if rows else [() for _ in SCHEMA.names]
    arrays = []
    for name, values in zip(SCHEMA.names, columns):
        if name == "last_updated":
            values = [None if v is None else v.isoformat(sep=" ") for v in values]
        elif SCHEMA.field(name).type == pa.string():
            values = [None if v is None else str(v) for v in values]
        arrays.append(pa.array(values, SCHEMA.field(name).type))
    return pa.Table.from_arrays(arrays, schema=SCHEMA)
