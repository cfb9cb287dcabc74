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

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

from knowdo.formats._arrow import stripped
from knowdo.formats._csv import encoding_of, read_header
from knowdo.formats._dhis2_csv_header import _header_names
from knowdo.formats.base import (
    FastPathUnavailable,
    FileRejected,
    OutOfScope,
    ParseContext,
    Rejection,
    TableChunk,
)
from knowdo.formats.dhis2 import COLUMNS, Dhis2Mapping, _id_problem, map_value, mapping_of
from knowdo.periods import Period, parse_period

BLOCK_BYTES = 1 << 20  # ~11,000 records of a typical export; larger blocks cost memory, not time

SCHEMA = pa.schema(
    [("row_number", pa.int64())]
    + [
        (
            name,
            pa.date32()
            if name in ("period_start", "period_end")
            else pa.bool_()
            if name == "deleted"
            else pa.string(),
        )
        for name in COLUMNS
    ]
)
# A count map_value certainly accepts once its commas are gone: ASCII digits, an optional fraction
# (Decimal also takes '+5', '1.', '.5', '1e3' or other scripts' digits: those take the exact path).
_PLAIN_COUNT = r"^[0-9]+(\.[0-9]+)?$"
_SAFE_ID = r"^[A-Za-z0-9_.\-]{1,50}$"  # ids certainly accepted by dhis2._id_problem
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
    """The feed's mapping (resolved by `dhis2.mapping_of`: ids and codes) as arrow arrays, built
    once per file. Only data elements counted as plain numbers (no value_type, or NUMBER) are
    here; a record of any other goes the exact path, as does every record out of scope."""

    def __init__(self, mapping: Dhis2Mapping) -> None:
        def arrays(pairs: list[tuple[str, str]]) -> tuple[pa.Array, pa.Array]:
            return (
                pa.array([k for k, _ in pairs], pa.string()),
                pa.array([v for _, v in pairs], pa.string()),
            )

        # a key map_value would refuse as an id (spaces, too long) never matches here
        self.data_elements = arrays(
            [
                (k, indicator)
                for k, (indicator, value_type) in mapping.data_elements.items()
                if value_type in (None, "NUMBER") and not _id_problem("", k)
            ]
        )
        self.org_units = arrays(
            [(k, v) for k, v in mapping.org_units.items() if not _id_problem("", k)]
        )
        self.check_combos = mapping.check_combos
        usable = {
            k: v
            for k, v in mapping.combos.items()
            if not _id_problem("", k)
            and all(v.get(f) is None or isinstance(v.get(f), str) for f in ("sex", "age_band"))
        }
        self.combos = pa.array(list(usable), pa.string())
        self.sexes = pa.array([v.get("sex") for v in usable.values()], pa.string())
        self.age_bands = pa.array([v.get("age_band") for v in usable.values()], pa.string())
        # every key of the mapping (also those only the exact path reads): not among them is
        # out of scope
        self.all_data_elements = pa.array(list(mapping.data_elements), pa.string())
        self.all_org_units = pa.array(list(mapping.org_units), pa.string())
        self.all_combos = pa.array(list(mapping.combos), pa.string())


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


def _open(
    path: Path, ctx: ParseContext
) -> tuple[pv.CSVStreamingReader, _NoNulBytes, dict[str, int]]:
    if encoding_of(ctx) != "utf-8-sig":
        raise FastPathUnavailable("a declared encoding other than UTF-8")
    delimiter = ctx.options.get("delimiter", ",")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '"\r\n':
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
            read_options=pv.ReadOptions(
                column_names=names, skip_rows=1, block_size=BLOCK_BYTES, use_threads=False
            ),
            parse_options=pv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pv.ConvertOptions(
                column_types={n: pa.string() for n in names},
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                check_utf8=True,
            ),
        )
    except (pa.ArrowException, OSError) as exc:
        source.close()
        raise FastPathUnavailable(f"pyarrow cannot read it as the row parser does: {exc}") from None
    return reader, source, fields


def load_tables(path: Path, ctx: ParseContext) -> Iterator[TableChunk]:
    """The file's records a block at a time; see the module docstring."""
    mapping = mapping_of(ctx.mapping)
    lookups = _Lookups(mapping)
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
                    f"pyarrow cannot read it as the row parser does: {exc}"
                ) from None
            if _longest_cell(batch) > ctx.limits.max_field_chars:  # issue 13: bounds
                raise FastPathUnavailable(
                    "a value over KNOWDO_MAX_FIELD_CHARS: the row parser rejects its row"
                )
            chunk = _block(batch, numbered, fields, lookups, mapping, ctx)
            numbered += chunk.records
            if chunk.records:
                yield chunk
    finally:
        source.close()


