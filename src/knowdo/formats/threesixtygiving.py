"""360Giving grants (schema 1.x): the JSON package and the flattened spreadsheet CSV.

Both land in raw.threesixtygiving_grants, one row per grant. The CSV uses the standard's column
titles, "Title:Subtitle" for nested fields with an optional item number ("Recipient Org:Identifier"
or "Recipient Org:0:Identifier"); CSV rows are turned into the JSON shape first so both formats
share one mapping.

Nothing is lost: `extra` keeps every field that is not a column of its own. Organisation, programme,
location and planned-dates objects are kept whole in `extra` as well, because the columns take only
their first entry (a grant can name several) and they carry more than id and name.

Text is stored verbatim: a title such as "=cmd|' /C calc'!A0" stays inert text in the warehouse;
exports are where formula text has to be neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import ijson

from knowdo.cells import parse_date, parse_number
from knowdo.formats._csv import records, sniff_header
from knowdo.formats._json import jsonb
from knowdo.formats.base import FileRejected, FormatSpec, ParseContext, Rejection, Row

COLUMNS = (
    "grant_id",
    "title",
    "description",
    "currency",
    "amount_awarded",
    "award_date",
    "recipient_org_id",
    "recipient_org_name",
    "funding_org_id",
    "funding_org_name",
    "grant_programme_title",
    "beneficiary_country_codes",
    "planned_start_date",
    "planned_end_date",
    "classifications",
    "extra",
)

# JSON fields that become exactly one column each (everything else is kept in `extra`).
_COLUMN_FIELDS = (
    "id",
    "title",
    "description",
    "currency",
    "amountAwarded",
    "awardDate",
    "classifications",
)

# Spreadsheet column titles -> JSON names (360Giving schema titles).
_CSV_SCALARS = {
    "Identifier": "id",
    "Title": "title",
    "Description": "description",
    "Currency": "currency",
    "Amount Awarded": "amountAwarded",
    "Award Date": "awardDate",
}
_CSV_GROUPS = {
    "Recipient Org": ("recipientOrganization", {"Identifier": "id", "Name": "name"}),
    "Funding Org": ("fundingOrganization", {"Identifier": "id", "Name": "name"}),
    "Grant Programme": ("grantProgramme", {"Title": "title"}),
    "Beneficiary Location": ("beneficiaryLocation", {"Country Code": "countryCode"}),
    "Planned Dates": ("plannedDates", {"Start Date": "startDate", "End Date": "endDate"}),
    "Classifications": (
        "classifications",
        {
            "Title": "title",
            "Code": "code",
            "Vocabulary": "vocabulary",
            "Description": "description",
            "URI": "uri",
        },
    ),
}
CSV_REQUIRED = ("Identifier", "Amount Awarded", "Award Date")
_CSV_FIELD_NAMES = {
    "id": "Identifier",
    "amountAwarded": "Amount Awarded",
    "awardDate": "Award Date",
    "plannedDates.startDate": "Planned Dates:Start Date",
    "plannedDates.endDate": "Planned Dates:End Date",
}
_ITEM_NUMBER = re.compile(r"^\d+$")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


def _items(value: Any) -> list[dict[str, Any]]:
    """A list of objects whatever the publisher sent (one object, a list, or nothing)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


def _first(grant: dict[str, Any], key: str, field: str) -> str | None:
    items = _items(grant.get(key))
    return _text(items[0].get(field)) if items else None


class _GrantRejected(Exception):
    """`problem` follows the field's name in the reason: "Amount Awarded" + " is missing"."""

    def __init__(self, field: str, value: Any, problem: str) -> None:
        super().__init__(problem)
        self.field, self.value, self.problem = field, None if value is None else str(value), problem


def _date(grant: dict[str, Any], key: str, field: str, required: bool = False) -> date | None:
    text = _text(grant.get(key))
    if text is None:
        if required:
            raise _GrantRejected(field, None, "is missing")
        return None
    try:
        return parse_date(text)
    except ValueError:
        raise _GrantRejected(
            field, text, f"'{text}' is not a date (expected YYYY-MM-DD or DD/MM/YYYY)"
        ) from None


def _planned_date(grant: dict[str, Any], key: str, field: str) -> date | None:
    items = _items(grant.get("plannedDates"))
    return _date(items[0], key, field) if items else None


def _amount(value: Any) -> Decimal:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise _GrantRejected("amountAwarded", None, "is missing")
    if isinstance(value, bool):
        raise _GrantRejected("amountAwarded", value, f"'{value}' is not a number")
    try:
        amount = value if isinstance(value, Decimal) else parse_number(str(value))
    except ValueError:
        raise _GrantRejected("amountAwarded", value, f"'{value}' is not a number") from None
    if amount < 0:
        raise _GrantRejected(
            "amountAwarded", value, f"{value} is negative: an award cannot be below 0"
        )
    return Decimal(amount)


