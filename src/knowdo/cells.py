"""What one cell's text means, as publishers write it: numbers, dates, suppression markers.

Shared by the feed formats (knowdo.formats) and the template contracts' record parser
(knowdo.contracts.records); it imports nothing of KnowDo's, so both can sit on top of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

# Cells that mean "not published / not available" in real feeds: never zero.
SUPPRESSION_MARKERS = frozenset({"", "*", "-", "N/A", "NA", "NULL", "n/a", "na", "null", ".", ".."})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$")


def is_suppressed(text: str | None) -> bool:
    return text is None or text.strip() in SUPPRESSION_MARKERS


def parse_number(text: str | None) -> Decimal:
    """A number as publishers write it ('1,234', ' 12.5 ', '-3'); ValueError when it is not one."""
    if text is None:
        raise ValueError("no value")
    cleaned = text.strip().replace("\u00a0", "").replace(" ", "")
    if _THOUSANDS.match(cleaned):
        cleaned = cleaned.replace(",", "")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise ValueError(f"'{text}' is not a number") from None
    if not value.is_finite():
        raise ValueError(f"'{text}' is not a finite number")
    return value


def parse_measure(text: str | None) -> tuple[Decimal | None, bool]:
    """(value, suppressed): suppression markers become (None, True), never zero."""
    if is_suppressed(text):
        return None, True
    return parse_number(text), False


def parse_date(text: str | None, formats: Iterable[str] = ("%Y-%m-%d", "%d/%m/%Y")) -> date:
    """A date in one of `formats` (ISO first, then dd/mm/yyyy); ISO datetimes are accepted too."""
    if not text or not text.strip():
        raise ValueError("no date")
    value = text.strip()
    for fmt in formats:
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            pass
    try:
        return datetime.fromisoformat(value).date()
    except ValueError:
        raise ValueError(f"'{text}' is not a date (expected {' or '.join(formats)})") from None
