"""The feed-deadline rule, in one place: how long a feed's schedule interval is, how long the period
a file covers lasts (by the shape of its label), and how many days a file may take by default.

Everything else reads what this module computes: the registry writes each feed's interval and
deadline to ops.feeds (`schedule_interval`, `due_within_days`), the loader writes the last day a
file covers to ops.load_batches (`last_day_covered`), and feed health's late-submitter alerts
call it directly. The dbt models (fct_feed_submissions, mart_feed_health) only read those
columns, so the Data health dashboard and the alerts cannot disagree about when a file is due.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

from dateutil.relativedelta import relativedelta

# One interval of each preset schedule (Airflow's presets).
SCHEDULE_INTERVALS = {
    "@daily": relativedelta(days=1),
    "@weekly": relativedelta(days=7),
    "@monthly": relativedelta(months=1),
    "@quarterly": relativedelta(months=3),
    "@yearly": relativedelta(years=1),
    "@annually": relativedelta(years=1),
}
# Days after the end of the period a file covers by which it is due, unless the feed says
# `due_within_days`.
DEFAULT_DUE_DAYS = {
    "@daily": 2,
    "@weekly": 10,
    "@monthly": 45,
    "@quarterly": 60,
    "@yearly": 120,
    "@annually": 120,
}
# A cron schedule gets the default of the preset whose interval its own does not exceed (in days).
_DUE_DAYS_BY_INTERVAL = ((1, 2), (7, 10), (31, 45), (92, 60))
# No schedule (or @once): no file is ever late; the default only fills the registry's column.
DUE_DAYS_UNSCHEDULED = 120

# How long one period lasts, by the shape of its label (after an optional `<scope>:` prefix): every
# DHIS2 period type (knowdo.periods) and the templates' labels. The first match wins.
PERIOD_LENGTHS = (
    (re.compile(r"^\d{8}$"), relativedelta(days=1)),
    (re.compile(r"^\d{4}(Wed|Thu|Sat|Sun)?W\d{1,2}$"), relativedelta(days=7)),
    (re.compile(r"^\d{4}BiW\d{1,2}$"), relativedelta(days=14)),
    (re.compile(r"^(\d{6}|\d{4}-\d{2})$"), relativedelta(months=1)),
    (re.compile(r"^\d{6}B$"), relativedelta(months=2)),
    (re.compile(r"^\d{4}Q[1-4]$"), relativedelta(months=3)),
    (re.compile(r"^\d{4}(April|Nov)?S[12]$"), relativedelta(months=6)),
    (re.compile(r"^\d{4}(April|July|Oct|Nov)?$"), relativedelta(years=1)),
)
_DATE_RANGE = re.compile(r"^(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})$")


class ScheduleError(ValueError):
    """A schedule that is neither a preset nor a cron expression."""


def _cron_interval(schedule: str) -> timedelta:
    from croniter import croniter

    try:
        runs = croniter(schedule, datetime(2026, 1, 1))
    except (ValueError, KeyError):
        raise ScheduleError(
            f"schedule '{schedule}' is neither a cron expression nor one of "
            f"{', '.join(sorted(SCHEDULE_INTERVALS))} (or @once, or none)"
        ) from None
    first = runs.get_next(datetime)
    return runs.get_next(datetime) - first


def schedule_interval(schedule: str | None) -> relativedelta | None:
    """One interval of a feed's schedule; None for no schedule or @once (nothing is ever due)."""
    if not schedule or schedule == "@once":
        return None
    if schedule in SCHEDULE_INTERVALS:
        return SCHEDULE_INTERVALS[schedule]
    return relativedelta(seconds=int(_cron_interval(schedule).total_seconds()))


def interval_literal(interval: relativedelta | None) -> str | None:
    """`interval` as PostgreSQL interval input ('1 mons', '86400 secs'); calendar months and years
    stay calendar months and years (a Python timedelta would turn a month into 30 days)."""
    if interval is None:
        return None
    interval = interval.normalized()
    parts = [
        (interval.years, "years"),
        (interval.months, "mons"),
        (interval.days, "days"),
        (interval.hours * 3600 + interval.minutes * 60 + interval.seconds, "secs"),
    ]
    return " ".join(f"{n} {unit}" for n, unit in parts if n) or "0 secs"


def add_interval(day: date, interval: relativedelta) -> date:
    """`day` + `interval`, truncated to a date: PostgreSQL's `(day + interval)::date`."""
    result = day + interval
    return result.date() if isinstance(result, datetime) else result


def default_due_within_days(schedule: str | None) -> int:
    """The deadline (days after the period a file covers) of a feed that does not set one: its
    schedule's default; a cron schedule is judged by the interval between two of its runs."""
    if schedule in DEFAULT_DUE_DAYS:
        return DEFAULT_DUE_DAYS[schedule]
    if not schedule or schedule == "@once":
        return DUE_DAYS_UNSCHEDULED
    days = _cron_interval(schedule).total_seconds() / 86400
    return next(
        (due for limit, due in _DUE_DAYS_BY_INTERVAL if days <= limit), DUE_DAYS_UNSCHEDULED
    )


def last_day_covered(
    period_start: date | None, label: str | None, schedule: str | None = None
) -> date | None:
    """The last day of the period starting `period_start` whose label is `label`: NHS labels carry
    it; other labels by their shape (PERIOD_LENGTHS); a label of unknown shape is assumed to cover
    one schedule interval. None when it cannot be known."""
    if label:
        bare = label.rsplit(":", 1)[-1]
        if match := _DATE_RANGE.match(bare):
            return date.fromisoformat(match.group(2))
    if period_start is None:
        return None
    bare = (label or "").rsplit(":", 1)[-1]
    length = next((n for pattern, n in PERIOD_LENGTHS if pattern.match(bare)), None)
    length = length or schedule_interval(schedule)
    if length is None:
        return None
    return add_interval(period_start, length) - timedelta(days=1)


def next_due_on(reference: date, schedule: str | None, due_within_days: int) -> date | None:
    """When the file after the one whose data ends on `reference` is due (None: unscheduled)."""
    interval = schedule_interval(schedule)
    if interval is None:
        return None
    return add_interval(reference, interval) + timedelta(days=due_within_days)
