from datetime import date

import pytest

from knowdo.periods import parse_dhis2_period


@pytest.mark.parametrize(("text", "start", "kind"), [
    ("201401", date(2014, 1, 1), "month"),
    ("201412", date(2014, 12, 1), "month"),
    ("2014Q1", date(2014, 1, 1), "quarter"),
    ("2014Q4", date(2014, 10, 1), "quarter"),
    ("2014", date(2014, 1, 1), "year"),
])
def test_dhis2_periods(text, start, kind):
    assert parse_dhis2_period(text) == (start, kind)


@pytest.mark.parametrize("text", ["201413", "2014Q5", "14", "2014-01", "", "2014W1"])
def test_unknown_periods_are_refused(text):
    with pytest.raises(ValueError, match="DHIS2"):
        parse_dhis2_period(text)