def _longest_cell(batch: pa.RecordBatch) -> int:
    """The longest cell of a block in bytes (at least its length in characters)."""
    return max(
        (pc.max(pc.binary_length(column)).as_py() or 0 for column in batch.columns), default=0
    )


def _per_distinct(cells: pa.Array, convert, type_: pa.DataType) -> pa.Array:
    """`convert` applied once per distinct value (a block holds few periods) and spread back."""
    encoded = pc.dictionary_encode(cells)
    converted = pa.array([convert(v) for v in encoded.dictionary.to_pylist()], type_)
    return pc.take(converted, encoded.indices)


def _period(text: str) -> Period | None:
    try:
        return parse_period(text)
    except ValueError:
        return None


def _timestamp(text: str) -> str | None:
    """dhis2._parse_timestamp, as the text PostgreSQL reads: None when Python cannot read it."""
    try:
        return datetime.fromisoformat(text).isoformat(sep=" ")
    except ValueError:
        return None


def _block(
    batch: pa.RecordBatch,
    numbered: int,
    fields: dict[str, int],
    lookups: _Lookups,
    mapping: Dhis2Mapping,
    ctx: ParseContext,
) -> TableChunk:
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
    indicator = pc.take(
        lookups.data_elements[1], pc.index_in(element, value_set=lookups.data_elements[0])
    )
    geography = pc.take(lookups.org_units[1], pc.index_in(org_unit, value_set=lookups.org_units[0]))
    certain = pc.and_(pc.is_valid(indicator), pc.is_valid(geography))
    if lookups.check_combos:
        combo_at = pc.index_in(combo, value_set=lookups.combos)
        sex, age_band = pc.take(lookups.sexes, combo_at), pc.take(lookups.age_bands, combo_at)
        certain = pc.and_(certain, pc.is_valid(combo_at))
    else:
        sex = age_band = absent
        # an unmapped combo must still look like an id map_value accepts (a safe subset here)
        certain = pc.and_(
            certain, pc.or_(pc.is_null(combo), pc.match_substring_regex(combo, _SAFE_ID))
        )

    period = field("period")
    today = ctx.today
    parsed = pc.dictionary_encode(period)
    periods = [_period(p) for p in parsed.dictionary.to_pylist()]
    period_start = pc.take(
        pa.array([p.start if p else None for p in periods], pa.date32()), parsed.indices
    )
    period_end = pc.take(
        pa.array([p.end if p else None for p in periods], pa.date32()), parsed.indices
    )
    period_type = pc.take(
        pa.array([p.type if p else None for p in periods], pa.string()), parsed.indices
    )
    in_time = pc.take(
        pa.array([bool(p) and p.start <= today for p in periods], pa.bool_()), parsed.indices
    )
    certain = pc.and_(certain, pc.fill_null(in_time, False))

    value = pc.replace_substring(field("value"), ",", "")
    certain = pc.and_(certain, pc.fill_null(pc.match_substring_regex(value, _PLAIN_COUNT), False))
    certain = pc.fill_null(certain, False)

    deleted = pc.fill_null(pc.is_in(pc.utf8_lower(field("deleted")), value_set=_TRUE), False)
    stamp = pc.coalesce(field("lastUpdated"), field("created"))
    last_updated = _per_distinct(stamp, lambda t: t and _timestamp(t), pa.string())

    columns = {
        "row_number": rows,
        "data_element": element,
        "period": period,
        "org_unit": org_unit,
        "category_option_combo": combo,
        "attribute_option_combo": field("attributeOptionCombo"),
        "value": value,
        "deleted": deleted,
        "stored_by": field("storedBy"),
        "last_updated": last_updated,
        "comment": field("comment"),
        "indicator_code": indicator,
        "geography_code": geography,
        "sex_code": sex,
        "age_band_code": age_band,
        "period_start": period_start,
        "period_type": period_type,
        "period_end": period_end,
    }
    table = pa.Table.from_arrays([columns[n] for n in SCHEMA.names], schema=SCHEMA)
    # records certainly out of scope (most of a ministry's export) are counted there; the rest go
    # through map_value itself
    return _finish_chunk(
        table,
        count,
        certain,
        _certainly_outside(
            element, org_unit, combo, period_start, field("value"), deleted, lookups
        ),
        lambda outside: _outside_records(outside, rows, element, org_unit, combo, lookups),
        lambda uncertain: _exact(uncertain, rows, fields, cells, mapping, ctx),
    )


