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

from collections.abc import Iterator
from pathlib import Path

from knowdo.formats._csv import records
from knowdo.formats._dhis2_csv_header import _JSON_KEY, _REQUIRED_KEYS, _header_names, _positional
from knowdo.formats.base import (
    DuplicateKeys,
    FormatSpec,
    OutOfScope,
    ParseContext,
    Rejection,
    Row,
)
from knowdo.formats.dhis2 import (
    COLUMNS,
    KEY_COLUMNS,
    KEY_DESCRIPTION,
    KEY_FIELDS,
    map_value,
    mapping_of,
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
