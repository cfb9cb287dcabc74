"""Reporting periods as publishers write them: every DHIS2 fixed period type (ISO period strings).

Definitions follow DHIS2's own period types (dhis2-core `org.hisp.dhis.period`, Web API docs,
"Date and period format"), in the Gregorian calendar:

| type                 | format      | example     | covers                                        |
|----------------------|-------------|-------------|-----------------------------------------------|
| `day`                | yyyyMMdd    | 20190115    | that day                                      |
| `week`               | yyyyWn      | 2019W43     | ISO 8601 week n (Monday to Sunday)            |
| `week_wednesday`     | yyyyWedWn   | 2019WedW5   | week n starting on Wednesday (see below)      |
| `week_thursday`      | yyyyThuWn   | 2019ThuW5   | week n starting on Thursday                   |
| `week_saturday`      | yyyySatWn   | 2019SatW5   | week n starting on Saturday                   |
| `week_sunday`        | yyyySunWn   | 2019SunW5   | week n starting on Sunday                     |
| `biweek`             | yyyyBiWn    | 2019BiW3    | ISO weeks 2n-1 and 2n (14 days)               |
| `month`              | yyyyMM      | 201901      | the month                                     |
| `bimonth`            | yyyyMMB     | 201901B     | months 2n-1 and 2n (01B: Jan-Feb ... 06B)     |
| `quarter`            | yyyyQn      | 2019Q1      | the quarter                                   |
| `sixmonth`           | yyyySn      | 2019S1      | Jan-Jun (S1), Jul-Dec (S2)                    |
| `sixmonth_april`     | yyyyAprilSn | 2019AprilS1 | Apr-Sep (S1), Oct-Mar of the next year (S2)   |
| `sixmonth_november`  | yyyyNovSn   | 2019NovS1   | Nov of yyyy-1 to Apr (S1), May-Oct (S2)       |
| `year`               | yyyy        | 2019        | the calendar year                             |
| `financial_april`    | yyyyApril   | 2019April   | Apr yyyy to Mar yyyy+1                        |
| `financial_july`     | yyyyJuly    | 2019July    | Jul yyyy to Jun yyyy+1                        |
| `financial_october`  | yyyyOct     | 2019Oct     | Oct yyyy to Sep yyyy+1                        |
| `financial_november` | yyyyNov     | 2019Nov     | Nov yyyy-1 to Oct yyyy (named by its end year)|

Weeks starting on another day than Monday follow DHIS2's rule for its weekly types (as ISO 8601
does for Monday): week 1 is the first week, starting on that day, with at least four days in the
year; so it starts on the last such weekday on or before 4 January. A year has 52 or 53 such weeks;
week 53 exists only when the year has it (2020W53 does, 2019W53 does not).
"""

from __future__ import annotations

import re
from calendar import monthrange
from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Period:
    text: str
    type: str
    start: date
    end: date  # last day covered (inclusive)


# weekday the week starts on (Monday 0 ... Sunday 6), by the prefix before W
_WEEK_STARTS = {
    "": ("week", 0),
    "Wed": ("week_wednesday", 2),
    "Thu": ("week_thursday", 3),
    "Sat": ("week_saturday", 5),
    "Sun": ("week_sunday", 6),
}

_DAY = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_MONTH = re.compile(r"^(\d{4})(\d{2})$")
_BIMONTH = re.compile(r"^(\d{4})(\d{2})B$")
_WEEK = re.compile(r"^(\d{4})(Wed|Thu|Sat|Sun)?W(\d{1,2})$")
_BIWEEK = re.compile(r"^(\d{4})BiW(\d{1,2})$")
_QUARTER = re.compile(r"^(\d{4})Q(\d)$")
_SIXMONTH = re.compile(r"^(\d{4})(April|Nov)?S(\d)$")
_YEAR = re.compile(r"^(\d{4})(April|July|Oct|Nov)?$")

_FINANCIAL = {
    "April": ("financial_april", 4, 0),
    "July": ("financial_july", 7, 0),
    "Oct": ("financial_october", 10, 0),
    "Nov": ("financial_november", 11, -1),
}

EXPECTED = (
    "a DHIS2 period: yyyyMMdd, yyyyWn (also WedW, ThuW, SatW, SunW), yyyyBiWn, yyyyMM, yyyyMMB, "
    "yyyyQn, yyyySn, yyyyAprilSn, yyyyNovSn, yyyy, yyyyApril, yyyyJuly, yyyyOct or yyyyNov"
)


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _months(text: str, kind: str, year: int, month: int, count: int) -> Period:
    end_year, end_month = _add_months(year, month, count - 1)
    return Period(
        text,
        kind,
        date(year, month, 1),
        date(end_year, end_month, monthrange(end_year, end_month)[1]),
    )


