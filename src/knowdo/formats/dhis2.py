"""DHIS2 dataValueSets JSON (Web API `/api/dataValueSets.json`): the row parser and the DHIS2 rules
shared with the CSV format (the format itself is `dhis2_json`).

The registry mapping turns DHIS2 ids into KnowDo codes:
  data_elements:           {<dataElement uid or code>: <indicator_code>}
                           or {<uid>: {indicator: <code>, code: <DHIS2 code>, value_type: <type>}}
  org_units:               {<orgUnit uid or code>: <geography_code>}
                           or {<uid>: {geography: <code>, code: <DHIS2 code>}}
  category_option_combos:  {<categoryOptionCombo uid or code>: {sex: F|M, age_band: <code>,
                            code: <DHIS2 code>}}
A file exported with idScheme=CODE names things by code: an entry matches its key or its `code`.

A ministry's export spans every programme: a value whose data element, org unit or category
option combo the mapping does not name is *out of scope* (`OutOfScope`, counted per id), not an
error. Rejected are values that are malformed (a missing id, an id that is neither a DHIS2 UID nor
a code, a period that is not a DHIS2 period, a value missing and not deleted) and values of mapped
data elements that cannot be used (future period, a value its value type does not allow). Without
any mapping (`knowdo check` without a feed) the structure alone is checked and every well-formed
value is out of scope.

`value_type` is DHIS2's value type of the data element; by default NUMBER as a count (>= 0).
NUMBER, INTEGER, INTEGER_POSITIVE, INTEGER_ZERO_OR_POSITIVE, PERCENTAGE and UNIT_INTERVAL load as
numbers; BOOLEAN (true/t/1/yes, false/f/0/no) and TRUE_ONLY (true/t/1) as 1 and 0. Any other type
(TEXT, DATE, ...) is rejected per value with the reason, since the marts need numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import ijson

from knowdo.formats.base import (
    DuplicateKeys,
    FileRejected,
    OutOfScope,
    ParseContext,
    Rejection,
    Row,
)
from knowdo.periods import parse_period

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
    "period_end",
)

# What identifies a data value in DHIS2 (its key in the source system).
KEY_FIELDS = ("dataElement", "period", "orgUnit", "categoryOptionCombo", "attributeOptionCombo")
KEY_COLUMNS = (
    "data_element",
    "period",
    "org_unit",
    "category_option_combo",
    "attribute_option_combo",
)
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


# DHIS2 UIDs: 11 characters, a letter then letters or digits; codes: at most 50 characters
_UID = re.compile(r"^[A-Za-z][A-Za-z0-9]{10}$")
_CODE_MAX = 50
_NUMERIC_TYPES = {
    "NUMBER",
    "INTEGER",
    "INTEGER_POSITIVE",
    "INTEGER_ZERO_OR_POSITIVE",
    "PERCENTAGE",
    "UNIT_INTERVAL",
}
_BOOLEAN_TYPES = {"BOOLEAN", "TRUE_ONLY"}
_TRUE_WORDS = {"true", "t", "1", "yes", "y"}
_FALSE_WORDS = {"false", "f", "0", "no", "n"}
VALUE_TYPES = _NUMERIC_TYPES | _BOOLEAN_TYPES


@dataclass(frozen=True)
class Dhis2Mapping:
    """A feed's mapping, each entry reachable by its DHIS2 id and by its code."""

    data_elements: dict[str, tuple[str, str | None]]  # key -> (indicator_code, value_type)
    org_units: dict[str, str]  # key -> geography_code
    combos: dict[str, dict[str, str | None]]  # key -> {sex, age_band}
    given: bool  # False: no mapping at all (structure check only)

    @property
    def check_combos(self) -> bool:
        return bool(self.combos)


def _mapping_error(message: str) -> FileRejected:
    return FileRejected(f"the feed's mapping is not usable: {message}")


