"""Reporting periods as publishers write them (DHIS2 ISO periods: 201401, 2014Q1, 2014)."""

from __future__ import annotations

import re
from datetime import date

_MONTH = re.compile(r"^(\d{4})(0[1-9]|1[0-2])$")
_QUARTER = re.compile(r"^(\d{4})Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


def parse_dhis2_period(text: str) -> tuple[date, str]:
    """Start date and type ('month', 'quarter', 'year') of a DHIS2 period; ValueError if unknown."""
    text = (text or "").strip()
    if m := _MONTH.match(text):
        return date(int(m[1]), int(m[2]), 1), "month"
    if m := _QUARTER.match(text):
        return date(int(m[1]), 3 * (int(m[2]) - 1) + 1, 1), "quarter"
    if m := _YEAR.match(text):
        return date(int(m[1]), 1, 1), "year"
    raise ValueError(f"'{text}' is not a DHIS2 monthly (YYYYMM), quarterly (YYYYQn) or yearly (YYYY) period")
