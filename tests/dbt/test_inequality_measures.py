"""stats.inequality_measures (the WHO HEAT set) against an independent numpy implementation of the
formulas in docs/methods.md and WHO's healthequal package (subgroup selection for D, R,
PAR and MDB; SII and RII from an explicit weighted least-squares fit, their CIs from the fit's
sampling covariance hat diag(se^2) hat' and, for RII, the delta method)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import psycopg
import pytest
from scipy.stats import norm

pytestmark = pytest.mark.integration

ABS_TOL = 1e-6
MEASURES = ["d", "r", "sii", "rii", "aci", "rci", "par", "paf", "mdbu", "mdbw", "mdmu", "mdmw",
            "idisu", "idisw", "bgv", "bgsd", "cov", "ti", "mld"]  # fmt: skip
ORDERED_ONLY = {"sii", "rii", "aci", "rci"}
NON_ORDERED_ONLY = {"mdbu", "mdbw", "mdmu", "mdmw", "idisu", "idisw", "bgv", "bgsd", "cov", "ti",
                    "mld"}  # fmt: skip


def heat_reference(y, se, pop, ordered, reference=None, favourable=True, confidence=0.95):
    """measure -> (value, lower, upper), computed without the SQL function's code paths."""
    y, se, pop = (np.asarray(a, dtype=float) for a in (y, se, pop))
    z = norm.ppf(1 - (1 - confidence) / 2)
    n = len(y)
    p = pop / pop.sum()
    mu = float(np.dot(p, y))
    out: dict[str, tuple] = {}
    if ordered:
        first, last = 0, n - 1
        i1, i2 = (last, first) if favourable else (first, last)
    elif reference is not None:
        i1, i2 = (reference, int(np.argmin(y))) if favourable else (int(np.argmax(y)), reference)
    else:
        i1, i2 = int(np.argmax(y)), int(np.argmin(y))
    d = y[i1] - y[i2]
    d_se = np.hypot(se[i1], se[i2])
    out["d"] = (d, d - z * d_se, d + z * d_se)
    r = y[i1] / y[i2]
    lnr_se = np.sqrt((se[i1] / y[i1]) ** 2 + (se[i2] / y[i2]) ** 2)
    out["r"] = (r, r * np.exp(-z * lnr_se), r * np.exp(z * lnr_se))
    if ordered and n > 2:
        x = np.cumsum(p) - p / 2
        # weighted least squares y = b0 + b1 x with weights p, solved as a linear system
        design = np.column_stack([np.ones(n), x])
        weights = np.diag(p)
        hat = np.linalg.solve(design.T @ weights @ design, design.T @ weights)  # beta = hat @ y
        b0, b1 = hat @ y
        # sampling covariance of (b0, b1) from the subgroups' variances: hat diag(se^2) hat'
        beta_cov = hat @ np.diag(se**2) @ hat.T
        sii_se = np.sqrt(beta_cov[1, 1])
        out["sii"] = (b1, b1 - z * sii_se, b1 + z * sii_se)
        if b0 > 0:
            rii = (b0 + b1) / b0
            # delta method: gradient of ln(b0 + b1) - ln(b0) with respect to (b0, b1)
            gradient = np.array([1 / (b0 + b1) - 1 / b0, 1 / (b0 + b1)])
            ln_rii_se = np.sqrt(gradient @ beta_cov @ gradient)
            out["rii"] = (rii, rii * np.exp(-z * ln_rii_se), rii * np.exp(z * ln_rii_se))
        else:
            out["rii"] = None
        aci_weights = p * (2 * x - 1)
        aci = float(aci_weights @ y)
        aci_se = np.sqrt(np.sum(aci_weights**2 * se**2))
        out["aci"] = (aci, aci - z * aci_se, aci + z * aci_se)
        # RCI = ACI / mu, both linear in y: gradient (w_j mu - ACI p_j) / mu^2
        rci_se = np.sqrt(np.sum(((aci_weights * mu - aci * p) / mu**2) ** 2 * se**2))
        rci = aci / mu
        out["rci"] = (rci, rci - z * rci_se, rci + z * rci_se)
    if n > 2:
        best = int(np.argmax(y)) if favourable else int(np.argmin(y))
        y_ref = y[n - 1] if ordered else y[best]
        par = y_ref - mu
        if (favourable and par < 0) or (not favourable and par > 0):
            par = 0.0
        out["par"] = (par, None, None)
        out["paf"] = (100 * par / mu, None, None)
    if not ordered and n > 2:
        y_best = y.max() if favourable else y.min()
        out["mdbu"] = (np.mean(np.abs(y_best - y)), None, None)
        out["mdbw"] = (np.sum(p * np.abs(y_best - y)), None, None)
        mdmu, mdmw = np.mean(np.abs(y - mu)), np.sum(p * np.abs(y - mu))
        out["mdmu"], out["mdmw"] = (mdmu, None, None), (mdmw, None, None)
        out["idisu"], out["idisw"] = (100 * mdmu / mu, None, None), (100 * mdmw / mu, None, None)
        bgv = np.sum(p * (y - mu) ** 2)
        bgv_se = np.sqrt(np.sum(4 * p**2 * (y - mu) ** 2 * se**2))
        out["bgv"] = (bgv, bgv - z * bgv_se, bgv + z * bgv_se)
        out["bgsd"] = (np.sqrt(bgv), None, None)
        out["cov"] = (100 * np.sqrt(bgv) / mu, None, None)
        ratio = y / mu
        with np.errstate(divide="ignore", invalid="ignore"):
            theil_terms = np.where(ratio > 0, ratio * np.log(ratio), 0.0)
        out["ti"] = (1000 * np.sum(p * theil_terms), None, None)
        out["mld"] = (1000 * np.sum(p * -np.log(ratio)), None, None) if (y > 0).all() else None
    return out


