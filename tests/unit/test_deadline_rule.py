"""The feed-deadline rule is written once, in knowdo.schedules. The late-submitter alerts call it;
the Data health dashboard's models read what it computed (ops.feeds.schedule_interval,
ops.load_batches.last_day_covered). These tests pin the rule itself and that the dbt models hold no
copy of it; tests/dbt/test_feed_health.py checks that the mart and the alerts agree feed by feed on
the sample warehouse."""

from __future__ import annotations

from datetime import date

import pytest
from dateutil.relativedelta import relativedelta

from knowdo import schedules
from tests.conftest import REPO

DBT = REPO / "dbt_project"


@pytest.mark.parametrize(
    "schedule, interval, literal",
    [
        ("@daily", relativedelta(days=1), "1 days"),
        ("@weekly", relativedelta(days=7), "7 days"),
        ("@monthly", relativedelta(months=1), "1 mons"),
        ("@quarterly", relativedelta(months=3), "3 mons"),
        ("@yearly", relativedelta(years=1), "1 years"),
        ("@annually", relativedelta(years=1), "1 years"),
        ("0 6 * * 1", relativedelta(days=7), "7 days"),  # weekly cron
        ("0 */6 * * *", relativedelta(hours=6), "21600 secs"),
        (None, None, None),
        ("@once", None, None),
    ],
)
def test_a_schedules_interval_and_how_postgres_receives_it(schedule, interval, literal):
    assert schedules.schedule_interval(schedule) == interval
    assert schedules.interval_literal(schedules.schedule_interval(schedule)) == literal


def test_a_schedule_that_is_neither_preset_nor_cron_is_an_error_naming_it():
    with pytest.raises(schedules.ScheduleError, match="schedule 'every tuesday' is neither"):
        schedules.schedule_interval("every tuesday")


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
        ("2019NovS1", date(2018, 11, 1), date(2019, 4, 30)),
        ("GHA:2025", date(2025, 1, 1), date(2025, 12, 31)),
        ("2025July", date(2025, 7, 1), date(2026, 6, 30)),
        ("2024-04-01/2025-03-31", date(2024, 4, 1), date(2025, 3, 31)),  # NHS: its own last day
    ],
)
def test_the_last_day_a_label_covers(label, start, last_day):
    assert schedules.last_day_covered(start, label, "@daily") == last_day


def test_a_label_of_unknown_shape_covers_one_schedule_interval():
    assert schedules.last_day_covered(date(2026, 1, 31), "odd", "@monthly") == date(2026, 2, 27)
    assert schedules.last_day_covered(date(2026, 1, 1), "odd", "0 */6 * * *") == date(2025, 12, 31)
    assert schedules.last_day_covered(date(2026, 1, 1), "odd", None) is None


def test_next_due_adds_calendar_months_as_postgres_does_and_truncates_to_a_day():
    # (date '2026-01-31' + interval '1 month')::date = 2026-02-28 in PostgreSQL
    assert schedules.next_due_on(date(2026, 1, 31), "@monthly", 45) == date(2026, 4, 14)
    assert schedules.next_due_on(date(2026, 1, 1), "0 */6 * * *", 2) == date(2026, 1, 3)
    assert schedules.next_due_on(date(2026, 1, 1), None, 45) is None


def test_the_dbt_project_holds_no_copy_of_the_rule():
    """The models read ops.feeds.schedule_interval and ops.load_batches.last_day_covered; a
    schedule table or a period-label pattern in SQL would be a second copy that can drift."""
    copies = []
    for path in sorted((DBT / "models").rglob("*.sql")) + sorted((DBT / "macros").rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        if "'@monthly'" in text or r"Q[1-4]" in text or "BiW" in text:
            copies.append(str(path.relative_to(REPO)))
    assert copies == []
