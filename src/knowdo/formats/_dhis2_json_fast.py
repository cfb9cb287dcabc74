"""DHIS2 dataValueSets JSON for the loader, a block of values at a time (numpy + pyarrow).

The rows, rejections and out-of-scope values are exactly those of `dhis2.parse_json`, whose
semantics stay defined by `dhis2.map_value`. Why not ijson here: its C backend (yajl2_c, already the
row parser's) builds a Python dict per value, ~25-75k values/s on this machine; pyarrow's JSON
reader (RapidJSON, already in the lock) parses a block of objects straight into columns. pyarrow
reads a *sequence* of objects, not one document, so the file is cut here into such sequences:

1. The file is read in blocks through the same guard as the row parser (`_bounds.guarded_json`:
   depth, number and string lengths are checked before anything parses them).
2. Each block is scanned with numpy: unescaped quotes give what is inside strings; brackets and
   commas outside strings give the depth. The `dataValues` array (the first array at the top level,
   whose key must be `"dataValues"`) is located; its elements must be objects separated by single
   commas and whitespace only (any other shape, e.g. a missing comma that pyarrow would forgive,
   takes the row parser). Those commas become spaces and the complete objects go to
   `pyarrow.json.read_json` with an explicit schema of the fields `map_value` reads (strings,
   `deleted` boolean): a field of another type, a repeated field or anything pyarrow reads
   differently from ijson raises FastPathUnavailable and the loader parses the file with
   `parse_json`.
3. The document around the array (a few bytes: dataSet, completeDate, the set-level period, orgUnit,
   attributeOptionCombo) is parsed with `json` at the end; a set-level default the values need but
   that only comes after the array, or a null that could be an absent field, takes the row parser.
4. Each block of values is mapped as in `_dhis2_csv_fast` (its lookups and out-of-scope tests,
   shared): values certainly valid never touch Python, the others go through `map_value`.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from knowdo.formats import (
    FastPathUnavailable,
    FileRejected,
    OutOfScope,
    ParseContext,
    Rejection,
    TableChunk,
)
from knowdo.formats._dhis2_csv_fast import (
    _PLAIN_COUNT,
    _SAFE_ID,
    SCHEMA,
    _as_table,
    _certainly_outside,
    _finish_chunk,
    _Lookups,
    _outside_records,
    _per_distinct,
    _period,
    _timestamp,
)
from knowdo.formats.dhis2 import _SET_DEFAULTS, Dhis2Mapping, map_value, mapping_of

BLOCK_BYTES = 4 << 20  # ~17,000 values of a typical export per pyarrow call
_MAX_OUTSIDE_BYTES = 1 << 20  # the document around dataValues (DHIS2: a few hundred bytes)

# the fields map_value reads, as pyarrow must find them (anything else: the row parser)
_TEXT_FIELDS = (
    "dataElement",
    "period",
    "orgUnit",
    "categoryOptionCombo",
    "attributeOptionCombo",
    "value",
    "storedBy",
    "lastUpdated",
    "created",
    "comment",
)
_READ_SCHEMA = pa.schema([(f, pa.string()) for f in _TEXT_FIELDS] + [("deleted", pa.bool_())])
_PARSE_OPTIONS = pj.ParseOptions(
    explicit_schema=_READ_SCHEMA, unexpected_field_behavior="ignore", newlines_in_values=True
)
_NULL_STRING = pa.scalar(None, pa.string())

_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[0x20, 0x09, 0x0A, 0x0D]] = True  # JSON's whitespace
_STEP = np.zeros(256, dtype=np.int8)
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1
# bytes.translate tables (one C pass over a block, faster than numpy's fancy indexing)
_STRUCTURAL = bytes(1 if chr(b) in "[]{}," else 0 for b in range(256))
_CONTROL = bytes(1 if b < 0x20 and b not in (0x09, 0x0A, 0x0D) else 0 for b in range(256))
# escapes whose decoding ijson and pyarrow might not share (NUL, UTF-16 surrogates): row parser
_RISKY_ESCAPE = re.compile(rb"\\u(0000|[dD][89a-fA-F])")
# literals RapidJSON (pyarrow) takes and yajl (ijson) refuses, when outside strings
_NOT_JSON = re.compile(rb"NaN|Infinity")
_DATA_VALUES_KEY = re.compile(rb'(?:^|[{,\s])"dataValues"\s*:\s*$')


class _Splitter:
    """Cuts the guarded byte stream into blocks of whole `dataValues` objects (module doc, 2-3)."""

    def __init__(self, source, block_bytes: int, keep_values: bool = True) -> None:
        self._source = source
        self._keep_values = keep_values  # False: only the document around the array
        self._block_bytes = block_bytes
        self._in_string = False
        self._backslashes = 0  # trailing backslashes of the last block (inside a string)
        self._depth = 0
        self._phase = "head"  # head: before the array; array: inside it; tail: after it
        self._outside = bytearray()  # the document without the array's contents
        self._pending = b""  # bytes of an object not yet closed
        self._last = 0  # the last array-level character: '[', '{', '}' or ','
        self._gap_dirty = False  # non-whitespace since the last array-level character
        self.elements = 0
        self._edge = b""  # the last bytes of the last block
        self.head = b""  # the document up to the array's '[' (set-level fields usually)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def blocks(self) -> Iterator[bytes]:
        """Sequences of whole objects (commas turned into spaces), then StopIteration; the
        document around the array is in `outside` once the iteration ends."""
        while True:
            block = self._source.read(self._block_bytes)
            if not block:
                break
            out = self._scan(block)
            if out:
                yield out
        if self._phase != "tail" or self._depth != 0 or self._in_string:
            raise FastPathUnavailable("no complete top-level dataValues array found")

    @property
    def outside(self) -> bytes:
        return bytes(self._outside)

    def _quotes(self, block: bytes, data: np.ndarray) -> np.ndarray:
        quotes = np.flatnonzero(data == 0x22)
        if len(quotes) and (self._backslashes or b"\\" in block):
            keep = np.ones(len(quotes), dtype=bool)
            for i in np.flatnonzero(data[np.maximum(quotes - 1, 0)] == 0x5C).tolist() + (
                [0] if self._backslashes and quotes[0] == 0 else []
            ):
                at = int(quotes[i])
                stop = at
                while stop > 0 and block[stop - 1] == 0x5C:
                    stop -= 1
                run = at - stop + (self._backslashes if stop == 0 else 0)
                keep[i] = run % 2 == 0
            quotes = quotes[keep]
        trailing = len(block) - len(block.rstrip(b"\\"))
        self._backslashes = trailing + (self._backslashes if trailing == len(block) else 0)
        return quotes

    def _scan(self, block: bytes) -> bytes:
        data = np.frombuffer(block, dtype=np.uint8)
        if not self._keep_values:
            return self._locate(block, data)
        if b"\x01" in block.translate(_CONTROL):
            raise FastPathUnavailable("control characters in the file")
        if b"\\u" in block and _RISKY_ESCAPE.search(block):
            raise FastPathUnavailable("a \\u0000 or UTF-16 surrogate escape")
        if not block.isascii() or self._utf8.getstate()[0]:
            try:  # ijson refuses a file that is not UTF-8 anywhere, even in fields not read
                self._utf8.decode(block)
            except UnicodeDecodeError:
                raise FastPathUnavailable("not UTF-8") from None
        return self._locate(block, data)

    def _locate(self, block: bytes, data: np.ndarray) -> bytes:
        quotes = self._quotes(block, data)
        was_in_string = self._in_string
        self._in_string = (len(quotes) + was_in_string) % 2 == 1
        if self._keep_values:
            self._not_json(block, quotes, was_in_string)
        marks = np.flatnonzero(np.frombuffer(block.translate(_STRUCTURAL), dtype=np.uint8))
        if len(marks):
            marks = marks[((np.searchsorted(quotes, marks) + was_in_string) & 1) == 0]
        steps = _STEP[data[marks]].astype(np.int64)
        after = self._depth + np.cumsum(steps)  # depth after each mark
        before = after - steps
        start_depth = self._depth
        self._depth = int(after[-1]) if len(after) else self._depth
        if self._phase == "tail":
            self._keep_outside(block)
            return b""
        begin = 0
        if self._phase == "head":
            opens = np.flatnonzero((before == 1) & (data[marks] == ord("[")))
            if not len(opens):
                self._keep_outside(block)
                if start_depth == 0 and len(marks) and data[marks[0]] != ord("{"):
                    raise FastPathUnavailable("the document is not an object")
                return b""
            at = int(marks[opens[0]])
            self._keep_outside(block[: at + 1])
            self.head = bytes(self._outside)
            if not _DATA_VALUES_KEY.search(bytes(self._outside[-200:-1])):
                raise FastPathUnavailable("the first top-level array is not dataValues")
            self._phase, self._last, begin = "array", ord("["), at + 1
            keep = marks > at
            marks, before, after = marks[keep], before[keep], after[keep]
        # array-level marks: those at depth 2 (before for an opening, after for a closing)
        chars = data[marks]
        level = np.where(
            _STEP[chars] > 0, before == 2, np.where(_STEP[chars] < 0, after == 2, before == 2)
        )
        closes_array = np.flatnonzero((before == 2) & (after == 1))
        end = len(block)
        if len(closes_array):
            end = int(marks[closes_array[0]])
            level = level & (marks < end)
        positions = marks[level]
        kinds = data[positions]
        if len(kinds) and not np.isin(kinds, np.frombuffer(b"{},", np.uint8)).all():
            raise FastPathUnavailable("a dataValues entry that is not an object")
        if self._keep_values:
            self._check_gaps(data, begin, end, positions, kinds)
        self.elements += int((kinds == ord("{")).sum())
        if len(closes_array):
            self._phase = "tail"
            self._keep_outside(block[end:])
        if not self._keep_values:
            return b""
        inner = bytearray(block[begin:end])
        commas = positions[kinds == ord(",")] - begin
        if len(commas):
            np.frombuffer(inner, dtype=np.uint8)[commas] = 0x20
        closes = positions[kinds == ord("}")]
        if not len(closes):
            self._pending += bytes(inner)
            return b""
        cut = int(closes[-1]) + 1 - begin
        out = self._pending + bytes(inner[:cut])
        self._pending = bytes(inner[cut:])
        return out

    def _not_json(self, block: bytes, quotes: np.ndarray, was_in_string: bool) -> None:
        """NaN or Infinity outside a string: RapidJSON takes them, yajl does not."""
        if _NOT_JSON.search(self._edge + block[:8]):  # one cut by the block boundary: unsure
            raise FastPathUnavailable("NaN or Infinity across a block boundary")
        self._edge = block[-8:]
        if b"NaN" in block or b"Infinity" in block:
            at = np.array([m.start() for m in _NOT_JSON.finditer(block)])
            if (((np.searchsorted(quotes, at) + was_in_string) & 1) == 0).any():
                raise FastPathUnavailable("NaN or Infinity outside a string: not JSON")

    def _check_gaps(self, data, begin: int, end: int, positions, kinds) -> None:
        """Between array-level characters only whitespace, and in the order '[' ({ } ,)* ']'
        (a shape pyarrow would read but ijson refuses never reaches pyarrow)."""
        previous = np.concatenate(([self._last], kinds)).astype(np.int64)
        bounds = np.concatenate(([begin], positions + 1))  # after each previous character
        lengths = np.concatenate((positions, [end])) - bounds
        # a gap inside an object ('{' then its '}') holds its fields: not checked here; the
        # others are a few bytes each, gathered and looked at at once
        after_open = previous == ord("{")
        between = np.flatnonzero(~after_open & (lengths > 0))
        dirty = np.zeros(len(previous), dtype=bool)
        if len(between):
            sizes = lengths[between]
            offsets = np.cumsum(sizes) - sizes
            at = np.repeat(bounds[between] - offsets, sizes) + np.arange(int(sizes.sum()))
            blank = ~_WHITESPACE[data[at]]
            gap = np.repeat(np.arange(len(between)), sizes)
            dirty[between] = np.bincount(gap, weights=blank, minlength=len(between)) > 0
        dirty[0] = dirty[0] or self._gap_dirty
        if (dirty[:-1] & ~after_open[:-1]).any():
            raise FastPathUnavailable("something other than whitespace between dataValues entries")
        allowed = {
            ord("["): (ord("{"),),
            ord("{"): (ord("}"),),
            ord("}"): (ord(","),),
            ord(","): (ord("{"),),
        }
        pairs = np.unique(previous[:-1] * 256 + kinds.astype(np.int64))  # a few distinct pairs
        for pair in pairs.tolist():
            if pair % 256 not in allowed.get(pair // 256, ()):
                raise FastPathUnavailable("dataValues entries not separated by single commas")
        self._last = int(kinds[-1]) if len(kinds) else self._last
        self._gap_dirty = bool(dirty[-1]) and self._last != ord("{")
        closing = end < len(data)  # the array closes in this block
        if closing and (self._last not in (ord("["), ord("}")) or self._gap_dirty):
            raise FastPathUnavailable("the dataValues array does not end after an entry")

    def _keep_outside(self, part: bytes) -> None:
        self._outside += part
        if len(self._outside) > _MAX_OUTSIDE_BYTES:
            raise FastPathUnavailable("large content beside dataValues")


def _document_defaults(outside: bytes) -> dict[str, str]:
    """The set-level fields as `dhis2._set_defaults` reads them (with `__has_values__`)."""

    def pairs(items):
        keys = [k for k, _ in items]
        if len(keys) != len(set(keys)):
            raise FastPathUnavailable("a repeated key beside dataValues")
        return dict(items)

    try:
        document = json.loads(outside.decode("utf-8"), object_pairs_hook=pairs, parse_float=Decimal)
    except (ValueError, RecursionError):
        raise FastPathUnavailable(
            "the document around dataValues: the row parser says why"
        ) from None
    if not isinstance(document, dict) or document.get("dataValues") != []:
        raise FastPathUnavailable("no top-level dataValues array")
    defaults = {}
    for key in ("period", "orgUnit", "attributeOptionCombo", "completeDate"):
        value = document.get(key)
        if isinstance(value, str) or (
            isinstance(value, (int, Decimal)) and not isinstance(value, bool)
        ):
            defaults[key] = str(value)
    defaults["__has_values__"] = "yes"
    return defaults


def _head_defaults(outside: bytes) -> dict[str, str]:
    """Set-level fields already read before the array (the usual place); {} when unsure."""
    try:
        return {
            k: v
            for k, v in _document_defaults(outside.rstrip()[:-1] + b"[]}").items()
            if k in _SET_DEFAULTS
        }
    except FastPathUnavailable:
        return {}


def document_fields(path: Path) -> dict[str, str]:
    """The set-level fields (`dhis2._set_defaults`) of a file already loaded, without parsing its
    values (for `submitted_at`: ijson took ~40% of a load for it). Only the scan that finds the
    array: the load has read the whole file through the guard and the checks of `_scan` (or the
    row parser) already. FastPathUnavailable when unsure: the caller then asks ijson."""
    with path.open("rb") as source:
        if source.read(3) != b"\xef\xbb\xbf":
            source.seek(0)
        splitter = _Splitter(source, BLOCK_BYTES, keep_values=False)
        for _ in splitter.blocks():
            pass
    return _document_defaults(splitter.outside)


def load_tables(path: Path, ctx: ParseContext) -> Iterator[TableChunk]:
    """The file's dataValues a block at a time; see the module docstring."""
    from knowdo.formats._bounds import guarded_json

    mapping = mapping_of(ctx.mapping)
    lookups = _Lookups(mapping)
    try:
        source = guarded_json(path, ctx.limits)
    except OSError as exc:
        raise FastPathUnavailable(str(exc)) from None
    splitter = _Splitter(source, BLOCK_BYTES)
    head: dict[str, str] | None = None
    nulls_in: set[str] = set()  # defaultable fields seen null before the defaults were known
    numbered = 0
    try:
        blocks = splitter.blocks()
        while True:
            try:
                body = next(blocks)
            except StopIteration:
                break
            except FileRejected:  # the guard: the row parser reports it, in its order
                raise FastPathUnavailable("the JSON guard refuses the file") from None
            if head is None:
                head = _head_defaults(splitter.head)
            try:
                read = pj.read_json(
                    pa.BufferReader(body),
                    read_options=pj.ReadOptions(use_threads=False, block_size=len(body) + 1),
                    parse_options=_PARSE_OPTIONS,
                )
            except (pa.ArrowException, OSError) as exc:
                raise FastPathUnavailable(
                    f"pyarrow cannot read it as the row parser does: {exc}"
                ) from None
            if read.num_rows != splitter.elements - numbered - _open_elements(splitter):
                raise FastPathUnavailable("pyarrow read another number of entries")
            chunk = _block(read, body, numbered, head, nulls_in, lookups, mapping, ctx)
            numbered += chunk.records
            if chunk.records:
                yield chunk
    finally:
        source.close()
    document = _document_defaults(splitter.outside)
    for field in _SET_DEFAULTS:
        if field in nulls_in and field in document and field not in (head or {}):
            raise FastPathUnavailable(f"a set-level {field} after the dataValues array")