def as_float(value):
    return None if value is None else float(value)


def call(connection, y, se, pop, ordered, reference_flags=None, favourable=True, confidence=0.95):
    """Runs stats.inequality_measures; keyword names match the CASES entries."""
    rows = connection.execute(
        "select measure, value, lower, upper, group_1, group_2, method, not_applicable_reason "
        "from stats.inequality_measures(%s::numeric[], %s::numeric[], %s::numeric[], %s, "
        "%s::boolean[], %s, %s)",
        (y, se, pop, ordered, reference_flags, favourable, Decimal(str(confidence))),
    ).fetchall()
    return {
        row[0]: {
            "value": as_float(row[1]),
            "lower": as_float(row[2]),
            "upper": as_float(row[3]),
            "group_1": row[4],
            "group_2": row[5],
            "method": row[6],
            "reason": row[7],
        }
        for row in rows
    }


CASES = {
    # ordered (e.g. IMD quintiles, most deprived first), favourable indicator
    "ordered_favourable": {
        "y": [120.5, 150.2, 171.0, 190.4, 230.9],
        "se": [6.1, 7.0, 7.7, 8.2, 9.5],
        "pop": [21000, 19500, 20500, 18000, 16000],
        "ordered": True,
    },
    # ordered, adverse (lower is better): D and R compare the most disadvantaged with the best off
    "ordered_adverse": {
        "y": [42.0, 35.5, 30.1, 22.8],
        "se": [2.0, 1.8, 1.5, 1.2],
        "pop": [5000, 6000, 6500, 7000],
        "ordered": True,
        "favourable": False,
    },
    # non-ordered without reference (regions): max vs min
    "regions": {
        "y": [310.0, 275.5, 160.25, 95.0],
        "se": [3.1, 2.9, 4.0, 5.2],
        "pop": [5500000, 5400000, 2300000, 1300000],
        "ordered": False,
    },
    # non-ordered with a reference group (ethnicity vs White British), favourable
    "ethnicity_reference": {
        "y": [80.0, 140.0, 60.0, 100.0, 120.0],
        "se": [5, 9, 4, 2, 7],
        "pop": [900, 400, 300, 8000, 500],
        "ordered": False,
        "reference_flags": [False, False, False, True, False],
    },
    # non-ordered with a reference group, adverse: worst (max) vs reference
    "ethnicity_reference_adverse": {
        "y": [80.0, 140.0, 60.0, 100.0, 120.0],
        "se": [5, 9, 4, 2, 7],
        "pop": [900, 400, 300, 8000, 500],
        "ordered": False,
        "reference_flags": [False, False, False, True, False],
        "favourable": False,
    },
    # two groups (sex): only D and R apply
    "sex": {
        "y": [210.0, 150.0],
        "se": [4.0, 3.5],
        "pop": [100000, 98000],
        "ordered": False,
        "reference_flags": [True, False],
    },
    # steep ordered gradient: the fitted line is negative at the disadvantaged end, so no RII
    "ordered_negative_intercept": {
        "y": [10.0, 20.0, 300.0],
        "se": [1.0, 1.5, 6.0],
        "pop": [1000, 1000, 1000],
        "ordered": True,
    },
    # IMD deciles (1 = most deprived), Talking Therapies recovery in percent with binomial
    # standard errors 100 sqrt(p (1 - p) / n), as mart_inequality_measures passes them
    "imd_deciles_recovery": {
        "y": [42.1, 44.0, 45.3, 47.9, 48.2, 50.5, 51.0, 52.7, 53.9, 55.2],
        "se": [1.10, 1.05, 1.02, 1.08, 1.11, 1.07, 1.12, 1.15, 1.13, 1.20],
        "pop": [2015, 2230, 2390, 2140, 2025, 2185, 1990, 1885, 1945, 1710],
        "ordered": True,
    },
    # IMD quintiles, access per 100,000 with Poisson standard errors, 99.8% limits
    "imd_quintiles_access_998": {
        "y": [1850.0, 1712.5, 1640.2, 1590.8, 1495.0],
        "se": [19.8, 18.6, 18.9, 19.5, 20.7],
        "pop": [437000, 495000, 459000, 418000, 349000],
        "ordered": True,
        "confidence": 0.998,
    },
    # 99.8% limits
    "regions_998": {
        "y": [310.0, 275.5, 160.25, 95.0],
        "se": [3.1, 2.9, 4.0, 5.2],
        "pop": [5500000, 5400000, 2300000, 1300000],
        "ordered": False,
        "confidence": 0.998,
    },
}


