"""KnowDo's own CSV templates: one format per contract in feeds/contracts/<template>.v<major>.yml.

Format `knowdo-<template>-csv` loads into `raw.template_<template>`
(src/knowdo/sql/030_template_raw.sql) with the contract's columns, typed, plus the contract version
the file was read with and, where the contract allows suppression, which columns were sent
suppressed. The header must name the contract's columns (any order; optional ones may be left out,
unknown ones may not); each record is checked with knowdo.contracts.parse_record and a second record
with the same grain is rejected.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from datetime import date
from functools import partial
from pathlib import Path

from knowdo.contracts import Contract, load_contracts, parse_record
from knowdo.formats._csv import encoding_of, records
from knowdo.formats.base import FileRejected, FormatSpec, ParseContext, Rejection, Row

# Grain columns that say whose or where a row is: they scope supersession by a corrected resend.
SCOPE_COLUMNS = ("organisation_id", "country_code", "geography_code")


def _check_header(contract: Contract, header: list[str]) -> None:
    """FileRejected with one sentence when the header does not match the contract."""
    label = f"the {contract.name} template v{contract.version}"
    duplicates = sorted({h for h in header if header.count(h) > 1})
    if duplicates:
        raise FileRejected(
            f"header mismatch: column(s) {', '.join(duplicates)} appear more than once"
        )
    missing = [c for c in contract.required_columns if c not in header]
    if missing:
        raise FileRejected(
            f"header mismatch: missing required column(s) {', '.join(missing)} of {label}"
        )
    unknown = [
        h or f"(unnamed, position {i})"
        for i, h in enumerate(header, start=1)
        if h not in contract.column_names
    ]
    if unknown:
        raise FileRejected(
            f"header mismatch: unknown column(s) {', '.join(unknown)}; {label} "
            f"has {', '.join(contract.column_names)}"
        )


def _header(path: Path, ctx: ParseContext) -> list[str] | None:
    """The header row, or None when the file cannot be read as text (records() then says why)."""
    try:
        with path.open("r", encoding=encoding_of(ctx), newline="") as fh:
            first = next(csv.reader(fh, delimiter=ctx.options.get("delimiter", ",")), None)
    except (UnicodeDecodeError, csv.Error):
        return None
    return None if first is None else [h.strip() for h in first]


def _grain_key(contract: Contract, values: dict) -> bytes:
    # A fixed-size digest per accepted record keeps duplicate detection to ~70 bytes a row
    # (about 70 MB for a million-row file); everything else about parsing streams.
    text = "\x1f".join("" if values[g] is None else str(values[g]) for g in contract.grain)
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


def parse_template(contract: Contract, path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    header = _header(path, ctx)
    if header is not None:
        _check_header(contract, header)
    first_row_of: dict[bytes, int] = {}
    for number, record in records(path, ctx, contract.required_columns):
        extra = record.pop(None, None)
        if extra is not None:
            yield Rejection(
                number,
                None,
                ",".join(extra),
                f"the row has {len(extra)} more cell(s) than the header",
            )
            continue
        parsed = parse_record(contract, record, ctx.today)
        if parsed.problems:
            for p in parsed.problems:
                yield Rejection(number, p.field, p.value, p.reason)
            continue
        key = _grain_key(contract, parsed.values)
        if key in first_row_of:
            shown = ", ".join(f"{g}={(record.get(g) or '').strip()}" for g in contract.grain)
            yield Rejection(
                number,
                ",".join(contract.grain),
                shown,
                f"duplicate of row {first_row_of[key]}: the same "
                f"{', '.join(contract.grain)} appears twice in the file",
            )
            continue
        first_row_of[key] = number
        values = [parsed.values[c] for c in contract.column_names] + [contract.version]
        if contract.has_suppressible:
            values.append(parsed.suppressed)
        period = period_start = None
        if contract.period_column:
            start = parsed.values[contract.period_column]
            period_start = date(start, 1, 1) if isinstance(start, int) else start
            # A corrected resend replaces what an earlier file said for the same period AND the
            # same submitter/place: one feed may carry many countries' or places' files.
            scope = [str(parsed.values.get(c) or "") for c in contract.grain if c in SCOPE_COLUMNS]
            period = ":".join([*scope, record[contract.period_column].strip()])
        yield Row(number, tuple(values), period=period, period_start=period_start)


def sniff_template(contract: Contract, head: str) -> bool:
    """True when the first line has every required column of the contract and nothing else."""
    try:
        first = next(csv.reader(io.StringIO(head.lstrip("\ufeff"))), None)
    except csv.Error:
        return False
    if not first:
        return False
    cells = [c.strip() for c in first]
    return len(set(cells)) == len(cells) and set(contract.required_columns) <= set(cells) <= set(
        contract.column_names
    )


def format_spec(contract: Contract) -> FormatSpec:
    extra = ("contract_version",) + (("suppressed_columns",) if contract.has_suppressible else ())
    return FormatSpec(
        name=contract.format_name,
        raw_table=contract.raw_table,
        columns=contract.column_names + extra,
        parse=partial(parse_template, contract),
        description=f"KnowDo {contract.name} CSV template (contract v{contract.version}, "
        f"feeds/contracts/{contract.path.name if contract.path else ''})",
        sniff=partial(sniff_template, contract),
    )


CONTRACTS: dict[str, Contract] = load_contracts()
FORMAT_SPECS = [format_spec(c) for c in CONTRACTS.values()]
