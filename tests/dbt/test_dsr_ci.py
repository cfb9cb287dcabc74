"""stats.dsr_ci (directly standardised rate, Dobson's method) against an independent numpy/scipy
computation of PHEindicatormethods' phe_dsr (docs/methods.md), and the standard
population seeds' published weights."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import psycopg
import pytest
from scipy.stats import norm

pytestmark = pytest.mark.integration

ABS_TOL = 1e-6
ESP2013 = [5000, 5500, 5500, 5500, 6000, 6000, 6500, 7000, 7000, 7000,
           7000, 6500, 6000, 5500, 5000, 4000, 2500, 1500, 1000]  # fmt: skip


def byar_limits(observed: float, confidence: float) -> tuple[float, float]:
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    lower = observed * (1 - 1 / (9 * observed) - z / (3 * math.sqrt(observed))) ** 3
    upper = (observed + 1) * (1 - 1 / (9 * (observed + 1)) + z / (3 * math.sqrt(observed + 1))) ** 3
    return lower, upper


def dobson_dsr(events, populations, weights, multiplier, confidence):
    x = np.asarray(events, dtype=float)
    n = np.asarray(populations, dtype=float)
    w = np.asarray(weights, dtype=float)
    observed = x.sum()
    if observed < 10:
        return None, None, None
    dsr = np.sum(x * w / n) / w.sum()
    variance = np.sum(x * (w / n) ** 2) / w.sum() ** 2
    lower_count, upper_count = byar_limits(observed, confidence)
    spread = math.sqrt(variance / observed)
    return (
        dsr * multiplier,
        (dsr + spread * (lower_count - observed)) * multiplier,
        (dsr + spread * (upper_count - observed)) * multiplier,
    )


def call_dsr(connection, events, populations, weights, multiplier=100000, confidence=0.95):
    row = connection.execute(
        "select value, lower, upper, total_events from stats.dsr_ci("
        "%s::numeric[], %s::numeric[], %s::numeric[], %s, %s)",
        (events, populations, weights, multiplier, Decimal(str(confidence))),
    ).fetchone()
    return tuple(None if v is None else float(v) for v in row)


RANDOM = np.random.default_rng(20240601)
CASES = [
    # 19 ESP bands, counts of a few hundred
    (RANDOM.integers(0, 200, 19).tolist(), RANDOM.integers(10000, 20000, 19).tolist(), ESP2013),
    # sparse counts summing just above the threshold
    ([0] * 15 + [1, 2, 3, 4], [5000] * 19, ESP2013),
    # three coarse bands with unequal weights
    ([10, 20, 30], [1000, 2000, 3000], [5000, 5500, 5500]),
    ([1500, 40, 7], [250000, 9000, 1200], [1, 1, 1]),
]


@pytest.mark.parametrize("confidence", [0.95, 0.998])
@pytest.mark.parametrize("multiplier", [100000, 1000])
@pytest.mark.parametrize(("events", "populations", "weights"), CASES)
def test_dsr_ci_matches_dobson(warehouse, events, populations, weights, multiplier, confidence):
    value, lower, upper, total = call_dsr(
        warehouse, events, populations, weights, multiplier, confidence
    )
    expected = dobson_dsr(events, populations, weights, multiplier, confidence)
    assert total == sum(events)
    tolerance = ABS_TOL * max(1, expected[0] / 1000)
    assert value == pytest.approx(expected[0], abs=tolerance)
    assert lower == pytest.approx(expected[1], abs=tolerance)
    assert upper == pytest.approx(expected[2], abs=tolerance)
    assert lower < value < upper


def test_dsr_not_published_below_10_events(warehouse):
    assert call_dsr(warehouse, [3, 6], [1000, 1000], [1, 1]) == (None, None, None, 9.0)


def test_dsr_counts_missing_events_as_zero(warehouse):
    with_null = call_dsr(warehouse, [None, 20, 30], [1000, 2000, 3000], [5000, 5500, 5500])
    with_zero = call_dsr(warehouse, [0, 20, 30], [1000, 2000, 3000], [5000, 5500, 5500])
    assert with_null == with_zero


@pytest.mark.parametrize(
    "arguments",
    [
        "array[10, 20], array[100], array[1, 1]",
        "array[10, 20], array[100, 0], array[1, 1]",
        "array[10, -1], array[100, 100], array[1, 1]",
        "array[]::numeric[], array[]::numeric[], array[]::numeric[]",
    ],
)
def test_dsr_invalid_arguments_raise(warehouse, arguments):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        warehouse.execute(f"select * from stats.dsr_ci({arguments})")


def test_dsr_documents_its_method(warehouse):
    comment = warehouse.execute(
        "select obj_description('stats.dsr_ci(numeric[], numeric[], numeric[], numeric, numeric)'"
        "::regprocedure, 'pg_proc')"
    ).fetchone()[0]
    assert "phe_dsr" in comment and "Dobson" in comment


def test_standard_population_seed_has_the_published_weights(seeds_dir):
    import csv

    with open(seeds_dir / "ref_standard_populations.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    esp = [int(r["weight"]) for r in rows if r["standard_population"] == "esp2013"]
    who = [int(r["weight"]) for r in rows if r["standard_population"] == "who_world_2000_2025"]
    assert esp == ESP2013 and sum(esp) == 100000
    # Ahmad et al. (2001), WHO GPE Discussion Paper 31: the rounded published weights sum to 100,035
    assert len(who) == 21 and sum(who) == 100035 and who[0] == 8860 and who[-1] == 5
