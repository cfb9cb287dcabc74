"""DHIS2 dataValueSets CSV (Web API `/api/dataValueSets.csv`).

The header is `dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,
comment,flwup` (names matched without regard to case; newer exports write `categoryoptioncombo`,
`attributeoptioncombo`, `followup`, `created`, `deleted`, and the camelCase names of the JSON API
are accepted too), or DATIM's short `de,pe,ou,coc,acoc,value` (also `aoc`); every field may be
quoted. Like DHIS2, which reads these files by column position, a header in DHIS2's column order
with a name KnowDo does not know (`dataelelement`, `timestamp` in dhis2-core's own test files) is
read by position. Same raw table, registry mapping and validation as DHIS2 JSON: every record is
turned into the JSON shape and handed to `dhis2.map_value`, so both formats reject the same things.

The loader reads these files a block at a time with pyarrow (`_dhis2_csv_fast`), with exactly the
rows and rejections of `parse_csv`; `knowdo check` runs `parse_csv` itself.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from knowdo.formats import (
    DuplicateKeys,
    FileRejected,
    FormatSpec,
    OutOfScope,
    ParseContext,
    Rejection,
    Row,
)
from knowdo.formats._csv import encoding_of, records
from knowdo.formats.dhis2 import (
    COLUMNS,
    KEY_COLUMNS,
    KEY_DESCRIPTION,
    KEY_FIELDS,
    map_value,
    mapping_of,
)

# lower-cased CSV header name -> the dataValue key the JSON API (and map_value) uses
_JSON_KEY = {
    "dataelement": "dataElement",
    "de": "dataElement",
    "period": "period",
    "pe": "period",
    "orgunit": "orgUnit",
    "ou": "orgUnit",
    "catoptcombo": "categoryOptionCombo",
    "categoryoptioncombo": "categoryOptionCombo",
    "coc": "categoryOptionCombo",
    "attroptcombo": "attributeOptionCombo",
    "attributeoptioncombo": "attributeOptionCombo",
    "acoc": "attributeOptionCombo",
    "aoc": "attributeOptionCombo",
    "value": "value",
    "storedby": "storedBy",
    "created": "created",
    "lastupdated": "lastUpdated",
    "timestamp": "lastUpdated",  # older DHIS2 exports
    "comment": "comment",
    "flwup": "followup",
    "followup": "followup",
    "deleted": "deleted",
}
_REQUIRED = ("dataelement", "period", "orgunit", "value")
# DHIS2 itself reads dataValueSet CSV by position, whatever the header says (dhis2-core's own test
# files have `dataelelement`): the order it reads
_POSITIONS = (
    "dataElement",
    "period",
    "orgUnit",
    "categoryOptionCombo",
    "attributeOptionCombo",
    "value",
    "storedBy",
    "lastUpdated",
    "comment",
    "followup",
    "deleted",
)
_REQUIRED_KEYS = tuple(_JSON_KEY[c] for c in _REQUIRED)


def read_header(path: Path, ctx: ParseContext, delimiter: str = ",") -> list[str]:
    """The stripped header cells, or [] when the file has none that can be read (records() then
    raises the precise FileRejected: empty, binary, wrong encoding)."""
    try:
        with path.open("r", encoding=encoding_of(ctx), newline="") as fh:
            return [cell.strip() for cell in next(csv.reader(fh, delimiter=delimiter))]
    except (StopIteration, UnicodeDecodeError, csv.Error):
        return []


def _header_names(path: Path, ctx: ParseContext) -> dict[str, str]:
    """{header name as written: JSON key}; FileRejected when a required column is missing."""
    header = read_header(path, ctx, ctx.options.get("delimiter", ","))
    if not header:
        return {}
    names = {name: _JSON_KEY[name.lower()] for name in header if name.lower() in _JSON_KEY}
    missing = [c for c in _REQUIRED if _JSON_KEY[c] not in names.values()]
    if missing and _positional(header):
        # DHIS2's column order with an unknown name among them: read by position, as DHIS2 does
        return {name: key for name, key in zip(header, _POSITIONS, strict=False)}
    if missing:
        raise FileRejected(
            f"header mismatch: missing column(s) {', '.join(missing)}; a DHIS2 dataValueSet CSV "
            f"starts dataelement,period,orgunit,catoptcombo,attroptcombo,value (or DATIM's "
            f"de,pe,ou,coc,acoc,value; the header has "
            f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''})"
        )
    return names


def _positional(header: list[str]) -> bool:
    """True when the header is DHIS2's column order (period, org unit and value where DHIS2 reads
    them, every name distinct) though some name is not one KnowDo knows."""
    lowered = [name.lower() for name in header]
    return (
        6 <= len(header) <= len(_POSITIONS)
        and len(set(lowered)) == len(lowered)
        and all(_JSON_KEY.get(lowered[i]) == _POSITIONS[i] for i in (1, 2, 5))
    )


def parse_csv(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    names = _header_names(path, ctx)
    mapping = mapping_of(ctx.mapping)
    duplicates = DuplicateKeys(ctx)
    for number, record in records(path, ctx, required=()):
        if None in record:
            yield Rejection(
                number,
                None,
                ",".join(record[None])[:200],
                f"{len(record[None])} more cell(s) than the header: an unquoted comma?",
            )
            continue
        item = {key: (record.get(name) or "").strip() or None for name, key in names.items()}
        result = map_value(item, number, mapping, ctx.today)
        if isinstance(result, list):
            yield from result
            continue
        if isinstance(result, OutOfScope):
            yield result
            continue
        # (when loading, the loader finds duplicates in SQL: no key is built per row)
        if (
            duplicates.active
            and (earlier := duplicates.earlier_row(tuple(item.get(k) for k in KEY_FIELDS), number))
            is not None
        ):
            yield Rejection(
                number,
                "dataElement",
                str(item.get("dataElement")),
                f"duplicate key: the same {KEY_DESCRIPTION} appear earlier in this "
                f"file (row {earlier})",
            )
            continue
        yield result


def _load_tables(path: Path, ctx: ParseContext):
    """The loader's vectorised path (imported only when loading: pyarrow is heavy to import)."""
    from knowdo.formats._dhis2_csv_fast import load_tables

    return load_tables(path, ctx)


def _sniff(head: str) -> bool:
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    cells = [c.strip().strip('"').strip() for c in first.split(",")]
    keys = {_JSON_KEY.get(c.lower()) for c in cells}
    return all(k in keys for k in _REQUIRED_KEYS) or _positional(cells)


DHIS2_CSV = FormatSpec(
    name="dhis2-csv",
    raw_table="raw.dhis2_data_values",
    columns=COLUMNS,
    parse=parse_csv,
    description="DHIS2 dataValueSets CSV",
    sniff=_sniff,
    key_columns=KEY_COLUMNS,
    key_description=KEY_DESCRIPTION,
    load_tables=_load_tables,
)

FORMAT_SPECS = [DHIS2_CSV]