def _open_elements(splitter: _Splitter) -> int:
    """1 when an object is open (counted, not yet handed to pyarrow), else 0."""
    return 1 if splitter._last == ord("{") else 0


def _block(
    read: pa.Table,
    body: bytes,
    numbered: int,
    head: dict[str, str],
    nulls_in: set[str],
    lookups: _Lookups,
    mapping: Dhis2Mapping,
    ctx: ParseContext,
) -> TableChunk:
    count = read.num_rows
    longest = max(
        (pc.max(pc.binary_length(read.column(f))).as_py() or 0 for f in _TEXT_FIELDS), default=0
    )
    if longest > ctx.limits.max_field_chars:  # issue 13: bounds
        raise FastPathUnavailable("a value over KNOWDO_MAX_FIELD_CHARS: the row parser rejects it")
    raw = {f: read.column(f).combine_chunks() for f in _TEXT_FIELDS}
    for field in _SET_DEFAULTS:
        nulls = raw[field].null_count
        if not nulls:
            continue
        if field in head:
            if _explicit_null(body, field):  # stays null in the row parser (setdefault)
                raise FastPathUnavailable(f"{field} null where the set gives a default")
            raw[field] = pc.fill_null(raw[field], head[field])
        else:
            nulls_in.add(field)
    rows = pa.array(np.arange(numbered + 1, numbered + count + 1, dtype=np.int64))

    element, org_unit, combo = raw["dataElement"], raw["orgUnit"], raw["categoryOptionCombo"]
    indicator = pc.take(
        lookups.data_elements[1], pc.index_in(element, value_set=lookups.data_elements[0])
    )
    geography = pc.take(lookups.org_units[1], pc.index_in(org_unit, value_set=lookups.org_units[0]))
    certain = pc.and_(pc.is_valid(indicator), pc.is_valid(geography))
    certain = pc.and_(certain, pc.and_(_nonempty(element), _nonempty(org_unit)))
    absent = pa.nulls(count, pa.string())
    if lookups.check_combos:
        combo_at = pc.index_in(combo, value_set=lookups.combos)
        sex, age_band = pc.take(lookups.sexes, combo_at), pc.take(lookups.age_bands, combo_at)
        certain = pc.and_(certain, pc.and_(pc.is_valid(combo_at), _nonempty(combo)))
    else:
        sex = age_band = absent
        certain = pc.and_(
            certain, pc.or_(pc.is_null(combo), pc.match_substring_regex(combo, _SAFE_ID))
        )

    period = raw["period"]
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
        pa.array([bool(p) and p.start <= ctx.today for p in periods], pa.bool_()), parsed.indices
    )
    certain = pc.and_(certain, pc.fill_null(in_time, False))

    value = pc.replace_substring(raw["value"], ",", "")
    certain = pc.and_(certain, pc.fill_null(pc.match_substring_regex(value, _PLAIN_COUNT), False))
    certain = pc.fill_null(certain, False)

    deleted = pc.fill_null(read.column("deleted").combine_chunks(), False)
    stamp = pc.coalesce(_empty_as_null(raw["lastUpdated"]), raw["created"])
    last_updated = _per_distinct(stamp, lambda t: _timestamp(t) if t else None, pa.string())

    columns = {
        "row_number": rows,
        "data_element": element,
        "period": period,
        "org_unit": org_unit,
        "category_option_combo": combo,
        "attribute_option_combo": raw["attributeOptionCombo"],
        "value": value,
        "deleted": deleted,
        "stored_by": raw["storedBy"],
        "last_updated": last_updated,
        "comment": raw["comment"],
        "indicator_code": indicator,
        "geography_code": geography,
        "sex_code": sex,
        "age_band_code": age_band,
        "period_start": period_start,
        "period_type": period_type,
        "period_end": period_end,
    }
    table = pa.Table.from_arrays([columns[n] for n in SCHEMA.names], schema=SCHEMA)
    # a "" value is missing to map_value (a value of spaces is not)
    return _finish_chunk(
        table,
        count,
        certain,
        _certainly_outside(
            element, org_unit, combo, period_start, _empty_as_null(raw["value"]), deleted, lookups
        ),
        lambda outside: _outside_records(outside, rows, element, org_unit, combo, lookups),
        lambda uncertain: _exact(uncertain, rows, raw, read, mapping, ctx),
    )