def _entries(table: Any, name: str, target: str) -> Iterator[tuple[list[str], dict[str, Any]]]:
    """([keys the entry answers to], entry as a dict) for each entry of mapping.`name`."""
    if table in (None, {}):
        return
    if not isinstance(table, Mapping):
        raise _mapping_error(f"{name} must be a table of DHIS2 ids")
    for key, entry in table.items():
        if isinstance(entry, str) and target:
            entry = {target: entry}
        elif entry is None and not target:
            entry = {}
        if not isinstance(entry, Mapping):
            raise _mapping_error(f"{name}.{key} must be a code or a table")
        keys = [str(key)]
        if entry.get("code"):
            keys.append(str(entry["code"]))
        yield keys, dict(entry)


def mapping_of(mapping: Mapping[str, Any] | Dhis2Mapping | None) -> Dhis2Mapping:
    """The feed's registry mapping, resolved once per file (FileRejected when it is unusable)."""
    if isinstance(mapping, Dhis2Mapping):
        return mapping
    mapping = mapping or {}
    elements: dict[str, tuple[str, str | None]] = {}
    for keys, entry in _entries(mapping.get("data_elements"), "data_elements", "indicator"):
        indicator, value_type = entry.get("indicator"), entry.get("value_type")
        if not isinstance(indicator, str) or not indicator:
            raise _mapping_error(f"data_elements.{keys[0]} has no indicator")
        if value_type is not None:
            value_type = str(value_type).upper()
        for key in keys:
            elements[key] = (indicator, value_type)
    org_units: dict[str, str] = {}
    for keys, entry in _entries(mapping.get("org_units"), "org_units", "geography"):
        geography = entry.get("geography")
        if not isinstance(geography, str) or not geography:
            raise _mapping_error(f"org_units.{keys[0]} has no geography")
        for key in keys:
            org_units[key] = geography
    combos: dict[str, dict[str, str | None]] = {}
    for keys, entry in _entries(
        mapping.get("category_option_combos"), "category_option_combos", ""
    ):
        strata = {"sex": entry.get("sex"), "age_band": entry.get("age_band")}
        for key in keys:
            combos[key] = strata
    return Dhis2Mapping(elements, org_units, combos, given=bool(mapping))


def _id_problem(kind: str, value: Any) -> str | None:
    """Why `value` cannot be a DHIS2 id (UID or code), or None."""
    text = str(value)
    if _UID.match(text):
        return None
    if len(text) > _CODE_MAX:
        return (
            f"{kind} is neither a DHIS2 UID (11 characters) nor a code (at most {_CODE_MAX} "
            f"characters)"
        )
    if any(c.isspace() or not c.isprintable() for c in text):
        return f"{kind} contains spaces or control characters: not a DHIS2 UID or code"
    return None


def _number(raw: Any, value_type: str | None) -> tuple[Decimal | None, str | None]:
    """(number, None) or (None, why the value cannot be used) for the data element's value type."""
    text = str(raw).strip()
    if value_type in _BOOLEAN_TYPES:
        word = text.lower()
        if word in _TRUE_WORDS:
            return Decimal(1), None
        if word in _FALSE_WORDS and value_type == "BOOLEAN":
            return Decimal(0), None
        allowed = "true/t/1/yes" if value_type == "TRUE_ONLY" else "true/t/1/yes or false/f/0/no"
        return None, f"value is not a {value_type} value ({allowed})"
    if value_type is not None and value_type not in _NUMERIC_TYPES:
        return None, (
            f"value type {value_type} cannot be used: KnowDo loads numeric "
            f"({', '.join(sorted(_NUMERIC_TYPES))}) and yes/no (BOOLEAN, TRUE_ONLY) "
            f"data elements; remove it from the feed's mapping"
        )
    try:
        number = Decimal(text.replace(",", ""))
        if not number.is_finite():
            raise InvalidOperation
    except InvalidOperation:
        hint = ""
        if text.lower() in _TRUE_WORDS | _FALSE_WORDS and value_type is None:
            hint = " (a yes/no data element? set its value_type: BOOLEAN in the feed's mapping)"
        return None, f"value is not a number{hint}"
    if value_type and value_type.startswith("INTEGER") and number != number.to_integral_value():
        return None, f"value is not a whole number ({value_type})"
    if number < 0:
        return None, "negative count: service-use values cannot be below 0"
    if value_type == "INTEGER_POSITIVE" and number == 0:
        return None, "value must be above 0 (INTEGER_POSITIVE)"
    if value_type == "UNIT_INTERVAL" and number > 1:
        return None, "value must be between 0 and 1 (UNIT_INTERVAL)"
    if value_type == "PERCENTAGE" and number > 100:
        return None, "value must be between 0 and 100 (PERCENTAGE)"
    return number, None