def week_one_start(year: int, weekday: int) -> date:
    """First day of week 1 of `year` for weeks starting on `weekday` (Monday 0): the last such
    weekday on or before 4 January."""
    jan4 = date(year, 1, 4)
    return jan4 - timedelta(days=(jan4.weekday() - weekday) % 7)


def weeks_in_year(year: int, weekday: int) -> int:
    return (week_one_start(year + 1, weekday) - week_one_start(year, weekday)).days // 7


def parse_period(text: str | None) -> Period:
    """The DHIS2 period `text` (type, first and last day); ValueError naming what was expected."""
    text = (text or "").strip()
    try:
        period = _parse(text)
    except ValueError as exc:  # an impossible date (20190230, 201913): say which
        raise ValueError(f"'{text}' is not a valid DHIS2 period ({exc})") from None
    if period is None:
        raise ValueError(f"'{text}' is not {EXPECTED}")
    return period


def _parse(text: str) -> Period | None:
    if m := _DAY.match(text):
        day = date(int(m[1]), int(m[2]), int(m[3]))
        return Period(text, "day", day, day)
    if m := _MONTH.match(text):
        month = int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(f"month {month} does not exist")
        return _months(text, "month", int(m[1]), month, 1)
    if m := _BIMONTH.match(text):
        n = int(m[2])
        if not 1 <= n <= 6:
            raise ValueError(f"bi-month {n}: bi-months run from 01B to 06B")
        return _months(text, "bimonth", int(m[1]), 2 * n - 1, 2)
    if m := _WEEK.match(text):
        year, n = int(m[1]), int(m[3])
        kind, weekday = _WEEK_STARTS[m[2] or ""]
        if not 1 <= n <= weeks_in_year(year, weekday):
            raise ValueError(f"week {n}: {year} has {weeks_in_year(year, weekday)} such weeks")
        start = week_one_start(year, weekday) + timedelta(weeks=n - 1)
        return Period(text, kind, start, start + timedelta(days=6))
    if m := _BIWEEK.match(text):
        year, n = int(m[1]), int(m[2])
        weeks = weeks_in_year(year, 0)
        if not 1 <= n or 2 * n - 1 > weeks:
            raise ValueError(f"bi-week {n}: {year} has {(weeks + 1) // 2} bi-weeks")
        start = week_one_start(year, 0) + timedelta(weeks=2 * (n - 1))
        return Period(text, "biweek", start, start + timedelta(days=13))
    if m := _QUARTER.match(text):
        n = int(m[2])
        if not 1 <= n <= 4:
            raise ValueError(f"quarter {n} does not exist")
        return _months(text, "quarter", int(m[1]), 3 * n - 2, 3)
    if m := _SIXMONTH.match(text):
        year, base, n = int(m[1]), m[2] or "", int(m[3])
        if n not in (1, 2):
            raise ValueError(f"half {n}: six-monthly periods are S1 or S2")
        if base == "April":
            return _months(text, "sixmonth_april", year, 4 if n == 1 else 10, 6)
        if base == "Nov":  # 2019NovS1: November 2018 to April 2019 (DHIS2 names it by its end)
            return _months(
                text, "sixmonth_november", year - 1 if n == 1 else year, 11 if n == 1 else 5, 6
            )
        return _months(text, "sixmonth", year, 1 if n == 1 else 7, 6)
    if m := _YEAR.match(text):
        year = int(m[1])
        if not m[2]:
            return _months(text, "year", year, 1, 12)
        kind, month, offset = _FINANCIAL[m[2]]
        return _months(text, kind, year + offset, month, 12)
    return None


def parse_dhis2_period(text: str | None) -> tuple[date, str]:
    """(first day, type) of a DHIS2 period; ValueError if it is not one."""
    period = parse_period(text)
    return period.start, period.type


PERIOD_TYPES = (
    "day",
    "week",
    "week_wednesday",
    "week_thursday",
    "week_saturday",
    "week_sunday",
    "biweek",
    "month",
    "bimonth",
    "quarter",
    "sixmonth",
    "sixmonth_april",
    "sixmonth_november",
    "year",
    "financial_april",
    "financial_july",
    "financial_october",
    "financial_november",
)
