"""knowdo.impact.comparative: the controlled ITS and the change in a gap.

The point estimates and quasi-Poisson intervals are checked against an independent fit written in
this file (iteratively reweighted least squares in numpy, the design built column by column from
the model's formula), then the methods are checked on simulated series with known planted effects:
they recover a planted effect, separate it from a shock shared with the comparison, and cover the
null at about the nominal rate where nothing was planted.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from knowdo.impact.comparative import controlled_its, gap_change
from knowdo.impact.its import interrupted_time_series
from knowdo.impact.table import ColumnError

Z = stats.norm.ppf(0.975)
MONTHS = 36
GO_LIVE = 12  # months 0-11 before, 12-35 from go-live


def _panel(
    rng: np.random.Generator,
    *,
    effect: float = 1.0,
    shared_shock: float = 1.0,
    rates=(0.004, 0.003),
    pops=(200_000, 600_000),
    noise: float = 0.0,
) -> pd.DataFrame:
    """Two monthly series (series 1 = treated / group, 0 = comparison / reference) with a
    population, seasonality, a trend, a shock at go-live in both (`shared_shock`) and a planted
    `effect` in series 1 only."""
    rows = []
    for d, (rate, pop) in zip((1, 0), zip(rates, pops, strict=True), strict=True):
        for t in range(MONTHS):
            post = int(t >= GO_LIVE)
            season = 1 + 0.1 * math.sin(2 * math.pi * (t % 12) / 12)
            mu = pop * rate * season * (1.005**t) * (shared_shock**post)
            if d == 1:
                mu *= effect**post
            mu *= math.exp(rng.normal(0, noise)) if noise else 1.0
            rows.append(
                {
                    "month": t,
                    "calendar_month": t % 12 + 1,
                    "post": post,
                    "series": d,
                    "population": pop,
                    "count": rng.poisson(mu),
                }
            )
    return pd.DataFrame(rows)


def _irls(x: np.ndarray, y: np.ndarray, offset: np.ndarray) -> np.ndarray:
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(y.sum() / np.exp(offset).sum())
    for _ in range(200):
        mu = np.exp(x @ beta + offset)
        z = x @ beta + (y - mu) / mu
        new = np.linalg.solve(x.T @ (x * mu[:, None]), x.T @ (mu * z))
        if np.max(np.abs(new - beta)) < 1e-13:
            return new
        beta = new
    return beta


def test_the_level_change_beyond_the_comparison_matches_an_independent_quasi_poisson_fit():
    data = _panel(np.random.default_rng(7), effect=0.85, shared_shock=1.1)
    result = controlled_its(
        data,
        outcome="count",
        time="month",
        intervention="post",
        treated="series",
        offset="population",
        season="calendar_month",
        harmonics=1,
        family="quasipoisson",
    )
    t, i, d = (data[c].to_numpy(float) for c in ("month", "post", "series"))
    angle = 2 * np.pi * data["calendar_month"].to_numpy(float) / 12
    x = np.column_stack([np.ones(len(t)), t, i, d, d * t, d * i, np.sin(angle), np.cos(angle)])
    y = data["count"].to_numpy(float)
    off = np.log(data["population"].to_numpy(float))
    beta = _irls(x, y, off)
    mu = np.exp(x @ beta + off)
    phi = float(((y - mu) ** 2 / mu).sum() / (len(y) - x.shape[1]))
    cov = phi * np.linalg.inv(x.T @ (x * mu[:, None]))
    se = math.sqrt(cov[5, 5])
    assert not result.autocorrelation["newey_west"]  # the independent fit has no HAC
    assert result.dispersion == pytest.approx(phi, rel=1e-8)
    assert result.level_change.estimate == pytest.approx(math.exp(beta[5]), rel=1e-8)
    assert result.level_change.lower == pytest.approx(math.exp(beta[5] - Z * se), rel=1e-8)
    assert result.level_change.upper == pytest.approx(math.exp(beta[5] + Z * se), rel=1e-8)
    assert result.other_level_change.estimate == pytest.approx(math.exp(beta[2]), rel=1e-8)
    # the rate ratio of the two series at the last month before go-live
    w = np.array([0, 0, 0, 1, GO_LIVE - 1, 0, 0, 0.0])
    assert result.contrast_before.estimate == pytest.approx(math.exp(w @ beta), rel=1e-8)


def test_a_planted_fall_is_recovered_and_told_apart_from_a_shock_the_comparison_shares():
    # 15% fall in the treated series; a 10% rise in both at go-live (a change in recording)
    data = _panel(np.random.default_rng(11), effect=0.85, shared_shock=1.10, pops=(2e6, 6e6))
    cits = controlled_its(
        data,
        outcome="count",
        time="month",
        intervention="post",
        treated="series",
        offset="population",
        season="calendar_month",
    )
    assert cits.level_change.lower < 0.85 < cits.level_change.upper
    assert cits.level_change.upper < 1
    assert cits.other_level_change.lower < 1.10 < cits.other_level_change.upper
    # the treated series alone mixes the two: about 0.85 * 1.10
    alone = interrupted_time_series(
        data[data["series"] == 1],
        outcome="count",
        time="month",
        intervention="post",
        offset="population",
        season="calendar_month",
    )
    assert not alone.level_change.lower < 0.85 < alone.level_change.upper
    assert alone.level_change.lower < 0.85 * 1.10 < alone.level_change.upper
    # the counterfactual keeps the shared shock and leaves out the treated series' own fall
    post = cits.counterfactual[cits.counterfactual["intervention"] == 1]
    ratio = (post["fitted"] / post["counterfactual"]).to_numpy()
    assert ratio == pytest.approx(np.full(len(ratio), cits.level_change.estimate), rel=1e-9)


def test_nothing_is_found_where_nothing_was_planted_at_about_the_nominal_rate():
    rng = np.random.default_rng(2026)
    covered = 0
    runs = 200
    for _ in range(runs):
        data = _panel(rng, effect=1.0, shared_shock=1.05)
        r = controlled_its(
            data,
            outcome="count",
            time="month",
            intervention="post",
            treated="series",
            offset="population",
            season="calendar_month",
            harmonics=1,
        )
        covered += r.level_change.lower <= 1.0 <= r.level_change.upper
    # nominal 95%: 190 of 200 expected; 180 is more than 3 binomial SDs below
    assert covered >= 180, f"the 95% interval covered no effect in only {covered} of {runs} runs"


def test_a_gap_that_go_live_narrowed_is_called_narrowed_with_its_rate_ratios():
    # the group's rate is 3.5 times the reference group's; go-live lowers only the group's by 15%
    data = _panel(np.random.default_rng(5), effect=0.85, rates=(0.0035, 0.001), pops=(3e5, 2.4e6))
    r = gap_change(
        data,
        outcome="count",
        time="month",
        intervention="post",
        group="series",
        offset="population",
    )
    assert r.method == "gap_change"
    assert r.contrast_before.lower < 3.5 < r.contrast_before.upper
    assert r.level_change.lower < 0.85 < r.level_change.upper < 1
    assert r.contrast_after.estimate < r.contrast_before.estimate
    assert r.contrast_after_counterfactual.estimate > r.contrast_after.estimate
    assert r.verdict == "narrowed"
    # the group with the lower rate is told apart by the same rule: a fall there widens the gap
    lower = _panel(np.random.default_rng(6), effect=0.85, rates=(0.001, 0.0035), pops=(2.4e6, 3e5))
    widened = gap_change(
        lower,
        outcome="count",
        time="month",
        intervention="post",
        group="series",
        offset="population",
    )
    assert widened.contrast_before.upper < 1
    assert widened.level_change.upper < 1
    assert widened.verdict == "widened"
    # and labelling the other group as the series of interest gives the reciprocal, same verdict
    r_flipped = gap_change(
        data.assign(series=1 - data["series"]),
        outcome="count",
        time="month",
        intervention="post",
        group="series",
        offset="population",
    )
    assert r_flipped.level_change.estimate == pytest.approx(1 / r.level_change.estimate)
    assert r_flipped.verdict == "narrowed"


def test_no_planted_change_in_the_gap_is_no_clear_change():
    data = _panel(np.random.default_rng(8), effect=1.0, shared_shock=0.9, rates=(0.0035, 0.001))
    r = gap_change(
        data,
        outcome="count",
        time="month",
        intervention="post",
        group="series",
        offset="population",
    )
    assert r.level_change.lower <= 1 <= r.level_change.upper
    assert r.verdict == "no clear change"


def test_autocorrelated_series_get_newey_west_errors_within_series():
    data = _panel(np.random.default_rng(3), effect=0.85, noise=0.0)
    # strong AR(1) multiplicative noise on both series
    rng = np.random.default_rng(4)
    for d in (0, 1):
        e = np.zeros(MONTHS)
        for t in range(1, MONTHS):
            e[t] = 0.8 * e[t - 1] + rng.normal(0, 0.08)
        rows = data["series"] == d
        data.loc[rows, "count"] = np.round(data.loc[rows, "count"] * np.exp(e)).astype(int)
    r = controlled_its(
        data,
        outcome="count",
        time="month",
        intervention="post",
        treated="series",
        offset="population",
    )
    assert r.autocorrelation["newey_west"] is True
    assert r.autocorrelation["newey_west_lags"] >= 1
    assert any("Newey-West" in c for c in r.cautions)


def test_too_short_a_series_gives_no_number_and_says_why():
    data = _panel(np.random.default_rng(1))
    short = data[data["month"] >= GO_LIVE - 5]
    r = controlled_its(short, outcome="count", time="month", intervention="post", treated="series")
    assert r.level_change is None and r.contrast_before is None
    assert r.verdict == "not estimated"
    assert "too short a series: 5 point(s) before" in r.cautions[0]


def test_inputs_that_cannot_be_two_series_around_one_go_live_are_refused_clearly():
    data = _panel(np.random.default_rng(1))
    shifted = data.copy()
    shifted.loc[(shifted["series"] == 0) & (shifted["month"] == GO_LIVE), "post"] = 0
    with pytest.raises(ColumnError, match="same time in both series"):
        controlled_its(
            shifted, outcome="count", time="month", intervention="post", treated="series"
        )
    bad = data.copy()
    bad.loc[0, "series"] = 2
    with pytest.raises(ColumnError, match="'series' must be 0 or 1"):
        controlled_its(bad, outcome="count", time="month", intervention="post", treated="series")
    one = data[data["series"] == 1]
    with pytest.raises(ColumnError, match="two series"):
        controlled_its(one, outcome="count", time="month", intervention="post", treated="series")
    with pytest.raises(ColumnError, match="'treated_flag' is missing"):
        controlled_its(
            data, outcome="count", time="month", intervention="post", treated="treated_flag"
        )
