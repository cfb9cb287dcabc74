"""DHIS2 dataValueSets JSON (Web API `/api/dataValueSets.json`).

The registry mapping turns DHIS2 ids into KnowDo codes:
  data_elements:           {<dataElement uid>: <indicator_code>}
  org_units:               {<orgUnit uid>: <geography_code>}
  category_option_combos:  {<categoryOptionCombo uid>: {sex: F|M, age_band: <code>}}
A value whose ids the mapping does not know is rejected (never guessed).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import ijson

from knowdo.formats import DuplicateKeys, FileRejected, FormatSpec, ParseContext, Rejection, Row
from knowdo.periods import parse_dhis2_period

COLUMNS = (
    "data_element",
    "period",
    "org_unit",
    "category_option_combo",
    "attribute_option_combo",
    "value",
    "deleted",
    "stored_by",
    "last_updated",
    "comment",
    "indicator_code",
    "geography_code",
    "sex_code",
    "age_band_code",
    "period_start",
    "period_type",
)

# What identifies a data value in DHIS2 (its key in the source system).
KEY_FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")
KEY_COLUMNS = ("data_element", "period", "org_unit", "category_option_combo", "attribute_option_combo")
KEY_DESCRIPTION = "dataElement, period, orgUnit, categoryOptionCombo and attributeOptionCombo"

# Header-level fields a dataValueSet may set once for all its values.
_SET_DEFAULTS = ("period", "orgUnit", "attributeOptionCombo")
_SET_FIELDS = _SET_DEFAULTS + ("completeDate",)


def _open_json(path: Path, limits=None, checked: bool = False):
    """Open for streaming, past a UTF-8 byte-order mark if the publisher's tool wrote one, behind
    the guard that keeps pathological JSON from ijson (issue 13: formats/_bounds.py); `checked`:
    a first pass has already read the whole file through the guard."""
    from knowdo.formats._bounds import guarded_json

    if checked:
        fh = path.open("rb")
        if fh.read(3) != b"\xef\xbb\xbf":
            fh.seek(0)
        return fh
    return guarded_json(path, limits)


def _set_defaults(path: Path, limits=None) -> dict[str, str]:
    """Top-level period/orgUnit/attributeOptionCombo, read in a first streaming pass."""
    defaults: dict[str, str] = {}
    with _open_json(path, limits) as fh:
        for prefix, event, value in ijson.parse(fh):
            if prefix in _SET_FIELDS and event in ("string", "number"):
                defaults[prefix] = str(value)
            elif prefix == "dataValues" and event == "start_array":
                defaults["__has_values__"] = "yes"
    return defaults


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1", "yes")


def _parse_timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text))
    except ValueError:
        return None


def map_value(
    item: dict[str, Any], row: int, mapping: dict[str, Any], today: date
) -> Row | list[Rejection]:
    """Validate one dataValue and map its ids; a Row, or the reasons it is rejected."""
    problems: list[Rejection] = []

    def reject(field: str, value: Any, reason: str) -> None:
        problems.append(Rejection(row, field, None if value is None else str(value), reason))

    de = item.get("dataElement")
    indicator = mapping.get("data_elements", {}).get(de)
    if not de:
        reject("dataElement", de, "dataElement is missing")
    elif indicator is None:
        reject("dataElement", de, "unknown dataElement: add it to the feed's mapping.data_elements")

    ou = item.get("orgUnit")
    geography = mapping.get("org_units", {}).get(ou)
    if not ou:
        reject("orgUnit", ou, "orgUnit is missing")
    elif geography is None:
        reject("orgUnit", ou, "unknown orgUnit: add it to the feed's mapping.org_units")

    coc = item.get("categoryOptionCombo")
    cocs = mapping.get("category_option_combos", {})
    strata: dict[str, str] = {}
    if cocs:
        if coc not in cocs:
            reject(
                "categoryOptionCombo", coc,
                "unknown categoryOptionCombo: add it to the feed's mapping.category_option_combos",
            )
        else:
            strata = cocs[coc] or {}

    period_text = item.get("period")
    period_start = period_type = None
    try:
        period_start, period_type = parse_dhis2_period(period_text)
        if period_start > today:
            reject("period", period_text, f"period starts in the future ({period_start.isoformat()})")
    except ValueError as exc:
        reject("period", period_text, str(exc))

    deleted = _as_bool(item.get("deleted", False))
    raw_value = item.get("value")
    number: Decimal | None = None
    if raw_value in (None, "") and not deleted:
        reject("value", raw_value, "value is missing")
    elif raw_value not in (None, ""):
        try:
            number = Decimal(str(raw_value).replace(",", "").strip())
            if not number.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            reject("value", raw_value, "value is not a number")
        else:
            if number < 0:
                reject("value", raw_value, "negative count: service-use values cannot be below 0")

    if problems:
        return problems
    return Row(
        row=row,
        period=period_text,
        period_start=period_start,
        values=(
            de,
            period_text,
            ou,
            coc,
            item.get("attributeOptionCombo"),
            number,
            deleted,
            item.get("storedBy"),
            _parse_timestamp(item.get("lastUpdated") or item.get("created")),
            item.get("comment"),
            indicator,
            geography,
            strata.get("sex"),
            strata.get("age_band"),
            period_start,
            period_type,
        ),
    )


def parse_json(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    mapping, today = ctx.mapping, ctx.today
    try:
        defaults = _set_defaults(path, ctx.limits)
    except ijson.common.IncompleteJSONError as exc:
        raise FileRejected(f"not valid JSON (truncated or malformed): {_first_line(exc)}") from None
    except UnicodeDecodeError:
        raise FileRejected("not UTF-8 text: DHIS2 JSON must be UTF-8") from None
    defaults.pop("completeDate", None)
    if not defaults.pop("__has_values__", None):
        raise FileRejected("no 'dataValues' array: this is not a DHIS2 dataValueSet")
    duplicates = DuplicateKeys(ctx)
    with _open_json(path, ctx.limits, checked=True) as fh:  # _set_defaults read it through the guard
        try:
            for row, item in enumerate(ijson.items(fh, "dataValues.item", use_float=False), start=1):
                if not isinstance(item, dict):
                    yield Rejection(row, None, str(item)[:200], "dataValues entry is not an object")
                    continue
                for key, value in defaults.items():
                    item.setdefault(key, value)
                result = map_value(item, row, mapping, today)
                if isinstance(result, list):
                    yield from result
                    continue
                key = tuple(item.get(k) for k in KEY_FIELDS)
                if (earlier := duplicates.earlier_row(key, row)) is not None:
                    yield Rejection(row, "dataElement", str(item.get("dataElement")),
                                    f"duplicate key: the same {KEY_DESCRIPTION} appear earlier in this "
                                    f"file (row {earlier})")
                    continue
                yield result
        except ijson.common.IncompleteJSONError as exc:
            raise FileRejected(f"not valid JSON (truncated or malformed): {_first_line(exc)}") from None


def submitted_at(path: Path) -> datetime | None:
    """The dataValueSet's completeDate (when the ministry marked the data set complete)."""
    try:
        value = _set_defaults(path).get("completeDate")
    except (ijson.common.IncompleteJSONError, UnicodeDecodeError):
        return None
    parsed = _parse_timestamp(value)
    if parsed is not None and parsed.tzinfo is None:

        parsed = parsed.replace(tzinfo=UTC)
    return parsed


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
)

FORMAT_SPECS = [DHIS2_JSON]
