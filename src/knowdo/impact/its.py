"""Interrupted time series: segmented regression of a series around one go-live.

    g(E[y_t]) = [log N_t] + b0 + b1*t + b2*I_t + b3*(t - T0)*I_t
                + sum_k (s_k sin + c_k cos)(2 pi k m_t / P)

I_t is 0 before go-live and 1 from it, T0 the last time before go-live, m_t the season (month), log
N_t the optional population offset. Families as R's glm: poisson (scale 1), quasipoisson (scale =
Pearson chi-square / (n - p)) and gaussian (identity link). Fitted with statsmodels' GLM; Wald
intervals use the normal quantile (R's confint.default / Epi::ci.lin); p-values use the normal
distribution for poisson and Student's t on n - p degrees of freedom for the families whose scale is
estimated, as R's summary.glm does. When the residuals are autocorrelated (Breusch-Godfrey) the
standard errors are Newey-West (HAC). docs/impact-methods.md says how to read each number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM
from statsmodels.regression.linear_model import OLS
from statsmodels.stats.diagnostic import acorr_breusch_godfrey

from knowdo.impact.table import ColumnError, numeric_column

FAMILIES = ("poisson", "quasipoisson", "gaussian")
MIN_POINTS_EACH_SIDE = 8  # common guidance for segmented regression (docs/impact-methods.md)
HORIZON = 12  # the effect is reported 12 periods after the last pre-intervention period
AUTOCORRELATION_ALPHA = 0.05


@dataclass(frozen=True)
class Estimate:
    estimate: float
    lower: float
    upper: float
    p_value: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "estimate": self.estimate,
            "lower": self.lower,
            "upper": self.upper,
            "p_value": self.p_value,
        }


@dataclass
class ItsResult:
    """One segmented regression. Ratios (exp of the coefficient) for log-link families,
    differences for gaussian. Estimates are None when the series is too short (see cautions)."""

    family: str
    n: int
    n_pre: int
    n_post: int
    confidence: float
    dispersion: float | None
    level_change: Estimate | None
    slope_change: Estimate | None
    trend: Estimate | None
    autocorrelation: dict[str, Any]
    effect_12: dict[str, Any] | None
    counterfactual: pd.DataFrame | None
    coefficients: dict[str, float] = field(default_factory=dict)
    std_errors: dict[str, float] = field(default_factory=dict)
    cautions: list[str] = field(default_factory=list)
    method: str = "its"

    def as_json(self) -> dict[str, Any]:
        def est(e: Estimate | None) -> dict | None:
            return None if e is None else e.as_dict()

        return {
            "method": self.method,
            "family": self.family,
            "n": self.n,
            "dispersion": self.dispersion,
            "level_change": est(self.level_change),
            "slope_change": est(self.slope_change),
            "trend": est(self.trend),
            "autocorrelation": self.autocorrelation,
            # beyond the keys the issue fixes: the effect 12 periods on and the reasons to be
            # careful
            "n_pre": self.n_pre,
            "n_post": self.n_post,
            "confidence": self.confidence,
            "effect_12": self.effect_12,
            "cautions": self.cautions,
        }


def _series(
    frame: pd.DataFrame,
    outcome: str,
    time: str,
    intervention: str,
    offset: str | None,
    season: str | None,
    family: str,
) -> pd.DataFrame:
    cols = {
        "y": numeric_column(frame, outcome, "outcome"),
        "t": numeric_column(frame, time, "time"),
        "i": numeric_column(frame, intervention, "intervention"),
    }
    if offset is not None:
        cols["pop"] = numeric_column(frame, offset, "offset")
    if season is not None:
        cols["season"] = numeric_column(frame, season, "season")
    data = pd.DataFrame(cols).sort_values("t", kind="stable").reset_index(drop=True)
    if not data["i"].isin([0.0, 1.0]).all():
        bad = data.loc[~data["i"].isin([0.0, 1.0]), "i"].iloc[0]
        raise ColumnError(f"data: intervention column {intervention!r} must be 0 or 1, found {bad}")
    if data["t"].duplicated().any():
        dup = data.loc[data["t"].duplicated(), "t"].iloc[0]
        raise ColumnError(
            f"data: time column {time!r} repeats the value {dup:g} (one row per time)"
        )
    if (data["i"].diff().fillna(0) < 0).any():
        raise ColumnError(
            f"data: intervention column {intervention!r} goes back from 1 to 0 in time order; "
            "a segmented regression needs one go-live (0 before, 1 from it)"
        )
    if family != "gaussian" and (data["y"] < 0).any():
        raise ColumnError(f"data: outcome column {outcome!r} has negative counts ({family})")
    if offset is not None and (data["pop"] <= 0).any():
        raise ColumnError(f"data: offset column {offset!r} must be positive (log population)")
    return data


def _design(data: pd.DataFrame, t0: float, slope: bool, harmonics: int, period: float):
    names = ["intercept", "time", "level"]
    columns = [np.ones(len(data)), data["t"].to_numpy(), data["i"].to_numpy()]
    if slope:
        names.append("slope")
        columns.append((data["t"].to_numpy() - t0) * data["i"].to_numpy())
    if "season" in data:
        m = data["season"].to_numpy()
        for kind, fn in (("sin", np.sin), ("cos", np.cos)):
            for k in range(1, harmonics + 1):
                names.append(f"{kind}{k}")
                columns.append(fn(2 * math.pi * k * m / period))
    return np.column_stack(columns), names


def _family(family: str):
    return families.Gaussian() if family == "gaussian" else families.Poisson()


def interrupted_time_series(
    frame: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    intervention: str,
    offset: str | None = None,
    season: str | None = None,
    harmonics: int = 2,
    period: float = 12.0,
    slope_change: bool = False,
    family: str = "quasipoisson",
    confidence: float = 0.95,
) -> ItsResult:
    """Segmented regression of `outcome` on `time` with a level change at go-live (and a slope
    change with `slope_change`), harmonic seasonality on `season`, and a log `offset`."""
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
    data = _series(frame, outcome, time, intervention, offset, season, family)
    n = len(data)
    n_pre = int((data["i"] == 0).sum())
    n_post = n - n_pre
    cautions: list[str] = []
    empty = ItsResult(family, n, n_pre, n_post, confidence, None, None, None, None, {}, None, None)
    if n_pre == 0 or n_post == 0:
        empty.cautions.append(
            f"no {'pre' if n_pre == 0 else 'post'}-intervention points: nothing to compare"
        )
        return empty
    if min(n_pre, n_post) < MIN_POINTS_EACH_SIDE:
        empty.cautions.append(
            f"too short a series: {n_pre} point(s) before and {n_post} after go-live "
            f"(at least {MIN_POINTS_EACH_SIDE} each side are needed); not estimated"
        )
        return empty

    if family != "gaussian" and (data.loc[data["i"] == 0, "y"].sum() == 0 or data["y"].sum() == 0):
        empty.cautions.append(
            "no events before go-live: a ratio to a count of zero cannot be estimated"
        )
        return empty

    t0 = float(data.loc[data["i"] == 0, "t"].max())
    x, names = _design(data, t0, slope_change, harmonics, period)
    log_offset = np.log(data["pop"].to_numpy()) if offset is not None else None
    y = data["y"].to_numpy()
    model = GLM(y, x, family=_family(family), offset=log_offset)
    scale = 1.0 if family == "poisson" else "X2"
    fit = model.fit(scale=scale)
    p = x.shape[1]
    df_resid = n - p
    dispersion = float(fit.pearson_chi2 / df_resid) if df_resid > 0 else None

    # residual autocorrelation: Breusch-Godfrey on the deviance residuals, order = the Newey-West
    # lag, in its F form (R's lmtest::bgtest(type = "F")): the chi-square (LM) form rejects far too
    # often in series of a few dozen points with seasonal terms (22% at 5% on 36 independent
    # months in tests/unit/test_impact_its.py's simulation; the F form about half that)
    resid = np.asarray(fit.resid_deviance)
    nw_lags = max(1, math.floor(4 * (n / 100) ** (2 / 9)))
    bg = acorr_breusch_godfrey(OLS(resid, x).fit(), nlags=nw_lags, result_object=True)
    bg_p = float(bg.fpval)
    acf1 = float(np.corrcoef(resid[:-1], resid[1:])[0, 1])
    autocorrelated = bg_p < AUTOCORRELATION_ALPHA
    if autocorrelated:
        # with the small-sample factor n / (n - p) (sandwich::NeweyWest(adjust = TRUE))
        fit = model.fit(
            scale=scale,
            cov_type="HAC",
            cov_kwds={"maxlags": nw_lags, "use_correction": True},
        )
        cautions.append(
            f"residuals are autocorrelated (Breusch-Godfrey p = {bg_p:.3g}, order {nw_lags}): "
            f"Newey-West standard errors with {nw_lags} lag(s)"
        )
    autocorrelation = {
        "test": "breusch-godfrey",
        "order": nw_lags,
        "form": "F",
        "statistic": float(bg.fval),
        "p_value": bg_p,
        "lag1_acf": acf1,
        "newey_west": autocorrelated,
        "newey_west_lags": nw_lags if autocorrelated else None,
    }
    if family == "poisson" and dispersion is not None and dispersion > 1.5:
        cautions.append(
            f"overdispersed counts (Pearson dispersion {dispersion:.2f} > 1.5): "
            "poisson intervals are too narrow; use quasipoisson"
        )

    beta = np.asarray(fit.params)
    cov = np.asarray(fit.cov_params())
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    log_link = family != "gaussian"
    use_t = family != "poisson" and not autocorrelated

    def coefficient(j: int) -> Estimate:
        b, se = float(beta[j]), math.sqrt(cov[j, j])
        stat = b / se
        pv = 2 * (stats.t.sf(abs(stat), df_resid) if use_t else stats.norm.sf(abs(stat)))
        lo, hi = b - z * se, b + z * se
        if log_link:
            return Estimate(math.exp(b), math.exp(lo), math.exp(hi), float(pv))
        return Estimate(b, lo, hi, float(pv))

    level = coefficient(names.index("level"))
    slope = coefficient(names.index("slope")) if slope_change else None
    trend = coefficient(names.index("time"))

    # counterfactual: the same rows with the intervention terms switched off
    x0 = x.copy()
    for name in ("level", "slope"):
        if name in names:
            x0[:, names.index(name)] = 0.0
    off = log_offset if log_offset is not None else np.zeros(n)
    inv = np.exp if log_link else (lambda v: v)
    eta1, eta0 = x @ beta + off, x0 @ beta + off
    se0 = np.sqrt(np.einsum("ij,jk,ik->i", x0, cov, x0))
    counterfactual = pd.DataFrame(
        {
            "time": data["t"],
            "intervention": data["i"].astype(int),
            "observed": y,
            "fitted": inv(eta1),
            "counterfactual": inv(eta0),
            "counterfactual_lower": inv(eta0 - z * se0),
            "counterfactual_upper": inv(eta0 + z * se0),
        }
    )

    effect_12 = None
    at = data.index[data["t"] == t0 + HORIZON]
    if len(at) == 0:
        cautions.append(
            f"no point {HORIZON} periods after the last pre-intervention time ({t0:g}): "
            "no effect at 12 months"
        )
    else:
        r = int(at[0])
        mu1, mu0 = float(inv(eta1[r])), float(inv(eta0[r]))
        if log_link:
            grad_abs = mu1 * x[r] - mu0 * x0[r]
            d = x[r] - x0[r]
            log_ratio, se_lr = float(d @ beta), math.sqrt(float(d @ cov @ d))
            relative = {
                "estimate": math.exp(log_ratio) - 1,
                "lower": math.exp(log_ratio - z * se_lr) - 1,
                "upper": math.exp(log_ratio + z * se_lr) - 1,
            }
        else:
            grad_abs = x[r] - x0[r]
            grad_rel = x[r] / mu0 - mu1 * x0[r] / mu0**2
            se_rel = math.sqrt(float(grad_rel @ cov @ grad_rel))
            rel = mu1 / mu0 - 1
            relative = {"estimate": rel, "lower": rel - z * se_rel, "upper": rel + z * se_rel}
        se_abs = math.sqrt(float(grad_abs @ cov @ grad_abs))
        absolute = mu1 - mu0
        effect_12 = {
            "time": float(data.loc[r, "t"]),
            "observed": float(y[r]),
            "fitted": mu1,
            "counterfactual": mu0,
            "counterfactual_lower": float(inv(eta0[r] - z * se0[r])),
            "counterfactual_upper": float(inv(eta0[r] + z * se0[r])),
            "absolute": {
                "estimate": absolute,
                "lower": absolute - z * se_abs,
                "upper": absolute + z * se_abs,
            },
            "relative": relative,
        }

    return ItsResult(
        family=family,
        n=n,
        n_pre=n_pre,
        n_post=n_post,
        confidence=confidence,
        dispersion=dispersion,
        level_change=level,
        slope_change=slope,
        trend=trend,
        autocorrelation=autocorrelation,
        effect_12=effect_12,
        counterfactual=counterfactual,
        coefficients=dict(zip(names, map(float, beta), strict=True)),
        std_errors={name: math.sqrt(cov[j, j]) for j, name in enumerate(names)},
        cautions=cautions,
    )