def _explicit_null(body: bytes, field: str) -> bool:
    """Whether `field` may be written as null in these objects (not merely absent); a key may
    be spelt with \\u escapes, so any escape counts as a maybe."""
    if b"null" not in body:
        return False
    return b"\\u" in body or re.search(rb'"%s"\s*:\s*null' % field.encode(), body) is not None


def _nonempty(cells: pa.Array) -> pa.Array:
    return pc.fill_null(pc.greater(pc.binary_length(cells), 0), False)


def _empty_as_null(cells: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(pc.binary_length(cells), 0), _NULL_STRING, cells)


def _exact(
    positions: pa.Array,
    rows: pa.Array,
    raw: dict[str, pa.Array],
    read: pa.Table,
    mapping: Dhis2Mapping,
    ctx: ParseContext,
) -> tuple[pa.Table, list[Rejection], list[OutOfScope]]:
    """The values not certainly valid, through map_value as parse_json hands them over (an
    absent field and a null one are alike to map_value once the set-level defaults are in)."""
    numbers = pc.take(rows, positions).to_pylist()
    texts = {f: pc.take(raw[f], positions).to_pylist() for f in _TEXT_FIELDS}
    texts["deleted"] = pc.take(read.column("deleted"), positions).to_pylist()
    loaded: list[tuple] = []
    rejections: list[Rejection] = []
    out_of_scope: list[OutOfScope] = []
    for j, number in enumerate(numbers):
        item = {key: values[j] for key, values in texts.items() if values[j] is not None}
        result = map_value(item, number, mapping, ctx.today)
        if isinstance(result, list):
            rejections.extend(result)
        elif isinstance(result, OutOfScope):
            out_of_scope.append(result)
        else:
            loaded.append((number, *result.values))
    return _as_table(loaded), rejections, out_of_scope