def grant_values(grant: dict[str, Any], extra: dict[str, Any]) -> tuple[Any, ...]:
    """The raw row of one grant in the JSON shape; raises _GrantRejected on a contract breach."""
    grant_id = _text(grant.get("id"))
    if grant_id is None:
        raise _GrantRejected("id", None, "is missing: every grant needs its identifier")
    amount = _amount(grant.get("amountAwarded"))
    award_date = _date(grant, "awardDate", "awardDate", required=True)
    planned_start = _planned_date(grant, "startDate", "plannedDates.startDate")
    planned_end = _planned_date(grant, "endDate", "plannedDates.endDate")
    countries = list(
        dict.fromkeys(
            code.strip().upper()
            for location in _items(grant.get("beneficiaryLocation"))
            if (code := _text(location.get("countryCode")))
        )
    )
    classifications = _items(grant.get("classifications"))
    return (
        grant_id.strip(),
        _text(grant.get("title")),
        _text(grant.get("description")),
        (_text(grant.get("currency")) or "").strip().upper() or None,
        amount,
        award_date,
        _first(grant, "recipientOrganization", "id"),
        _first(grant, "recipientOrganization", "name"),
        _first(grant, "fundingOrganization", "id"),
        _first(grant, "fundingOrganization", "name"),
        _first(grant, "grantProgramme", "title"),
        countries or None,
        planned_start,
        planned_end,
        jsonb(classifications) if classifications else None,
        jsonb(extra),
    )


def _rows(
    grants: Iterator[tuple[int, Any, dict[str, Any] | None]], field_names: dict[str, str]
) -> Iterator[Row | Rejection]:
    """Rows and rejections for (number, grant, extra) triples, rejecting repeated grant ids.

    Rejections name fields as the submitter wrote them (`field_names`: JSON name -> their name).
    """
    seen: set[str] = set()
    for number, grant, extra in grants:
        if not isinstance(grant, dict):
            yield Rejection(number, None, str(grant)[:200], "a grants entry is not an object")
            continue
        if extra is None:
            extra = {key: value for key, value in grant.items() if key not in _COLUMN_FIELDS}
        try:
            values = grant_values(grant, extra)
        except _GrantRejected as exc:
            name = field_names.get(exc.field, exc.field)
            yield Rejection(number, name, exc.value, f"{name} {exc.problem}")
            continue
        if values[0] in seen:
            yield Rejection(
                number,
                field_names.get("id", "id"),
                values[0],
                "duplicate grant identifier: the same grant appears earlier in this file",
            )
            continue
        seen.add(values[0])
        yield Row(number, values)


def _open_json(path: Path, limits=None):
    """Open for streaming, past a UTF-8 byte-order mark if the publisher's tool wrote one, behind
    the guard that keeps pathological JSON from ijson (issue 13: formats/_bounds.py)."""
    from knowdo.formats._bounds import guarded_json

    return guarded_json(path, limits)


def parse_json(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    found = {"grants": False}

    def events(fh):
        for prefix, event, value in ijson.parse(fh, use_float=False):
            if prefix == "grants" and event == "start_array":
                found["grants"] = True
            yield prefix, event, value

    with _open_json(path, ctx.limits) as fh:
        try:
            grants = ijson.items(events(fh), "grants.item")
            numbered = ((number, grant, None) for number, grant in enumerate(grants, start=1))
            yield from _rows(numbered, {})
        except ijson.JSONError as exc:
            raise FileRejected(f"not valid JSON (truncated or malformed): {exc}") from None
        except UnicodeDecodeError:
            raise FileRejected("not UTF-8 text: 360Giving JSON must be UTF-8") from None
    if not found["grants"]:
        raise FileRejected("no 'grants' array: this is not a 360Giving JSON package")


def _split_heading(heading: str) -> tuple[str, int, str] | None:
    """'Recipient Org:0:Name' -> ('Recipient Org', 0, 'Name'); None when not a known group."""
    parts = [part.strip() for part in heading.split(":")]
    if len(parts) == 2 and parts[0] in _CSV_GROUPS:
        return parts[0], 0, parts[1]
    if len(parts) == 3 and parts[0] in _CSV_GROUPS and _ITEM_NUMBER.match(parts[1]):
        return parts[0], int(parts[1]), parts[2]
    return None


def grant_from_csv(record: dict[str | None, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A spreadsheet record as (grant in the JSON shape, extra cells by column title)."""
    grant: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for heading, cell in record.items():
        if heading is None:  # cells beyond the header
            extra["(cells without a column title)"] = cell
            continue
        if cell is None or not cell.strip():
            continue
        if heading in _CSV_SCALARS:
            grant[_CSV_SCALARS[heading]] = cell
            continue
        split = _split_heading(heading)
        if split is not None:
            group, number, field = split
            name, fields = _CSV_GROUPS[group]
            if field in fields:
                groups.setdefault(name, {}).setdefault(number, {})[fields[field]] = cell
                if name != "classifications":
                    extra[heading] = cell  # keep the whole object, as for JSON
                continue
            if name == "classifications":
                groups.setdefault(name, {}).setdefault(number, {})[field] = cell
                continue
        extra[heading] = cell
    for name, numbered in groups.items():
        grant[name] = [numbered[n] for n in sorted(numbered)]
    return grant, extra


def parse_csv(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    triples = (
        (number, *grant_from_csv(record)) for number, record in records(path, ctx, CSV_REQUIRED)
    )
    yield from _rows(triples, _CSV_FIELD_NAMES)


THREESIXTYGIVING_JSON = FormatSpec(
    name="360giving-json",
    raw_table="raw.threesixtygiving_grants",
    columns=COLUMNS,
    parse=parse_json,
    description='360Giving grants, JSON package ({"grants": [...]})',
    sniff=lambda head: head.lstrip().startswith("{") and '"grants"' in head,
)

THREESIXTYGIVING_CSV = FormatSpec(
    name="360giving-csv",
    raw_table="raw.threesixtygiving_grants",
    columns=COLUMNS,
    parse=parse_csv,
    description="360Giving grants, spreadsheet CSV with the standard's column titles",
    sniff=lambda head: sniff_header(head, CSV_REQUIRED),
)

FORMAT_SPECS = [THREESIXTYGIVING_JSON, THREESIXTYGIVING_CSV]
