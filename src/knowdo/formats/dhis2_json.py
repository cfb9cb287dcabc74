"""The DHIS2 dataValueSets JSON format: its row parser is `dhis2.parse_json` (shared DHIS2 mapping
and value rules live in `dhis2`), its loader path is `_dhis2_json_fast` (pyarrow, issue 13 speed).

A module of its own so that the arrows go one way: `dhis2_json` -> `_dhis2_json_fast` ->
`_dhis2_csv_fast` -> `dhis2` (import-linter's formats contract, `make lint`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import ijson

from knowdo.formats.base import FileRejected, FormatSpec, ParseContext
from knowdo.formats.dhis2 import (
    COLUMNS,
    KEY_COLUMNS,
    KEY_DESCRIPTION,
    _parse_timestamp,
    _set_defaults,
    parse_json,
)


def submitted_at(path: Path) -> datetime | None:
    """The dataValueSet's completeDate (when the ministry marked the data set complete)."""
    from knowdo.formats import FastPathUnavailable
    from knowdo.formats._dhis2_json_fast import document_fields

    try:  # issue 13, speed: a numpy scan of the loaded file instead of ijson's events
        return _complete_date(document_fields(path).get("completeDate"))
    except (FastPathUnavailable, FileRejected):
        pass
    try:
        value = _set_defaults(path).get("completeDate")
    except (ijson.common.IncompleteJSONError, UnicodeDecodeError):
        return None
    return _complete_date(value)


def _complete_date(value: str | None) -> datetime | None:
    parsed = _parse_timestamp(value)
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _load_tables(path: Path, ctx: ParseContext):
    """The loader's vectorised path (issue 13, speed): pyarrow, imported only when it runs."""
    from knowdo.formats._dhis2_json_fast import load_tables

    return load_tables(path, ctx)


DHIS2_JSON = FormatSpec(
    name="dhis2-json",
    raw_table="raw.dhis2_data_values",
    columns=COLUMNS,
    parse=parse_json,
    description="DHIS2 dataValueSets JSON",
    sniff=lambda head: head.lstrip().startswith("{") and '"dataValues"' in head,
    submitted_at=submitted_at,
    key_columns=KEY_COLUMNS,
    key_description=KEY_DESCRIPTION,
    load_tables=_load_tables,
)

FORMAT_SPECS = [DHIS2_JSON]
