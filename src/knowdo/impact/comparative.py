"""Two series around one go-live: the controlled interrupted time series and the change in a gap.

Both fit one segmented regression to two stacked series that share the go-live time:

    g(E[y_st]) = [log N_st] + b0 + b1*t + b2*I_t + [b3*(t - T0)*I_t]
                 + c0*D_s + c1*D_s*t + d2*D_s*I_t + [d3*D_s*(t - T0)*I_t]
                 + sum_k (s_k sin + c_k cos)(2 pi k m_t / P)

D_s is 1 for the series of interest and 0 for the other, I_t is 0 before go-live and 1 from it,
T0 the last time before go-live. The other series' level and slope change (b2, b3) absorb what
happened to both at go-live (a co-intervention, a change in recording); d2 and d3 are what happened
to the series of interest beyond that.

- **Controlled ITS** (Lopez Bernal, Cummins & Gasparrini 2018): the series of interest is the
  treated site, the other its comparison sites. exp(d2) is the level change relative to the
  comparison.
- **Change in the gap**: the series of interest is a group of a stratifier (e.g. Black adults), the
  other the reference group (White adults), both within the implementing sites. With a population
  offset, exp(c0 + c1*t) is the rate ratio of the group to the reference before go-live, and exp(d2)
  the factor by which go-live changed it: below 1 the ratio fell. Whether the gap *narrowed* depends
  on which side of 1 the ratio was (docs/impact-methods.md).

Conventions as knowdo.impact.its (R's glm; Wald intervals with the normal quantile; quasi-Poisson
scale = Pearson chi-square / (n - p)). Residual autocorrelation is tested within each series
(Breusch-Godfrey on that series' deviance residuals); when either series is autocorrelated the
covariance is Newey-West within series ("hac-panel").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.diagnostic import acorr_breusch_godfrey

from knowdo.impact.its import (
    AUTOCORRELATION_ALPHA,
    FAMILIES,
    HORIZON,
    MIN_POINTS_EACH_SIDE,
    Estimate,
    _family,
)
from knowdo.impact.table import ColumnError, numeric_column

GAP_VERDICTS = ("narrowed", "widened", "no clear change", "not estimated")


@dataclass
class TwoSeriesResult:
    """One two-series segmented regression. Ratios for log-link families, differences for
    gaussian; estimates are None when the data cannot support them (see cautions)."""

    method: str  # "controlled_its" or "gap_change"
    family: str
    n: int
    n_pre: int
    n_post: int
    confidence: float
    dispersion: float | None
    # beyond the other series' change at go-live: the headline numbers
    level_change: Estimate | None
    slope_change: Estimate | None
    # the other series' own change at go-live (comparison sites, or the reference group)
    other_level_change: Estimate | None
    other_slope_change: Estimate | None
    # ratio (difference) of the series of interest to the other at T0 and at T0 + 12,
    # the latter as observed (with the effect) and as it would have been without it
    contrast_before: Estimate | None
    contrast_after: Estimate | None
    contrast_after_counterfactual: Estimate | None
    autocorrelation: dict[str, Any]
    counterfactual: pd.DataFrame | None
    verdict: str | None = None
    cautions: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict | None:
            return None if e is None else e.as_dict()

        return {
            "method": self.method,
            "family": self.family,
            "n": self.n,
            "n_pre": self.n_pre,
            "n_post": self.n_post,
            "confidence": self.confidence,
            "dispersion": self.dispersion,
            "level_change": est(self.level_change),
            "slope_change": est(self.slope_change),
            "other_level_change": est(self.other_level_change),
            "other_slope_change": est(self.other_slope_change),
            "contrast_before": est(self.contrast_before),
            "contrast_after": est(self.contrast_after),
            "contrast_after_counterfactual": est(self.contrast_after_counterfactual),
            "autocorrelation": self.autocorrelation,
            "verdict": self.verdict,
            "cautions": self.cautions,
        }


def _stacked(
    frame: pd.DataFrame,
    outcome: str,
    time: str,
    intervention: str,
    series: str,
    offset: str | None,
    season: str | None,
    family: str,
) -> pd.DataFrame:
    cols = {
        "y": numeric_column(frame, outcome, "outcome"),
        "t": numeric_column(frame, time, "time"),
        "i": numeric_column(frame, intervention, "intervention"),
        "d": numeric_column(frame, series, "series"),
    }
    if offset is not None:
        cols["pop"] = numeric_column(frame, offset, "offset")
    if season is not None:
        cols["season"] = numeric_column(frame, season, "season")
    data = pd.DataFrame(cols)
    for name, column in (("i", intervention), ("d", series)):
        if not data[name].isin([0.0, 1.0]).all():
            bad = data.loc[~data[name].isin([0.0, 1.0]), name].iloc[0]
            raise ColumnError(f"data: column {column!r} must be 0 or 1, found {bad:g}")
    if data["d"].nunique() != 2:
        raise ColumnError(f"data: column {series!r} must mark two series (0 and 1), found one")
    data = data.sort_values(["d", "t"], kind="stable").reset_index(drop=True)
    if data.duplicated(["d", "t"]).any():
        dup = data.loc[data.duplicated(["d", "t"])].iloc[0]
        raise ColumnError(
            f"data: time {dup['t']:g} repeats within series {series} = {dup['d']:g} "
            "(one row per series and time)"
        )
    go_live = data.groupby("d")["i"].apply(lambda s: tuple(s))
    times = data.groupby("d")["t"].apply(lambda s: tuple(s))
    if times[0.0] != times[1.0]:
        raise ColumnError(f"data: the two series of {series!r} must cover the same times")
    if go_live[0.0] != go_live[1.0]:
        raise ColumnError(
            f"data: column {intervention!r} must switch at the same time in both series "
            "(one shared go-live)"
        )
    if (data.groupby("d")["i"].diff().fillna(0) < 0).any():
        raise ColumnError(
            f"data: column {intervention!r} goes back from 1 to 0 in time order; "
            "one go-live is needed (0 before, 1 from it)"
        )
    if family != "gaussian" and (data["y"] < 0).any():
        raise ColumnError(f"data: outcome column {outcome!r} has negative counts ({family})")
    if offset is not None and (data["pop"] <= 0).any():
        raise ColumnError(f"data: offset column {offset!r} must be positive (log population)")
    return data


def _design(data: pd.DataFrame, t0: float, slope: bool, harmonics: int, period: float):
    t, i, d = (data[c].to_numpy() for c in ("t", "i", "d"))
    cols: dict[str, np.ndarray] = {
        "intercept": np.ones(len(data)),
        "time": t,
        "level": i,
    }
    if slope:
        cols["slope"] = (t - t0) * i
    cols |= {"series": d, "series_time": d * t, "series_level": d * i}
    if slope:
        cols["series_slope"] = d * (t - t0) * i
    if "season" in data:
        m = data["season"].to_numpy()
        for kind, fn in (("sin", np.sin), ("cos", np.cos)):
            for k in range(1, harmonics + 1):
                cols[f"{kind}{k}"] = fn(2 * math.pi * k * m / period)
    return np.column_stack(list(cols.values())), list(cols)


def _two_series(
    method: str,
    frame: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str,
    series: str,
    offset: str | None,
    season: str | None,
    harmonics: int,
    period: float,
    slope_change: bool,
    family: str,
    confidence: float,
) -> TwoSeriesResult:
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {', '.join(FAMILIES)}, not {family!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    if offset is not None and family == "gaussian":
        raise ValueError("a population offset needs a log link: use poisson or quasipoisson")
    if season is not None and not 1 <= harmonics <= period / 2:
        raise ValueError(
            f"harmonics must be between 1 and period/2 ({period / 2:g}), not {harmonics}"
        )
    data = _stacked(frame, outcome, time, intervention, series, offset, season, family)
    one = data[data["d"] == 1.0]
    n = len(data)
    n_pre = int((one["i"] == 0).sum())
    n_post = len(one) - n_pre
    result = TwoSeriesResult(
        method, family, n, n_pre, n_post, confidence, None,
        None, None, None, None, None, None, None, {}, None, "not estimated",
    )  # fmt: skip
    if min(n_pre, n_post) < MIN_POINTS_EACH_SIDE:
        result.cautions.append(
            f"too short a series: {n_pre} point(s) before and {n_post} after go-live "
            f"(at least {MIN_POINTS_EACH_SIDE} each side are needed); not estimated"
        )
        return result
    if family != "gaussian":
        empty = [s for s, rows in data.groupby("d") if rows.loc[rows["i"] == 0, "y"].sum() == 0]
        if empty:
            result.cautions.append(
                f"series {series} = {empty[0]:g} has no events before go-live: "
                "no ratio can be estimated"
            )
            return result

    t0 = float(one.loc[one["i"] == 0, "t"].max())
    x, names = _design(data, t0, slope_change, harmonics, period)
    log_offset = np.log(data["pop"].to_numpy()) if offset is not None else None
    y = data["y"].to_numpy()
    model = GLM(y, x, family=_family(family), offset=log_offset)
    scale = 1.0 if family == "poisson" else "X2"
    fit = model.fit(scale=scale)
    p = x.shape[1]
    df_resid = n - p
    dispersion = float(fit.pearson_chi2 / df_resid) if df_resid > 0 else None

    # autocorrelation within each series
    resid = np.asarray(fit.resid_deviance)
    per_series = len(one)
    lags = max(1, math.floor(4 * (per_series / 100) ** (2 / 9)))
    tests = {}
    for value in (0.0, 1.0):
        rows = (data["d"] == value).to_numpy()
        # that series' own segmented design: the columns of the model without the series terms
        own = [j for j, name in enumerate(names) if not name.startswith("series")]
        sub = x[rows][:, own]
        bg = acorr_breusch_godfrey(OLS(resid[rows], sub).fit(), nlags=lags, result_object=True)
        acf1 = float(np.corrcoef(resid[rows][:-1], resid[rows][1:])[0, 1])
        tests["series" if value == 1.0 else "other"] = {
            "statistic": float(bg.fval),
            "p_value": float(bg.fpval),
            "lag1_acf": acf1,
        }
    autocorrelated = min(v["p_value"] for v in tests.values()) < AUTOCORRELATION_ALPHA
    if autocorrelated:
        fit = model.fit(
            scale=scale,
            cov_type="hac-panel",
            cov_kwds={
                "groups": data["d"].to_numpy().astype(int),
                "maxlags": lags,
                "use_correction": "hac",
            },
        )
        result.cautions.append(
            "residuals are autocorrelated within a series (Breusch-Godfrey p = "
            f"{min(v['p_value'] for v in tests.values()):.3g}, order {lags}): "
            f"Newey-West standard errors within series with {lags} lag(s)"
        )
    result.autocorrelation = {
        "test": "breusch-godfrey",
        "order": lags,
        "form": "F",
        **tests,
        "newey_west": autocorrelated,
        "newey_west_lags": lags if autocorrelated else None,
    }
    if family == "poisson" and dispersion is not None and dispersion > 1.5:
        result.cautions.append(
            f"overdispersed counts (Pearson dispersion {dispersion:.2f} > 1.5): "
            "poisson intervals are too narrow; use quasipoisson"
        )

    beta = np.asarray(fit.params)
    cov = np.asarray(fit.cov_params())
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    log_link = family != "gaussian"
    use_t = family != "poisson" and not autocorrelated

    def combination(weights: dict[str, float]) -> Estimate:
        w = np.array([weights.get(name, 0.0) for name in names])
        b, se = float(w @ beta), math.sqrt(float(w @ cov @ w))
        stat = b / se if se > 0 else math.inf
        pv = 2 * (stats.t.sf(abs(stat), df_resid) if use_t else stats.norm.sf(abs(stat)))
        lo, hi = b - z * se, b + z * se
        if log_link:
            return Estimate(math.exp(b), math.exp(lo), math.exp(hi), float(pv))
        return Estimate(b, lo, hi, float(pv))

    result.dispersion = dispersion
    result.level_change = combination({"series_level": 1.0})
    result.other_level_change = combination({"level": 1.0})
    if slope_change:
        result.slope_change = combination({"series_slope": 1.0})
        result.other_slope_change = combination({"slope": 1.0})
    t_after = t0 + HORIZON
    result.contrast_before = combination({"series": 1.0, "series_time": t0})
    after = {"series": 1.0, "series_time": t_after, "series_level": 1.0}
    if slope_change:
        after["series_slope"] = float(HORIZON)
    result.contrast_after = combination(after)
    result.contrast_after_counterfactual = combination({"series": 1.0, "series_time": t_after})
    if t_after not in set(one["t"]):
        result.cautions.append(
            f"no point {HORIZON} periods after the last pre-intervention time ({t0:g}): "
            "the contrast after go-live is extrapolated"
        )

    # the series of interest without its own change at go-live
    x0 = x.copy()
    for name in ("series_level", "series_slope"):
        if name in names:
            x0[:, names.index(name)] = 0.0
    off = log_offset if log_offset is not None else np.zeros(n)
    inv = np.exp if log_link else (lambda v: v)
    eta1, eta0 = x @ beta + off, x0 @ beta + off
    se0 = np.sqrt(np.einsum("ij,jk,ik->i", x0, cov, x0))
    rows = (data["d"] == 1.0).to_numpy()
    result.counterfactual = pd.DataFrame(
        {
            "time": data.loc[rows, "t"].to_numpy(),
            "intervention": data.loc[rows, "i"].astype(int).to_numpy(),
            "observed": y[rows],
            "fitted": inv(eta1[rows]),
            "counterfactual": inv(eta0[rows]),
            "counterfactual_lower": inv(eta0[rows] - z * se0[rows]),
            "counterfactual_upper": inv(eta0[rows] + z * se0[rows]),
        }
    )
    if method == "gap_change":
        result.verdict = _gap_verdict(result, log_link)
    else:
        result.verdict = None
    return result


def _gap_verdict(result: TwoSeriesResult, log_link: bool) -> str:
    """Narrowed when go-live moved the contrast towards no gap (1 for ratios, 0 for differences)
    and the interval of that move excludes no move; widened when it moved away; otherwise no
    clear change."""
    before, change = result.contrast_before, result.level_change
    if before is None or change is None:
        return "not estimated"
    null = 1.0 if log_link else 0.0
    if change.lower <= null <= change.upper:
        return "no clear change"
    moved_down = change.upper < null
    above = before.estimate > null
    if moved_down == above:
        # towards no gap; "narrowed" only if it did not overshoot to a wider gap the other way
        after = result.contrast_after
        if after is not None:
            dist = (lambda v: abs(math.log(v))) if log_link else abs
            if dist(after.estimate) > dist(before.estimate):
                return "widened"
        return "narrowed"
    return "widened"


def controlled_its(
    frame: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str,
    treated: str,
    offset: str | None = None,
    season: str | None = None,
    harmonics: int = 2,
    period: float = 12.0,
    slope_change: bool = False,
    family: str = "quasipoisson",
    confidence: float = 0.95,
) -> TwoSeriesResult:
    """Controlled interrupted time series: one treated series (`treated` = 1) against its
    comparison series (`treated` = 0), stacked, sharing one go-live (`intervention`)."""
    return _two_series(
        "controlled_its",
        frame,
        outcome=outcome,
        time=time,
        intervention=intervention,
        series=treated,
        offset=offset,
        season=season,
        harmonics=harmonics,
        period=period,
        slope_change=slope_change,
        family=family,
        confidence=confidence,
    )


def gap_change(
    frame: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str,
    group: str,
    offset: str | None = None,
    season: str | None = None,
    harmonics: int = 2,
    period: float = 12.0,
    slope_change: bool = False,
    family: str = "quasipoisson",
    confidence: float = 0.95,
) -> TwoSeriesResult:
    """Did the gap change at go-live? A group (`group` = 1) against the reference group
    (`group` = 0) within the implementing sites; with a population `offset`, contrasts are rate
    ratios and `level_change` is the factor by which go-live changed the rate ratio."""
    return _two_series(
        "gap_change",
        frame,
        outcome=outcome,
        time=time,
        intervention=intervention,
        series=group,
        offset=offset,
        season=season,
        harmonics=harmonics,
        period=period,
        slope_change=slope_change,
        family=family,
        confidence=confidence,
    )
