from datetime import date

import pytest

from knowdo.periods import PERIOD_TYPES, parse_dhis2_period, parse_period


@pytest.mark.parametrize(
    ("text", "kind", "start", "end"),
    [
        # daily, leap days
        ("20190115", "day", date(2019, 1, 15), date(2019, 1, 15)),
        ("20200229", "day", date(2020, 2, 29), date(2020, 2, 29)),
        # ISO weeks: 2019W1 starts in 2018; 2020 has a week 53 that ends in 2021
        ("2019W1", "week", date(2018, 12, 31), date(2019, 1, 6)),
        ("2019W43", "week", date(2019, 10, 21), date(2019, 10, 27)),
        ("2020W53", "week", date(2020, 12, 28), date(2021, 1, 3)),
        ("2015W53", "week", date(2015, 12, 28), date(2016, 1, 3)),
        # weeks starting on other days: week 1 is the first with >= 4 days in the year
        ("2019WedW1", "week_wednesday", date(2019, 1, 2), date(2019, 1, 8)),
        ("2015WedW5", "week_wednesday", date(2015, 1, 28), date(2015, 2, 3)),
        ("2019ThuW1", "week_thursday", date(2019, 1, 3), date(2019, 1, 9)),
        ("2019SatW1", "week_saturday", date(2018, 12, 29), date(2019, 1, 4)),
        ("2019SunW1", "week_sunday", date(2018, 12, 30), date(2019, 1, 5)),
        # bi-weeks: ISO weeks 2n-1 and 2n
        ("2019BiW1", "biweek", date(2018, 12, 31), date(2019, 1, 13)),
        ("2019BiW3", "biweek", date(2019, 1, 28), date(2019, 2, 10)),
        ("2020BiW27", "biweek", date(2020, 12, 28), date(2021, 1, 10)),
        ("201901", "month", date(2019, 1, 1), date(2019, 1, 31)),
        ("202002", "month", date(2020, 2, 1), date(2020, 2, 29)),
        ("201902", "month", date(2019, 2, 1), date(2019, 2, 28)),
        ("201901B", "bimonth", date(2019, 1, 1), date(2019, 2, 28)),
        ("202001B", "bimonth", date(2020, 1, 1), date(2020, 2, 29)),
        ("201906B", "bimonth", date(2019, 11, 1), date(2019, 12, 31)),
        ("2019Q1", "quarter", date(2019, 1, 1), date(2019, 3, 31)),
        ("2019Q4", "quarter", date(2019, 10, 1), date(2019, 12, 31)),
        ("2019S1", "sixmonth", date(2019, 1, 1), date(2019, 6, 30)),
        ("2019S2", "sixmonth", date(2019, 7, 1), date(2019, 12, 31)),
        ("2019AprilS1", "sixmonth_april", date(2019, 4, 1), date(2019, 9, 30)),
        ("2019AprilS2", "sixmonth_april", date(2019, 10, 1), date(2020, 3, 31)),
        # DHIS2 names a November half-year by the year it ends in
        ("2019NovS1", "sixmonth_november", date(2018, 11, 1), date(2019, 4, 30)),
        ("2019NovS2", "sixmonth_november", date(2019, 5, 1), date(2019, 10, 31)),
        ("2019", "year", date(2019, 1, 1), date(2019, 12, 31)),
        ("2019April", "financial_april", date(2019, 4, 1), date(2020, 3, 31)),
        ("2019July", "financial_july", date(2019, 7, 1), date(2020, 6, 30)),
        ("2015Oct", "financial_october", date(2015, 10, 1), date(2016, 9, 30)),
        ("2019Oct", "financial_october", date(2019, 10, 1), date(2020, 9, 30)),
        ("2019Nov", "financial_november", date(2018, 11, 1), date(2019, 10, 31)),
    ],
)
def test_every_dhis2_period_type(text, kind, start, end):
    period = parse_period(text)
    assert (period.type, period.start, period.end) == (kind, start, end)
    assert parse_dhis2_period(text) == (start, kind)
    assert kind in PERIOD_TYPES


def test_every_period_type_is_covered_by_a_case():
    kinds = {
        parse_period(t).type
        for t in (
            "20190115",
            "2019W1",
            "2019WedW1",
            "2019ThuW1",
            "2019SatW1",
            "2019SunW1",
            "2019BiW1",
            "201901",
            "201901B",
            "2019Q1",
            "2019S1",
            "2019AprilS1",
            "2019NovS1",
            "2019",
            "2019April",
            "2019July",
            "2019Oct",
            "2019Nov",
        )
    }
    assert kinds == set(PERIOD_TYPES)


def test_consecutive_weeks_tile_the_years():
    """Every week type: week 1 of a year follows the last week of the year before, no gap."""
    for prefix in ("", "Wed", "Thu", "Sat", "Sun"):
        for year in range(2014, 2031):
            last = next(
                parse_period(f"{year}{prefix}W{n}")
                for n in (53, 52)
                if _valid(f"{year}{prefix}W{n}")
            )
            first = parse_period(f"{year + 1}{prefix}W1")
            assert (first.start - last.end).days == 1, (prefix, year)


def _valid(text: str) -> bool:
    try:
        parse_period(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize(
    "text",
    [
        "201413",
        "201400",
        "2014Q5",
        "2014Q0",
        "14",
        "2014-01",
        "",
        "20190230",
        "20190229",
        "2019W53",
        "2019W0",
        "2019MonW1",
        "2019BiW27",
        "201907B",
        "2019S3",
        "2019AprilS3",
        "2019NovS0",
        "2019March",
        "2019Sep",
        "2019w1",
        " ",
        "2019W43x",
    ],
)
def test_invalid_periods_are_refused_with_what_was_expected(text):
    with pytest.raises(ValueError, match="DHIS2 period"):
        parse_dhis2_period(text)


def test_the_reason_names_the_impossible_part():
    with pytest.raises(ValueError, match="2019 has 52 such weeks"):
        parse_period("2019W53")
    with pytest.raises(ValueError, match="day is out of range"):
        parse_period("20190229")
