"""Typing one template record by its contract: every problem of the record, not just the first."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from knowdo.cells import SUPPRESSION_MARKERS, is_suppressed, parse_date, parse_number
from knowdo.contracts.model import CODELISTS_FILE, NUMERIC_TYPES, Column, Contract, Problem
from knowdo.contracts.rules import _evaluate

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^\d{4}$")
# Digits before the point a number may have: bigint holds 18 for integers; 30 is far beyond any
# real amount in any currency.
_MAX_DIGITS = {"integer": 18, "decimal": 30}


# --- validating records ---------------------------------------------------------------------


@dataclass
class ParsedRecord:
    """A record's values typed as the contract says, the columns sent suppressed, the problems."""

    values: dict[str, Any]
    suppressed: list[str]
    problems: list[Problem]


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def _typed(column: Column, text: str, today: date) -> Any:
    """The value of one non-empty cell; ValueError with a plain reason when it is not valid."""

    if "\x00" in text:  # PostgreSQL text cannot hold it; the row, not the load, must fail
        raise ValueError("contains a NUL character (binary data in a text file)")
    if column.type in ("text", "code") and column.max_length and len(text) > column.max_length:
        raise ValueError(f"the text is longer than {column.max_length} characters")
    if column.type == "text":
        if column.pattern and not column.pattern.fullmatch(text):
            raise ValueError(f"'{text}' does not have the expected form ({column.description})")
        return text
    value = text.strip()
    if column.type == "code":
        return value  # codes are checked by _check_code once the whole record is typed
    if column.type in NUMERIC_TYPES:
        try:
            number = parse_number(value)
        except ValueError:
            hint = (
                " (write numbers without units or symbols)" if re.search(r"[%$£€]", value) else ""
            )
            raise ValueError(f"'{text}' is not a number{hint}") from None
        if number and number.adjusted() >= _MAX_DIGITS[column.type]:
            raise ValueError(f"'{text}' is implausibly large")  # and would not fit the column
        if column.type == "integer":
            if number != number.to_integral_value():
                raise ValueError(f"'{text}' is not a whole number")
            number = number.to_integral_value()
        _check_range(column, number, text)
        return int(number) if column.type == "integer" else number
    if column.type == "year":
        if not _YEAR.match(value):
            raise ValueError(f"'{text}' is not a year (expected YYYY, e.g. 2024)")
        year = int(value)
        _check_range(column, Decimal(year), text)
        if column.not_future and year > today.year:
            raise ValueError(f"{year} is in the future (received {today.isoformat()})")
        return year
    if column.type == "month":
        m = _MONTH.match(value)
        if not m:
            raise ValueError(f"'{text}' is not a month (expected YYYY-MM, e.g. 2024-03)")
        start = date(int(m[1]), int(m[2]), 1)
    else:
        start = parse_date(value)
    if column.not_future and start > today:
        raise ValueError(f"'{value}' is in the future (received {today.isoformat()})")
    return start


def _check_range(column: Column, number: Decimal, text: str) -> None:
    if column.min is not None and number < column.min:
        extra = (
            " (a count cannot be negative)" if column.unit == "count" and column.min == 0 else ""
        )
        raise ValueError(f"{text.strip()} is below the minimum of {_fmt(column.min)}{extra}")
    if column.max is not None and number > column.max:
        raise ValueError(f"{text.strip()} is above the maximum of {_fmt(column.max)}")


def _check_code(column: Column, value: str, values: dict[str, Any]) -> str | None:
    if column.pattern and not column.pattern.fullmatch(value):
        return f"'{value}' does not have the expected form ({column.description})"
    if column.allowed is None:
        return None
    codes = column.allowed.codes_for(values)
    if codes is None:
        return None  # the column it depends on is invalid or empty: reported there
    if value in codes:
        return None
    near = [c for c in codes if c.lower() == value.lower()]
    if near:
        return f"'{value}' is not an allowed code: codes are case-sensitive, write '{near[0]}'"
    if column.allowed.within:
        where = f"a group of {column.allowed.within} '{values.get(column.allowed.within)}'"
    elif column.allowed.source.startswith("code list"):
        where = f"in {column.allowed.source} (feeds/contracts/{CODELISTS_FILE})"
    elif column.allowed.source.startswith("seed "):
        close = difflib.get_close_matches(value, codes, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        where = f"a {column.name} in {column.allowed.source}{hint}"
    else:
        where = "an allowed code"
    listing = f" (allowed: {', '.join(sorted(codes, key=_natural))})" if len(codes) <= 12 else ""
    return f"'{value}' is not {where}{listing}"


def _natural(code: str) -> tuple:
    """Sort key putting '2' before '10' in messages."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", code)
        if part
    )


def parse_record(
    contract: Contract, record: dict[Any, str | None], today: date | None = None
) -> ParsedRecord:
    """Type every column of `record` ({column: cell text}); collect every problem, not the first."""

    today = today or date.today()
    values: dict[str, Any] = {}
    suppressed: list[str] = []
    problems: list[Problem] = []
    for column in contract.columns:
        text = record.get(column.name)
        blank = text is None or not text.strip()
        if column.suppressible and is_suppressed(text):
            values[column.name] = None
            suppressed.append(column.name)
            continue
        if blank or (not column.required and text.strip() in SUPPRESSION_MARKERS):
            values[column.name] = None
            if column.required:
                problems.append(Problem(column.name, text, f"{column.name} is required but empty"))
            continue
        if column.required and text.strip() in SUPPRESSION_MARKERS - {""}:
            values[column.name] = None
            problems.append(
                Problem(
                    column.name,
                    text,
                    f"{column.name} is required: "
                    f"'{text.strip()}' (not available) is not allowed here",
                )
            )
            continue
        try:
            values[column.name] = _typed(column, text, today)
        except ValueError as exc:
            values[column.name] = None
            problems.append(Problem(column.name, text, str(exc)))
    for column in contract.columns:
        value = values.get(column.name)
        if (
            column.type == "code"
            and value is not None
            and (reason := _check_code(column, value, values))
        ):
            problems.append(Problem(column.name, value, reason))
    if not problems:
        for rule in contract.rules:
            if rule._when is not None and _evaluate(rule._when, values) is not True:
                continue
            if _evaluate(rule._check, values) is False:
                shown = ", ".join(f"{c}={_show(values.get(c))}" for c in rule.columns)
                problems.append(Problem(",".join(rule.columns), shown, rule.message))
    personal = {c.name for c in contract.columns if c.personal_data}
    if personal:
        problems = [_withheld(p) if p.field in personal else p for p in problems]
    return ParsedRecord(values, suppressed, problems)


def _withheld(problem: Problem) -> Problem:
    """Issue 16: a rejection of a personal-data cell (a quote) keeps its reason, not its text:
    rejections are stored (ops.rejected_rows) and shown."""
    if not problem.value:
        return problem
    return Problem(
        problem.field, f"(withheld: personal data, {len(problem.value)} characters)", problem.reason
    )


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return _fmt(value)
    return "" if value is None else str(value)
