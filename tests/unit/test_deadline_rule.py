"""The feed-deadline rule is written twice: in Python (knowdo.feed_health, for the late-submitter
alerts) and in SQL (fct_feed_submissions and the schedule_interval macro, for the Data health
dashboard). The days a file may take (`due_within_days`) are in one place already: the registry
resolves each feed's default and writes it to ops.feeds, which both read. These tests fail when the
two tables of the rule differ: the interval of each preset schedule, and the length of a period by
the shape of its label (same patterns, same order: the first match wins in both)."""

from __future__ import annotations

import re
from datetime import date

import pytest
from dateutil.relativedelta import relativedelta

from knowdo import feed_health
from tests.conftest import REPO

DBT = REPO / "dbt_project"
_INTERVAL = re.compile(r"^(\d+) (day|month|year)s?$")


def _interval(text: str) -> relativedelta:
    match = _INTERVAL.match(text)
    assert match, f"an interval this test cannot read: {text!r}"
    n, unit = int(match.group(1)), match.group(2)
    return relativedelta(**{f"{unit}s": n})


def sql_schedule_intervals() -> dict[str, relativedelta]:
    macro = (DBT / "macros" / "feeds" / "schedule_interval.sql").read_text(encoding="utf-8")
    found = re.findall(r"when '(@\w+)' then interval '([^']+)'", macro)
    assert found, "no `when '@...' then interval '...'` in schedule_interval.sql"
    return {schedule: _interval(text) for schedule, text in found}


def sql_period_lengths() -> list[tuple[str, relativedelta]]:
    model = (DBT / "models" / "marts" / "ops" / "fct_feed_submissions.sql").read_text(
        encoding="utf-8"
    )
    found = re.findall(r"when last_period_label ~ '([^']+)' then interval '([^']+)'", model)
    assert found, "no `when last_period_label ~ '...' then interval '...'` in fct_feed_submissions"
    return [(pattern, _interval(text)) for pattern, text in found]


def test_every_preset_schedule_has_the_same_interval_in_python_and_sql():
    assert feed_health.SCHEDULE_INTERVALS == sql_schedule_intervals()


def test_period_lengths_by_label_are_the_same_table_in_python_and_sql():
    python = [(p.pattern, length) for p, length in feed_health._PERIOD_LENGTHS]
    assert python == sql_period_lengths()


@pytest.mark.parametrize(
    "label, start, last_day",
    [  # one label of every shape, with a `<scope>:` prefix where the formats use one
        ("20251231", date(2025, 12, 31), date(2025, 12, 31)),
        ("2025W52", date(2025, 12, 22), date(2025, 12, 28)),
        ("2025SunW1", date(2024, 12, 29), date(2025, 1, 4)),
        ("2025BiW3", date(2025, 2, 3), date(2025, 2, 16)),
        ("202502", date(2025, 2, 1), date(2025, 2, 28)),
        ("KD-NGO-0042:GHA:2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("202511B", date(2025, 11, 1), date(2025, 12, 31)),
        ("2025Q4", date(2025, 10, 1), date(2025, 12, 31)),
        ("2025AprilS2", date(2025, 10, 1), date(2026, 3, 31)),
        ("GHA:2025", date(2025, 1, 1), date(2025, 12, 31)),
        ("2025July", date(2025, 7, 1), date(2026, 6, 30)),
        ("2024-04-01/2025-03-31", date(2024, 4, 1), date(2025, 3, 31)),
    ],
)
def test_the_last_day_a_label_covers_matches_the_first_sql_pattern_it_fits(label, start, last_day):
    """Python's last day for every label shape, and the SQL's pattern table (read with Python's
    re: these patterns mean the same in PostgreSQL's) gives the same length to the same label."""
    assert feed_health.last_day_covered(start, label, "@monthly") == last_day
    bare = label.rsplit(":", 1)[-1]
    if "/" in bare:  # NHS: the label carries its own last day, in both
        return
    length = next((n for pattern, n in sql_period_lengths() if re.match(pattern, bare)), None)
    assert length is not None, f"no SQL pattern fits {bare!r}"
    assert start + length - relativedelta(days=1) == last_day