def _finish_chunk(
    table: pa.Table,
    count: int,
    certain: pa.Array,
    outside: pa.Array,
    outside_records,
    exact_rows,
) -> TableChunk:
    """The vectorised paths' (CSV and JSON) common end: the rows certainly valid are loaded as
    read; the ones certainly out of scope are counted (`outside_records(indices)`); every other
    row goes through the row parser's own rules (`exact_rows(indices)` -> table, rejections, out of
    scope)."""
    rejections: list[Rejection] = []
    out_of_scope: list[OutOfScope] = []
    certain_count = pc.sum(certain).as_py() or 0
    if certain_count < count:
        loaded = table.filter(certain)
        out_of_scope = outside_records(pc.indices_nonzero(outside))
        exact, rejections, exact_outside = exact_rows(
            pc.indices_nonzero(pc.invert(pc.or_(certain, outside)))
        )
        if exact_outside:
            out_of_scope = sorted(out_of_scope + exact_outside, key=lambda o: o.row)
        table = pa.concat_tables([loaded, exact]) if exact.num_rows else loaded
    first = last = None
    if table.num_rows:
        bounds = pc.min_max(table.column("period_start"))
        first, last = bounds["min"].as_py(), bounds["max"].as_py()
    return TableChunk(
        table=table,
        rejections=rejections,
        records=count,
        periods=set(pc.unique(table.column("period")).to_pylist()),
        first_period=first,
        last_period=last,
        out_of_scope=out_of_scope,
    )


def _safe_id(cells: pa.Array) -> pa.Array:
    return pc.fill_null(pc.match_substring_regex(cells, _SAFE_ID), False)


def _certainly_outside(
    element: pa.Array,
    org_unit: pa.Array,
    combo: pa.Array,
    period_start: pa.Array,
    value: pa.Array,
    deleted: pa.Array,
    lookups: _Lookups,
) -> pa.Array:
    """Records map_value would certainly call out of scope: well-formed ids (a safe subset of
    what it accepts), a known period, a value or a deletion, and an id the mapping does not name.
    Any other record takes the exact path."""
    combo_ok = (
        _safe_id(combo) if lookups.check_combos else pc.or_(pc.is_null(combo), _safe_id(combo))
    )
    well_formed = pc.and_(pc.and_(_safe_id(element), _safe_id(org_unit)), combo_ok)
    well_formed = pc.and_(well_formed, pc.is_valid(period_start))
    well_formed = pc.and_(well_formed, pc.or_(pc.is_valid(value), deleted))
    unmapped = pc.or_(
        pc.invert(pc.is_in(element, value_set=lookups.all_data_elements)),
        pc.invert(pc.is_in(org_unit, value_set=lookups.all_org_units)),
    )
    if lookups.check_combos:
        unmapped = pc.or_(unmapped, pc.invert(pc.is_in(combo, value_set=lookups.all_combos)))
    return pc.fill_null(pc.and_(well_formed, unmapped), False)


def _outside_records(
    positions: pa.Array,
    rows: pa.Array,
    element: pa.Array,
    org_unit: pa.Array,
    combo: pa.Array,
    lookups: _Lookups,
) -> list[OutOfScope]:
    """The OutOfScope records map_value would give for these records (its id order)."""
    if not len(positions):
        return []
    numbers = pc.take(rows, positions).to_pylist()
    kinds = [
        ("data_element", pc.take(element, positions), lookups.all_data_elements),
        ("org_unit", pc.take(org_unit, positions), lookups.all_org_units),
    ]
    if lookups.check_combos:
        kinds.append(("category_option_combo", pc.take(combo, positions), lookups.all_combos))
    columns = [
        (kind, ids.to_pylist(), pc.is_in(ids, value_set=known).to_pylist())
        for kind, ids, known in kinds
    ]
    return [
        OutOfScope(number, tuple((kind, ids[j]) for kind, ids, mapped in columns if not mapped[j]))
        for j, number in enumerate(numbers)
    ]


def _exact(
    positions: pa.Array,
    rows: pa.Array,
    fields: dict[str, int],
    cells: list[pa.Array],
    mapping: Dhis2Mapping,
    ctx: ParseContext,
) -> tuple[pa.Table, list[Rejection], list[OutOfScope]]:
    """The records not certainly valid, through map_value exactly as parse_csv hands them over."""
    numbers = pc.take(rows, positions).to_pylist()
    texts = {key: pc.take(cells[i], positions).to_pylist() for key, i in fields.items()}
    loaded: list[tuple] = []
    rejections: list[Rejection] = []
    out_of_scope: list[OutOfScope] = []
    for j, number in enumerate(numbers):
        item = {key: values[j] for key, values in texts.items()}
        result = map_value(item, number, mapping, ctx.today)
        if isinstance(result, list):
            rejections.extend(result)
        elif isinstance(result, OutOfScope):
            out_of_scope.append(result)
        else:
            loaded.append((number, *result.values))
    return _as_table(loaded), rejections, out_of_scope


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
