"""stats.rate_ci and stats.wilson_ci against independent scipy computations.

The references are the formulas of OHID's PHEindicatormethods (docs/methods.md): exact
Poisson limits from chi-square quantiles below 10 events, Byar's method from 10, and the Wilson
score interval with z = norm.ppf(1 - alpha / 2).
"""

from __future__ import annotations

import math
from decimal import Decimal

import psycopg
import pytest
from scipy.stats import chi2, norm

pytestmark = pytest.mark.integration

CONFIDENCES = [0.95, 0.998]
COUNTS = [*range(10), 10, 11, 25, 100, 999, 12345]
ABS_TOL = 1e-6


def z_for(confidence: float) -> float:
    return float(norm.ppf(1 - (1 - confidence) / 2))


def exact_poisson_limits(observed: int, confidence: float) -> tuple[float, float]:
    alpha = 1 - confidence
    lower = 0.0 if observed == 0 else chi2.ppf(alpha / 2, 2 * observed) / 2
    upper = chi2.ppf(1 - alpha / 2, 2 * observed + 2) / 2
    return float(lower), float(upper)


def byar_limits(observed: int, confidence: float) -> tuple[float, float]:
    z = z_for(confidence)
    lower = observed * (1 - 1 / (9 * observed) - z / (3 * math.sqrt(observed))) ** 3
    upper = (observed + 1) * (1 - 1 / (9 * (observed + 1)) + z / (3 * math.sqrt(observed + 1))) ** 3
    return lower, upper


def wilson_limits(x: float, n: float, confidence: float) -> tuple[float, float]:
    z = z_for(confidence)
    spread = z * math.sqrt(z**2 + 4 * x * (1 - x / n))
    return (2 * x + z**2 - spread) / (2 * (n + z**2)), (2 * x + z**2 + spread) / (2 * (n + z**2))


def fetch(connection: psycopg.Connection, sql: str, params: tuple) -> tuple[float, ...]:
    row = connection.execute(sql, params).fetchone()
    return tuple(float(v) if isinstance(v, Decimal) else v for v in row)


def test_z_values_match_scipy():
    assert z_for(0.95) == pytest.approx(1.959963984540054, abs=1e-12)
    assert z_for(0.998) == pytest.approx(3.090232306167813, abs=1e-12)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize("observed", COUNTS)
def test_rate_ci_count_limits(warehouse, observed, confidence):
    # multiplier 1 and denominator 1: the limits are the limits of the count itself
    value, lower, upper = fetch(
        warehouse,
        "select value, lower, upper from stats.rate_ci(%s, 1, 1, %s)",
        (observed, Decimal(str(confidence))),
    )
    if observed < 10:
        expected = exact_poisson_limits(observed, confidence)
    else:
        expected = byar_limits(observed, confidence)
    assert value == pytest.approx(observed, abs=ABS_TOL)
    assert lower == pytest.approx(expected[0], abs=ABS_TOL)
    assert upper == pytest.approx(expected[1], abs=ABS_TOL)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(
    ("observed", "population"),
    [
        (0, 1300000),
        (3, 494000),
        (9, 10),
        (10, 2500),
        (11, 5400000),
        (100, 100000),
        (12345, 14500000),
    ],
)
def test_rate_ci_rate_per_100000(warehouse, observed, population, confidence):
    value, lower, upper = fetch(
        warehouse,
        "select value, lower, upper from stats.rate_ci(%s, %s, 100000, %s)",
        (observed, population, Decimal(str(confidence))),
    )
    limits = (
        exact_poisson_limits(observed, confidence)
        if observed < 10
        else byar_limits(observed, confidence)
    )
    scale = 100000 / population
    # the tolerance is on the count scale, carried to the rate scale
    tolerance = ABS_TOL * max(scale, 1)
    assert value == pytest.approx(observed * scale, abs=tolerance)
    assert lower == pytest.approx(limits[0] * scale, abs=tolerance)
    assert upper == pytest.approx(limits[1] * scale, abs=tolerance)


def test_rate_ci_defaults_to_per_100000_at_95_percent(warehouse):
    value, lower, upper = fetch(
        warehouse, "select value, lower, upper from stats.rate_ci(%s, %s)", (100, 200000)
    )
    expected_lower, expected_upper = byar_limits(100, 0.95)
    assert value == pytest.approx(50, abs=ABS_TOL)
    assert lower == pytest.approx(expected_lower / 2, abs=ABS_TOL)
    assert upper == pytest.approx(expected_upper / 2, abs=ABS_TOL)


@pytest.mark.parametrize("confidence", CONFIDENCES)
@pytest.mark.parametrize(
    ("x", "n"),
    [
        (0, 1),
        (0, 50),
        (1, 1),
        (1, 10),
        (3, 7),
        (9, 9),
        (10, 100),
        (11, 12),
        (50, 100),
        (100, 12345),
        (12345, 12345),
        (5000, 12345),
    ],
)
def test_wilson_ci(warehouse, x, n, confidence):
    lower, upper = fetch(
        warehouse,
        "select lower, upper from stats.wilson_ci(%s, %s, %s)",
        (x, n, Decimal(str(confidence))),
    )
    expected_lower, expected_upper = wilson_limits(x, n, confidence)
    assert lower == pytest.approx(expected_lower, abs=ABS_TOL)
    assert upper == pytest.approx(expected_upper, abs=ABS_TOL)
    assert 0 <= lower <= x / n <= upper <= 1 + ABS_TOL


def test_wilson_ci_defaults_to_95_percent(warehouse):
    lower, upper = fetch(warehouse, "select lower, upper from stats.wilson_ci(%s, %s)", (30, 120))
    assert (lower, upper) == pytest.approx(wilson_limits(30, 120, 0.95), abs=ABS_TOL)


def test_null_inputs_give_null_limits(warehouse):
    assert fetch(warehouse, "select value, lower, upper from stats.rate_ci(%s, %s)", (5, None)) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    "sql",
    [
        "select * from stats.rate_ci(10, 1000, 100000, 0.99)",
        "select * from stats.rate_ci(5, 1000, 100000, 0.9)",
        "select * from stats.wilson_ci(3, 10, 0.90)",
    ],
)
def test_unsupported_confidence_raises(warehouse, sql):
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="unsupported confidence level"):
        warehouse.execute(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "select * from stats.rate_ci(-1, 1000)",
        "select * from stats.rate_ci(5, 0)",
        "select * from stats.rate_ci(2.5, 1000)",
        "select * from stats.wilson_ci(11, 10)",
        "select * from stats.wilson_ci(1, 0)",
    ],
)
def test_invalid_arguments_raise(warehouse, sql):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        warehouse.execute(sql)


def test_functions_document_their_reference_method(warehouse):
    rows = warehouse.execute(
        """
        select p.proname, obj_description(p.oid, 'pg_proc')
        from pg_proc as p
        join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'stats' and p.proname in ('rate_ci', 'wilson_ci')
        """
    ).fetchall()
    comments = dict(rows)
    assert set(comments) == {"rate_ci", "wilson_ci"}
    assert all("PHEindicatormethods" in (comment or "") for comment in comments.values())


def test_functions_are_immutable(warehouse):
    volatility = warehouse.execute(
        """
        select distinct p.provolatile
        from pg_proc as p
        join pg_namespace as n on n.oid = p.pronamespace
        where n.nspname = 'stats'
        """
    ).fetchall()
    assert volatility == [("i",)]