@pytest.mark.parametrize("case", CASES)
def test_measures_match_independent_implementation(warehouse, case):
    arguments = CASES[case]
    reference_flags = arguments.get("reference_flags")
    reference = reference_flags.index(True) if reference_flags else None
    expected = heat_reference(
        arguments["y"],
        arguments["se"],
        arguments["pop"],
        arguments["ordered"],
        reference,
        arguments.get("favourable", True),
        arguments.get("confidence", 0.95),
    )
    actual = call(
        warehouse,
        arguments["y"],
        arguments["se"],
        arguments["pop"],
        arguments["ordered"],
        reference_flags,
        arguments.get("favourable", True),
        arguments.get("confidence", 0.95),
    )
    assert list(actual) == MEASURES
    for measure in MEASURES:
        row = actual[measure]
        if expected.get(measure) is None:
            assert row["value"] is None, measure
            assert row["reason"], measure
            continue
        value, lower, upper = expected[measure]
        assert row["reason"] is None, measure
        assert row["method"], measure
        assert row["value"] == pytest.approx(value, abs=ABS_TOL), measure
        if lower is None:
            assert (row["lower"], row["upper"]) == (None, None), measure
        else:
            assert row["lower"] == pytest.approx(lower, abs=ABS_TOL), measure
            assert row["upper"] == pytest.approx(upper, abs=ABS_TOL), measure


def test_reasons_name_the_rule_that_excludes_a_measure(warehouse):
    ordered = call(warehouse, **CASES["ordered_favourable"])
    sex = call(warehouse, **CASES["sex"])
    assert {m for m, row in ordered.items() if row["reason"]} == NON_ORDERED_ONLY
    assert all("non-ordered" in ordered[m]["reason"] for m in NON_ORDERED_ONLY)
    assert {m for m, row in sex.items() if row["reason"]} == set(MEASURES) - {"d", "r"}
    assert "ordered dimensions" in sex["sii"]["reason"]
    assert sex["par"]["reason"] == "applies to more than 2 groups"


def test_groups_compared_are_reported(warehouse):
    ordered = call(warehouse, **CASES["ordered_favourable"])
    assert (ordered["d"]["group_1"], ordered["d"]["group_2"]) == (5, 1)
    ethnicity = call(warehouse, **CASES["ethnicity_reference"])
    # favourable with a reference group: the reference (4) against the worst group (3)
    assert (ethnicity["d"]["group_1"], ethnicity["d"]["group_2"]) == (4, 3)
    assert ethnicity["par"]["group_1"] == 2 and ethnicity["mdbu"]["group_1"] == 2


def test_suppressed_group_makes_every_measure_null(warehouse):
    rows = call(warehouse, [10.0, None, 30.0], [1.0, None, 2.0], [100, 100, 100], False)
    assert all(row["value"] is None for row in rows.values())
    assert {row["reason"] for row in rows.values()} == {
        "a group has no published estimate (suppressed or without population)"
    }


def test_zero_estimates(warehouse):
    rows = call(warehouse, [0.0, 20.0, 30.0], [0.0, 2.0, 3.0], [100, 100, 100], False)
    assert rows["r"]["value"] is None and rows["r"]["reason"] == "the estimate of group 2 is 0"
    assert rows["mld"]["value"] is None and rows["mld"]["reason"]
    # 0 ln 0 = 0 in the Theil index
    mu = 50 / 3
    expected_theil = 1000 * sum(y / mu * np.log(y / mu) / 3 for y in (20, 30))
    assert rows["ti"]["value"] == pytest.approx(expected_theil, abs=ABS_TOL)


def test_without_standard_errors_there_are_no_intervals(warehouse):
    rows = call(warehouse, [10.0, 20.0, 30.0], None, [100, 100, 100], False)
    assert rows["d"]["value"] == pytest.approx(20)
    assert all(row["lower"] is None and row["upper"] is None for row in rows.values())


