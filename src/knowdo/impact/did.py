"""Staggered difference-in-differences: group-time average effects of Callaway & Sant'Anna (2021).

Written here rather than taken from a package: without covariates each ATT(g,t) is a difference of
two means of outcome changes, and its influence function is the two-sample one, so the estimator
is short; the maintained Python ports (csdid, moderndid) bring plotting, packaging and dataframe
stacks into the platform's runtime for it. The code follows what the authors' R package `did`
(2.x) computes by default without covariates (`att_gt(..., xformla = ~1, base_period = "varying")`
with analytical standard errors, `bstrap = FALSE`; `aggte(type = "simple" | "group" | "dynamic")`)
and tests/unit/test_impact_did.py checks it against that package's output on its own example data.

Panel data only (one row per unit and time). Units observed in only some periods are dropped (as
`did` does by default); units treated in or before the first period are dropped (no pre-period);
units first treated after the last period count as never treated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from knowdo.impact.table import ColumnError, numeric_column

CONTROLS = ("never", "not-yet")


@dataclass
class DidResult:
    """ATT(g,t) cells and their aggregations; `None` where an estimate cannot be made."""

    control: str
    n_units: int
    confidence: float
    att_gt: list[dict[str, float]]
    overall: dict[str, dict[str, float] | None]
    event_study: list[dict[str, float]]
    pretrend_p: float | None
    pretrend_wald: float | None
    group_effects: list[dict[str, float]] = field(default_factory=list)
    cautions: list[str] = field(default_factory=list)
    method: str = "did"

    def as_json(self) -> dict[str, Any]:
        return {
            "att_gt": self.att_gt,
            "overall": self.overall,
            "event_study": self.event_study,
            "pretrend_p": self.pretrend_p,
            # beyond the keys the issue fixes
            "method": self.method,
            "control": self.control,
            "n_units": self.n_units,
            "confidence": self.confidence,
            "pretrend_wald": self.pretrend_wald,
            "group_effects": self.group_effects,
            "cautions": self.cautions,
        }


def _panel(
    frame: pd.DataFrame, outcome: str, unit: str, time: str, first_treated: str
) -> tuple[pd.DataFrame, list[str]]:
    data = pd.DataFrame(
        {
            "y": numeric_column(frame, outcome, "outcome"),
            "unit": numeric_column(frame, unit, "unit"),
            "t": numeric_column(frame, time, "time"),
            "g": numeric_column(frame, first_treated, "first-treated"),
        }
    )
    cautions: list[str] = []
    dup = data.duplicated(["unit", "t"])
    if dup.any():
        row = int(dup.to_numpy().nonzero()[0][0])
        raise ColumnError(
            f"data: row {row + 2} repeats unit {data['unit'].iloc[row]:g} at time "
            f"{data['t'].iloc[row]:g} (one row per unit and time)"
        )
    varying = data.groupby("unit")["g"].nunique()
    if (varying > 1).any():
        raise ColumnError(
            f"data: first-treated column {first_treated!r} changes within unit "
            f"{varying[varying > 1].index[0]:g} (it must be one value per unit)"
        )
    if (data["g"] < 0).any():
        raise ColumnError(f"data: first-treated column {first_treated!r} has negative values")
    periods = np.sort(data["t"].unique())
    counts = data.groupby("unit")["t"].nunique()
    partial = counts[counts < len(periods)].index
    if len(partial):
        data = data[~data["unit"].isin(partial)]
        cautions.append(f"{len(partial)} unit(s) not observed in every period were dropped")
    late = data["g"] > periods.max()
    if late.any():
        data.loc[late, "g"] = 0.0
        cautions.append(
            f"{data.loc[late, 'unit'].nunique()} unit(s) first treated after the last period "
            "count as never treated"
        )
    early = (data["g"] > 0) & (data["g"] <= periods.min())
    if early.any():
        cautions.append(
            f"{data.loc[early, 'unit'].nunique()} unit(s) treated in or before the first period "
            "have no pre-period and were dropped"
        )
        data = data[~early]
    return data, cautions


def _wif(keepers: list[int], pg: np.ndarray, unit_g: np.ndarray, cell_g: np.ndarray) -> np.ndarray:
    """Influence of estimating the aggregation weights P(G = g) (did's `wif`)."""
    spg = pg[keepers].sum()
    centered = np.column_stack([(unit_g == cell_g[k]).astype(float) - pg[k] for k in keepers])
    return centered / spg - np.outer(centered.sum(axis=1), pg[keepers] / spg**2)


def _se(influence: np.ndarray) -> float:
    n = len(influence)
    return math.sqrt(float(np.mean(influence**2)) / n)


def staggered_did(
    frame: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    first_treated: str,
    control: str = "never",
    confidence: float = 0.95,
) -> DidResult:
    """ATT(g,t) for every treated group g and period t (varying base period), their simple, group
    and event-time aggregations, and the Wald pre-test of parallel trends."""
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}, not {control!r}")
    data, cautions = _panel(frame, outcome, unit, time, first_treated)
    wide = data.pivot(index="unit", columns="t", values="y").sort_index()
    unit_g = data.groupby("unit")["g"].first().reindex(wide.index).to_numpy()
    tlist = list(wide.columns)
    glist = sorted(g for g in np.unique(unit_g) if g > 0)
    if not glist:
        raise ColumnError(f"data: no unit is ever treated ({first_treated!r} is 0 everywhere)")
    if not (unit_g == 0).any():
        if control == "never":
            raise ColumnError(
                "data: no never-treated unit (first-treated 0): use --control not-yet"
            )
        # as `did`: the last group to be treated serves only as a control, until it is treated
        last = max(glist)
        keep_t = [t for t in tlist if t < last]
        wide = wide[keep_t]
        tlist = keep_t
        glist = [g for g in glist if g < last]
        cautions.append(
            f"no never-treated units: the group first treated at {last:g} is a control only, "
            f"and periods from {last:g} on are not used"
        )
    y = wide.to_numpy(dtype=float)
    n = len(unit_g)
    z = float(stats.norm.ppf(0.5 + confidence / 2))

    cells: list[dict[str, float]] = []
    influence: list[np.ndarray] = []
    for g in glist:
        before = [j for j, t in enumerate(tlist) if t < g]
        if not before:
            cautions.append(f"group {g:g} has no pre-treatment period and was dropped")
            continue
        pret_g = before[-1]
        treated = unit_g == g
        for j in range(1, len(tlist)):
            current = tlist[j]
            pret = pret_g if g <= current else j - 1
            if control == "never":
                ctrl = unit_g == 0
            else:
                ctrl = (unit_g == 0) | ((unit_g > current) & (unit_g != g))
            n_t, n_c = int(treated.sum()), int(ctrl.sum())
            if n_c == 0:
                cautions.append(f"ATT({g:g},{current:g}): no control units; not estimated")
                continue
            change = y[:, j] - y[:, pret]
            mean_t, mean_c = change[treated].mean(), change[ctrl].mean()
            n1 = n_t + n_c
            # drdid_panel's influence function without covariates, rescaled by n/n1 as did does
            inf = np.zeros(n)
            inf[treated] = (change[treated] - mean_t) / (n_t / n1)
            inf[ctrl] = -(change[ctrl] - mean_c) / (n_c / n1)
            inf *= n / n1
            cells.append({"group": float(g), "time": float(current), "att": mean_t - mean_c})
            influence.append(inf)
    if not cells:
        raise ColumnError("data: no group-time effect can be estimated (see the panel's periods)")
    inf_matrix = np.column_stack(influence)
    vcov = inf_matrix.T @ inf_matrix / n
    att = np.array([c["att"] for c in cells])
    se = np.sqrt(np.diag(vcov) / n)
    for cell, s in zip(cells, se, strict=True):
        ok = s > math.sqrt(np.finfo(float).eps) * 10
        cell["se"] = float(s) if ok else None
        cell["lower"] = cell["att"] - z * s if ok else None
        cell["upper"] = cell["att"] + z * s if ok else None

    def interval(estimate: float, s: float) -> dict[str, float]:
        return {"estimate": estimate, "se": s, "lower": estimate - z * s, "upper": estimate + z * s}

    cell_g = np.array([c["group"] for c in cells])
    cell_t = np.array([c["time"] for c in cells])
    pg_of = {g: float(np.mean(unit_g == g)) for g in glist}
    pg = np.array([pg_of[g] for g in cell_g])

    # simple: post-treatment cells weighted by group size
    keep = [k for k in range(len(cells)) if cell_g[k] <= cell_t[k]]
    w = pg[keep] / pg[keep].sum()
    simple = float(att[keep] @ w)
    simple_if = inf_matrix[:, keep] @ w + _wif(keep, pg, unit_g, cell_g) @ att[keep]

    # group: each group's post-treatment average, then weighted by group size
    groups = [g for g in glist if any(cell_g[k] == g for k in keep)]
    att_g, if_g = [], []
    group_rows = []
    for g in groups:
        which = [k for k in keep if cell_g[k] == g]
        att_g.append(float(att[which].mean()))
        if_g.append(inf_matrix[:, which].mean(axis=1))
        group_rows.append((g, att_g[-1], _se(if_g[-1])))
    att_g_arr = np.array(att_g)
    pgg = np.array([pg_of[g] for g in groups])
    if_overall_g = (
        np.column_stack(if_g) @ (pgg / pgg.sum())
        + _wif(list(range(len(groups))), pgg, unit_g, np.array(groups)) @ att_g_arr
    )
    group_overall = float(att_g_arr @ (pgg / pgg.sum()))

    # event study: cells with the same t - g, weighted by group size
    event = cell_t - cell_g
    event_rows, event_if = [], {}
    for e in sorted(set(event)):
        which = [k for k in range(len(cells)) if event[k] == e]
        we = pg[which] / pg[which].sum()
        est = float(att[which] @ we)
        inf_e = inf_matrix[:, which] @ we + _wif(which, pg, unit_g, cell_g) @ att[which]
        event_if[e] = (est, inf_e)
        s = _se(inf_e)
        event_rows.append(
            {"e": float(e), "att": est, "se": s, "lower": est - z * s, "upper": est + z * s}
        )
    post_e = [e for e in event_if if e >= 0]
    dynamic = float(np.mean([event_if[e][0] for e in post_e]))
    dynamic_if = np.mean(np.column_stack([event_if[e][1] for e in post_e]), axis=1)

    # Wald pre-test: all pre-treatment cells jointly zero
    pre = [k for k in range(len(cells)) if cell_g[k] > cell_t[k] and cells[k]["se"] is not None]
    wald = p_value = None
    if not pre:
        cautions.append("no pre-treatment cells: parallel trends cannot be tested")
    else:
        pre_v = vcov[np.ix_(pre, pre)]
        if 1 / np.linalg.cond(pre_v, 1) <= np.finfo(float).eps:
            cautions.append("pre-treatment covariance is singular: no pre-trend test")
        else:
            a = att[pre]
            wald = float(n * a @ np.linalg.solve(pre_v, a))
            p_value = float(stats.chi2.sf(wald, len(pre)))
            if p_value < 0.05:
                cautions.append(
                    f"pre-trend test rejects parallel trends (p = {p_value:.3g}): "
                    "the effects may be biased"
                )

    return DidResult(
        control=control,
        n_units=n,
        confidence=confidence,
        att_gt=cells,
        overall={
            "simple": interval(simple, _se(simple_if)),
            "group": interval(group_overall, _se(if_overall_g)),
            "dynamic": interval(dynamic, _se(dynamic_if)),
        },
        group_effects=[{"group": float(g), **interval(a, s)} for g, a, s in group_rows],
        event_study=event_rows,
        pretrend_p=p_value,
        pretrend_wald=wald,
        cautions=cautions,
    )