def map_value(
    item: dict[str, Any], row: int, mapping: Mapping[str, Any] | Dhis2Mapping, today: date
) -> Row | list[Rejection] | OutOfScope:
    """Validate one dataValue and map its ids: a Row, the reasons it is rejected, or OutOfScope
    when the feed does not take it (see the module docstring for which is which)."""
    mapping = mapping_of(mapping)
    problems: list[Rejection] = []

    def reject(field: str, value: Any, reason: str) -> None:
        problems.append(Rejection(row, field, None if value is None else str(value), reason))

    de, ou, coc = item.get("dataElement"), item.get("orgUnit"), item.get("categoryOptionCombo")
    for field, kind, value in (("dataElement", "data element", de), ("orgUnit", "org unit", ou)):
        if not value:
            reject(field, value, f"{field} is missing")
        elif reason := _id_problem(kind, value):
            reject(field, value, reason)
    if coc and (reason := _id_problem("category option combo", coc)):
        reject("categoryOptionCombo", coc, reason)
    if mapping.check_combos and not coc:
        reject("categoryOptionCombo", coc, "categoryOptionCombo is missing")

    period_text = item.get("period")
    period = None
    try:
        period = parse_period(period_text)
    except ValueError as exc:
        reject("period", period_text, str(exc))
    deleted = _as_bool(item.get("deleted", False))
    raw_value = item.get("value")
    if raw_value in (None, "") and not deleted:
        reject("value", raw_value, "value is missing")
    if problems:
        return problems

    element = mapping.data_elements.get(de)
    geography = mapping.org_units.get(ou)
    strata = mapping.combos.get(coc) if mapping.check_combos else {}
    unmapped = tuple(
        (kind, str(value))
        for kind, value, known in (
            ("data_element", de, element),
            ("org_unit", ou, geography),
            ("category_option_combo", coc, strata),
        )
        if known is None
    )
    if unmapped:
        return OutOfScope(row, unmapped)
    indicator, value_type = element

    if period.start > today:
        reject("period", period_text, f"period starts in the future ({period.start.isoformat()})")
    number: Decimal | None = None
    if raw_value not in (None, ""):
        number, why = _number(raw_value, value_type)
        if why:
            reject("value", raw_value, why)

    if problems:
        return problems
    return Row(
        row=row,
        period=period_text,
        period_start=period.start,
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
            period.start,
            period.type,
            period.end,
        ),
    )


def parse_json(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    mapping, today = mapping_of(ctx.mapping), ctx.today
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
    with _open_json(
        path, ctx.limits, checked=True
    ) as fh:  # _set_defaults read it through the guard
        try:
            for row, item in enumerate(
                ijson.items(fh, "dataValues.item", use_float=False), start=1
            ):
                if not isinstance(item, dict):
                    yield Rejection(row, None, str(item)[:200], "dataValues entry is not an object")
                    continue
                for key, value in defaults.items():
                    item.setdefault(key, value)
                result = map_value(item, row, mapping, today)
                if isinstance(result, list):
                    yield from result
                    continue
                if isinstance(result, OutOfScope):
                    yield result
                    continue
                key = tuple(item.get(k) for k in KEY_FIELDS)
                if (earlier := duplicates.earlier_row(key, row)) is not None:
                    yield Rejection(
                        row,
                        "dataElement",
                        str(item.get("dataElement")),
                        f"duplicate key: the same {KEY_DESCRIPTION} appear earlier in this "
                        f"file (row {earlier})",
                    )
                    continue
                yield result
        except ijson.common.IncompleteJSONError as exc:
            raise FileRejected(
                f"not valid JSON (truncated or malformed): {_first_line(exc)}"
            ) from None