def test_mismatched_arrays_raise(warehouse):
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        call(warehouse, [1.0, 2.0], [1.0, 1.0], [100], False)


# --- the built mart: NHS Talking Therapies by IMD, recomputed from fct_outcomes with numpy --------


def ordered_reference(y, se, pop, confidence=0.95):
    """SII and RII with their CIs for an ordered dimension (most deprived first)."""
    measures = heat_reference(y, se, pop, True, confidence=confidence)
    return {measure: measures[measure] for measure in ("sii", "rii", "d")}


def published_standard_error(kind, numerator, denominator, multiplier):
    if kind == "rate":
        return multiplier * np.sqrt(numerator) / denominator
    share = numerator / denominator
    return multiplier * np.sqrt(share * (1 - share) / denominator)


@pytest.fixture(scope="module")
def built_mart(template_conninfo):
    """The session's template warehouse (tests/dbt/conftest.py): the sample feeds ingested,
    +mart_inequality_measures built by dbt (seeds and models)."""
    with psycopg.connect(template_conninfo, autocommit=True) as connection:
        yield connection


def imd_sets(connection, quintiles: bool):
    """(icb, period, indicator) -> arrays of the deciles (or the quintiles summed from them)."""
    rows = connection.execute(
        "select geography_code, period_start, measure, measure_kind, multiplier, group_order,"
        " numerator, denominator, value from marts_candidate.fct_outcomes"
        " where intervention_code = 'talking_therapies' and stratifier = 'imd_decile'"
        " order by 1, 2, 3, group_order"
    ).fetchall()
    sets: dict[tuple, list] = {}
    for icb, period, measure, kind, multiplier, order, numerator, denominator, value in rows:
        sets.setdefault(
            (icb, period, f"talking_therapies__{measure}", kind, multiplier), []
        ).append((order, numerator, denominator, value))
    out = {}
    for (icb, period, indicator, kind, multiplier), groups in sets.items():
        if any(v is None or n is None or d is None for _, n, d, v in groups):
            out[(icb, period, indicator)] = None  # a suppressed group: no measures
            continue
        numerators = np.array([float(n) for _, n, _, _ in groups])
        denominators = np.array([float(d) for _, _, d, _ in groups])
        if quintiles:
            numerators = numerators.reshape(5, 2).sum(axis=1)
            denominators = denominators.reshape(5, 2).sum(axis=1)
            values = multiplier * numerators / denominators
        else:
            values = np.array([float(v) for *_, v in groups])
        errors = published_standard_error(kind, numerators, denominators, multiplier)
        out[(icb, period, indicator)] = ordered_reference(values, errors, denominators)
    return out


@pytest.mark.parametrize("stratifier", ["imd_decile", "imd_quintile"])
def test_talking_therapies_sii_rii_by_imd_match_numpy(built_mart, stratifier):
    expected = imd_sets(built_mart, quintiles=stratifier == "imd_quintile")
    rows = built_mart.execute(
        "select geography_code, period_start, indicator_code, measure, value, lower_95, upper_95,"
        " not_applicable_reason, arc_code from marts_candidate.mart_inequality_measures"
        " where source_model = 'fct_outcomes' and stratifier = %s"
        " and measure in ('sii', 'rii', 'd')",
        (stratifier,),
    ).fetchall()
    assert len(rows) == 3 * len(expected) > 0
    computed = 0
    for icb, period, indicator, measure, value, lower, upper, reason, arc_code in rows:
        assert arc_code, (icb, period)
        reference = expected[(icb, period, indicator)]
        if reference is None or reference.get(measure) is None:
            assert value is None and reason, (icb, period, indicator, measure)
            continue
        want_value, want_lower, want_upper = reference[measure]
        assert float(value) == pytest.approx(want_value, abs=ABS_TOL), (icb, period, measure)
        assert float(lower) == pytest.approx(want_lower, abs=ABS_TOL), (icb, period, measure)
        assert float(upper) == pytest.approx(want_upper, abs=ABS_TOL), (icb, period, measure)
        computed += 1
    assert computed > 0


def test_ethnicity_is_unordered_so_sii_and_rii_say_why(built_mart):
    rows = built_mart.execute(
        "select measure, value, not_applicable_reason, is_ordered_dimension"
        " from marts_candidate.mart_inequality_measures"
        " where source_model = 'fct_outcomes' and stratifier = 'ethnicity'"
        " and measure in ('sii', 'rii')"
    ).fetchall()
    assert rows
    for measure, value, reason, is_ordered in rows:
        assert value is None and not is_ordered, measure
        assert reason in (
            "applies to ordered dimensions with more than 2 groups",
            "a group has no published estimate (suppressed or without population)",
        )
