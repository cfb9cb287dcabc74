"""Every implementation in the registry, evaluated: the rows of the impact marts.

`evaluate(implementations, series)` takes the implementations (project, intervention, its sites
with their go-live months, comparison sites, the outcomes and stratifiers to evaluate) and the
published monthly series (counts after disclosure control, with their populations) and returns two
DataFrames in the grain of the marts:

- impact: project x site x outcome x method x stratifier x group x effect (x event time / cohort),
  each estimate with its interval, n, method, checks and cautions;
- counterfactual: month x project x site x outcome x stratifier x group: observed, the
  counterfactual and its interval (interrupted time series; controlled where there is a
  comparison).

Methods per implementation and outcome (docs/impact-methods.md):
- `its` for each site, on the site's total and within each group of each stratifier;
- `controlled_its` for each site against its comparison sites added together;
- `did` (Callaway & Sant'Anna, never-treated comparison sites as controls) across the sites, on
  rates per 100,000, when there are comparison sites;
- `gap_change` for each site and each group against the stratifier's reference group.

Suppressed months (count missing after disclosure control) are left out of that series and said in
its caution; a series left too short is not estimated, with the reason. Nothing here reads the
warehouse: the pipeline step that writes the marts passes both inputs in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from knowdo.impact.comparative import TwoSeriesResult, controlled_its, gap_change
from knowdo.impact.did import staggered_did
from knowdo.impact.its import Estimate, ItsResult, interrupted_time_series
from knowdo.impact.table import ColumnError

TOTAL = "all"  # the stratifier and group of a site's total
PER = 100_000.0  # DiD outcome: rate per 100,000
MIN_DID_SITES = 20  # fewer sites than this: DiD intervals carry a caution
SERIES_COLUMNS = (
    "outcome",
    "site_level",
    "site_code",
    "stratifier",
    "group_name",
    "is_reference",
    "month",
    "count",
    "population",
)
IMPACT_COLUMNS = (
    "project",
    "intervention",
    "country_code",
    "arc_code",
    "site_level",
    "site_code",
    "outcome",
    "method",
    "stratifier",
    "group_name",
    "reference_group",
    "effect",
    "event_time",
    "cohort_month",
    "scale",
    "estimate",
    "lower",
    "upper",
    "p_value",
    "n",
    "n_pre",
    "n_post",
    "family",
    "dispersion",
    "autocorrelation_p",
    "newey_west",
    "pretrend_p",
    "verdict",
    "status",
    "caution",
)
COUNTERFACTUAL_COLUMNS = (
    "project",
    "intervention",
    "country_code",
    "arc_code",
    "site_level",
    "site_code",
    "outcome",
    "method",
    "stratifier",
    "group_name",
    "month",
    "go_live_month",
    "after_go_live",
    "observed",
    "fitted",
    "counterfactual",
    "counterfactual_lower",
    "counterfactual_upper",
)


@dataclass(frozen=True)
class Implementation:
    """One project's intervention at sites of one geography level."""

    project: str
    intervention: str
    site_level: str
    go_live: dict[str, date]  # site code -> go-live (any day of its month)
    comparison: tuple[str, ...] | None = None  # None: all other sites of the same level
    country_code: str | None = None  # sites (and "all other sites") within this country
    outcomes: tuple[str, ...] = ()
    stratifiers: tuple[str, ...] = ()


@dataclass
class _Rows:
    impact: list[dict[str, Any]] = field(default_factory=list)
    counterfactual: list[dict[str, Any]] = field(default_factory=list)


def _month_index(months: pd.Series) -> pd.Series:
    """Months since January 1970 (a shared integer time axis)."""
    periods = pd.to_datetime(months).dt.to_period("M")
    return periods.dt.year * 12 + periods.dt.month - 1


def _month_of(d: date) -> int:
    return d.year * 12 + d.month - 1


def _month_date(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _estimate_cols(e: Estimate | dict | None) -> dict[str, Any]:
    if e is None:
        return {"estimate": None, "lower": None, "upper": None, "p_value": None}
    if isinstance(e, Estimate):
        e = e.as_dict()
    return {
        "estimate": _num(e.get("estimate")),
        "lower": _num(e.get("lower")),
        "upper": _num(e.get("upper")),
        "p_value": _num(e.get("p_value")),
    }


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _site_series(
    series: pd.DataFrame, outcome: str, level: str, sites: Iterable[str], stratifier: str
) -> pd.DataFrame:
    return series[
        (series["outcome"] == outcome)
        & (series["site_level"] == level)
        & (series["site_code"].isin(list(sites)))
        & (series["stratifier"] == stratifier)
    ]


def _prepared(rows: pd.DataFrame, go_live_month: int) -> tuple[pd.DataFrame, list[str]]:
    """One series: time, 0/1 after go-live, calendar month; suppressed months dropped."""
    cautions = []
    rows = rows.sort_values("t")
    suppressed = int(rows["count"].isna().sum())
    if suppressed:
        cautions.append(
            f"{suppressed} suppressed month(s) left out (counts withheld by disclosure control)"
        )
    rows = rows[rows["count"].notna() & (rows["population"] > 0)]
    frame = pd.DataFrame(
        {
            "t": rows["t"].to_numpy(float),
            "after": (rows["t"] >= go_live_month).astype(int).to_numpy(),
            "season": (rows["t"] % 12 + 1).to_numpy(float),
            "y": rows["count"].to_numpy(float),
            "pop": rows["population"].to_numpy(float),
        }
    )
    return frame, cautions


def _harmonics(n: int) -> int:
    return 2 if n >= 24 else 1


def _base(imp: Implementation, site: str, outcome: str, method: str) -> dict[str, Any]:
    return {
        "project": imp.project,
        "intervention": imp.intervention,
        "site_level": imp.site_level,
        "site_code": site,
        "outcome": outcome,
        "method": method,
        "event_time": None,
        "cohort_month": None,
        "reference_group": None,
        "pretrend_p": None,
        "verdict": None,
    }


def _fit_rows(
    base: dict[str, Any],
    result: ItsResult | TwoSeriesResult,
    effects: list[tuple[str, Estimate | dict | None, str]],
    cautions: list[str],
) -> list[dict[str, Any]]:
    estimated = any(e is not None for _, e, _ in effects)
    auto = result.autocorrelation or {}
    if "p_value" in auto:
        auto_p = auto["p_value"]
    else:
        ps = [v["p_value"] for k, v in auto.items() if isinstance(v, dict) and "p_value" in v]
        auto_p = min(ps) if ps else None
    common = {
        **base,
        "n": result.n,
        "n_pre": result.n_pre,
        "n_post": result.n_post,
        "family": result.family,
        "dispersion": _num(result.dispersion),
        "autocorrelation_p": _num(auto_p),
        "newey_west": bool(auto.get("newey_west")) if auto else None,
        "status": "estimated" if estimated else "not estimated",
        "caution": "; ".join(cautions + result.cautions) or None,
    }
    if not estimated:
        return [{**common, "effect": effects[0][0], "scale": effects[0][2], **_estimate_cols(None)}]
    return [
        {**common, "effect": name, "scale": scale, **_estimate_cols(e)}
        for name, e, scale in effects
        if e is not None
    ]


def _counterfactual_rows(
    base: dict[str, Any], result: ItsResult | TwoSeriesResult, go_live_month: int
) -> list[dict[str, Any]]:
    if result.counterfactual is None:
        return []
    keys = (
        "project",
        "intervention",
        "site_level",
        "site_code",
        "outcome",
        "method",
        "stratifier",
        "group_name",
    )
    head = {k: base[k] for k in keys}
    return [
        {
            **head,
            "month": _month_date(int(r.time)),
            "go_live_month": _month_date(go_live_month),
            "after_go_live": bool(r.intervention),
            "observed": float(r.observed),
            "fitted": float(r.fitted),
            "counterfactual": float(r.counterfactual),
            "counterfactual_lower": float(r.counterfactual_lower),
            "counterfactual_upper": float(r.counterfactual_upper),
        }
        for r in result.counterfactual.itertuples()
    ]


def _attempt(out: _Rows, base: dict[str, Any], effect: str, scale: str, fit, *args, **kwargs):
    """`fit(*args, **kwargs)`, or a not-estimated row saying why the data could not be fitted
    (a series all suppressed, one group with no month left, ...): the marts never fail on data."""
    try:
        return fit(*args, **kwargs)
    except (ColumnError, ValueError, np.linalg.LinAlgError) as exc:
        # ColumnError is a ValueError; the others are the fit's own numerical failures
        out.impact.append(
            {
                **base,
                "effect": effect,
                "scale": scale,
                **_estimate_cols(None),
                "n": None,
                "n_pre": None,
                "n_post": None,
                "family": None,
                "dispersion": None,
                "autocorrelation_p": None,
                "newey_west": None,
                "status": "not estimated",
                "caution": "cannot be fitted: " + str(exc).removeprefix("data: "),
            }
        )
        return None


def _its(
    out: _Rows, imp: Implementation, site: str, outcome: str, rows, go_live: int, strat, group
):
    frame, cautions = _prepared(rows, go_live)
    base = {**_base(imp, site, outcome, "its"), "stratifier": strat, "group_name": group}
    result = _attempt(
        out,
        base,
        "level_change",
        "ratio",
        interrupted_time_series,
        frame,
        outcome="y",
        time="t",
        intervention="after",
        offset="pop",
        season="season",
        harmonics=_harmonics(len(frame)),
        family="quasipoisson",
    )
    if result is None:
        return
    relative = None
    if result.effect_12 is not None:
        relative = {k: v + 1 for k, v in result.effect_12["relative"].items()}
        relative["p_value"] = None
    out.impact += _fit_rows(
        base,
        result,
        [
            ("level_change", result.level_change, "ratio"),
            ("effect_at_12_months", relative, "ratio"),
        ],
        cautions,
    )
    out.counterfactual += _counterfactual_rows(base, result, go_live)


def _pair_frame(one: pd.DataFrame, other: pd.DataFrame, go_live: int):
    a, ca = _prepared(one, go_live)
    b, cb = _prepared(other, go_live)
    shared = sorted(set(a["t"]) & set(b["t"]))
    a, b = a[a["t"].isin(shared)], b[b["t"].isin(shared)]
    frame = pd.concat([a.assign(series=1), b.assign(series=0)], ignore_index=True)
    cautions = [f"series: {c}" for c in ca] + [f"comparison: {c}" for c in cb]
    return frame, cautions


def _summed(rows: pd.DataFrame) -> pd.DataFrame:
    """Sites added together month by month; a month with any site suppressed is suppressed."""
    grouped = rows.groupby("t").agg(
        count=("count", lambda s: s.sum() if s.notna().all() else np.nan),
        population=("population", "sum"),
    )
    return grouped.reset_index()


def _evaluate_outcome(out: _Rows, imp: Implementation, outcome: str, series: pd.DataFrame):
    level = series[(series["outcome"] == outcome) & (series["site_level"] == imp.site_level)]
    if imp.country_code is not None and "country_code" in level.columns:
        level = level[level["country_code"] == imp.country_code]
    if level.empty:
        out.impact.append(
            {
                **_base(imp, None, outcome, "its"),
                "stratifier": TOTAL,
                "group_name": TOTAL,
                "effect": "level_change",
                "scale": "ratio",
                **_estimate_cols(None),
                "status": "not estimated",
                "caution": f"no published monthly series of {outcome!r} at level "
                f"{imp.site_level!r}",
            }
        )
        return
    known = set(level["site_code"])
    treated = {s: _month_of(d) for s, d in imp.go_live.items()}
    comparison = (
        [s for s in imp.comparison if s not in treated]
        if imp.comparison is not None
        else sorted(known - set(treated))
    )
    comparison = [s for s in comparison if s in known]
    totals = _site_series(level, outcome, imp.site_level, known, TOTAL)

    for site, go_live in sorted(treated.items()):
        if site not in known:
            out.impact.append(
                {
                    **_base(imp, site, outcome, "its"),
                    "stratifier": TOTAL,
                    "group_name": TOTAL,
                    "effect": "level_change",
                    "scale": "ratio",
                    **_estimate_cols(None),
                    "status": "not estimated",
                    "caution": f"no published series of {outcome!r} for site {site!r}",
                }
            )
            continue
        site_total = totals[totals["site_code"] == site]
        _its(out, imp, site, outcome, site_total, go_live, TOTAL, TOTAL)

        if comparison:
            others = _summed(totals[totals["site_code"].isin(comparison)])
            frame, cautions = _pair_frame(site_total, others, go_live)
            base = {
                **_base(imp, site, outcome, "controlled_its"),
                "stratifier": TOTAL,
                "group_name": TOTAL,
            }
            result = _attempt(
                out,
                base,
                "level_change",
                "ratio",
                controlled_its,
                frame,
                outcome="y",
                time="t",
                intervention="after",
                treated="series",
                offset="pop",
                season="season",
                harmonics=_harmonics(len(frame) // 2),
            )
        if comparison and result is not None:
            out.impact += _fit_rows(
                base,
                result,
                [
                    ("level_change", result.level_change, "ratio"),
                    ("comparison_level_change", result.other_level_change, "ratio"),
                ],
                cautions + [f"comparison: {len(comparison)} site(s) added together"],
            )
            out.counterfactual += _counterfactual_rows(base, result, go_live)

        for strat in imp.stratifiers:
            rows = level[(level["site_code"] == site) & (level["stratifier"] == strat)]
            if rows.empty:
                out.impact.append(
                    {
                        **_base(imp, site, outcome, "its"),
                        "stratifier": strat,
                        "group_name": None,
                        "effect": "level_change",
                        "scale": "ratio",
                        **_estimate_cols(None),
                        "status": "not estimated",
                        "caution": f"no published series of {outcome!r} by {strat!r} "
                        f"for site {site!r}",
                    }
                )
                continue
            references = sorted(set(rows.loc[rows["is_reference"], "group_name"]))
            reference = references[0] if len(references) == 1 else None
            for group in sorted(set(rows["group_name"])):
                group_rows = rows[rows["group_name"] == group]
                _its(out, imp, site, outcome, group_rows, go_live, strat, group)
                if reference is None or group == reference:
                    continue
                frame, cautions = _pair_frame(
                    group_rows, rows[rows["group_name"] == reference], go_live
                )
                base = {
                    **_base(imp, site, outcome, "gap_change"),
                    "stratifier": strat,
                    "group_name": group,
                    "reference_group": reference,
                    "verdict": "not estimated",
                }
                result = _attempt(
                    out,
                    base,
                    "rate_ratio_change",
                    "ratio of rate ratios",
                    gap_change,
                    frame,
                    outcome="y",
                    time="t",
                    intervention="after",
                    group="series",
                    offset="pop",
                    season="season",
                    harmonics=_harmonics(len(frame) // 2),
                )
                if result is None:
                    continue
                base["verdict"] = result.verdict
                out.impact += _fit_rows(
                    base,
                    result,
                    [
                        ("rate_ratio_change", result.level_change, "ratio of rate ratios"),
                        ("rate_ratio_before", result.contrast_before, "rate ratio"),
                        ("rate_ratio_after", result.contrast_after, "rate ratio"),
                        (
                            "rate_ratio_after_counterfactual",
                            result.contrast_after_counterfactual,
                            "rate ratio",
                        ),
                    ],
                    cautions,
                )

    if comparison:
        _did(out, imp, outcome, totals, treated, comparison)


def _did(out: _Rows, imp, outcome, totals, treated: dict[str, int], comparison: list[str]):
    units = totals[totals["site_code"].isin(list(treated) + comparison)]
    units = units[units["count"].notna() & (units["population"] > 0)]
    # a balanced panel: the months every unit published
    counts = units.groupby("t")["site_code"].nunique()
    n_units = units["site_code"].nunique()
    months = counts[counts == n_units].index
    dropped = int((counts < n_units).sum())
    units = units[units["t"].isin(months)]
    first = min(months) if len(months) else 0
    codes = {site: k for k, site in enumerate(sorted(set(units["site_code"])), start=1)}
    panel = pd.DataFrame(
        {
            "unit": units["site_code"].map(codes).to_numpy(float),
            # time from 1, so 0 can mean "never treated"
            "time": (units["t"] - first + 1).to_numpy(float),
            "y": (units["count"] / units["population"] * PER).to_numpy(float),
            "g": [
                float(treated[s] - first + 1) if s in treated else 0.0 for s in units["site_code"]
            ],
        }
    )
    base = {**_base(imp, None, outcome, "did"), "stratifier": TOTAL, "group_name": TOTAL}
    cautions = []
    if dropped:
        cautions.append(f"{dropped} month(s) left out where a site's count was suppressed")
    if len(codes) < MIN_DID_SITES:
        cautions.append(
            f"only {len(codes)} sites: the standard errors (large-sample in the number of sites) "
            "are unreliable; read the controlled interrupted time series beside it"
        )
    common = {
        **base,
        "n": len(panel),
        "n_pre": None,
        "n_post": None,
        "family": "gaussian (rate per 100,000)",
        "dispersion": None,
        "autocorrelation_p": None,
        "newey_west": None,
    }
    try:
        result = staggered_did(panel, outcome="y", unit="unit", time="time", first_treated="g")
    except ColumnError as exc:
        out.impact.append(
            {
                **common,
                "effect": "att_simple",
                "scale": "difference in rate per 100,000",
                **_estimate_cols(None),
                "status": "not estimated",
                "caution": "; ".join(cautions + [str(exc)]),
            }
        )
        return
    caution = "; ".join(cautions + result.cautions) or None  # includes a failed pre-trend test
    pre = _num(result.pretrend_p)
    scale = "difference in rate per 100,000"
    rows = []

    def row(effect, est, event_time=None, cohort=None):
        rows.append(
            {
                **common,
                "effect": effect,
                "event_time": event_time,
                "cohort_month": cohort,
                "scale": scale,
                "pretrend_p": pre,
                **_estimate_cols(est),
                "status": "estimated" if est is not None else "not estimated",
                "caution": caution,
            }
        )

    row("att_simple", result.overall.get("simple"))
    row("att_group", result.overall.get("group"))
    for g in result.group_effects:
        cohort = _month_date(int(g["group"] + first - 1))
        row("att_cohort", g, cohort=cohort)
    for e in result.event_study:
        row("att_event_time", {**e, "estimate": e["att"]}, event_time=int(e["e"]))
    out.impact += rows


def evaluate(
    implementations: Iterable[Implementation], series: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows of mart_implementation_impact and mart_implementation_counterfactual."""
    missing = [c for c in SERIES_COLUMNS if c not in series.columns]
    if missing:
        raise ColumnError(f"series: missing column(s) {', '.join(missing)}")
    series = series.assign(t=_month_index(series["month"]))
    out = _Rows()
    for imp in implementations:
        for outcome in imp.outcomes:
            _evaluate_outcome(out, imp, outcome, series)
    impact = pd.DataFrame(out.impact, columns=list(IMPACT_COLUMNS))
    counterfactual = pd.DataFrame(out.counterfactual, columns=list(COUNTERFACTUAL_COLUMNS))
    return _with_places(impact, implementations, series), _with_places(
        counterfactual, implementations, series
    )


def _with_places(
    rows: pd.DataFrame, implementations: Iterable[Implementation], series: pd.DataFrame
) -> pd.DataFrame:
    """Fill country_code (the implementation's) and arc_code (the site's, from the series; for a
    row about several sites, their ARC when they share one): row-level security keys on them."""
    arcs: dict[tuple[str, str], str] = {}
    if "arc_code" in series.columns:
        known = series.dropna(subset=["arc_code"]).drop_duplicates(["site_level", "site_code"])
        arcs = {
            (lvl, site): arc
            for lvl, site, arc in known[["site_level", "site_code", "arc_code"]].itertuples(False)
        }
    country, project_arc = {}, {}
    for imp in implementations:
        country[imp.project] = imp.country_code
        shared = {arcs.get((imp.site_level, s)) for s in imp.go_live}
        project_arc[imp.project] = shared.pop() if len(shared) == 1 else None
    rows["country_code"] = rows["project"].map(country)
    rows["arc_code"] = [
        arcs.get((lvl, site)) if isinstance(site, str) else project_arc.get(project)
        for project, lvl, site in rows[["project", "site_level", "site_code"]].itertuples(False)
    ]
    return rows


ALL_SAME_LEVEL = "all_same_level"


def implementations_from_registry(rows: pd.DataFrame) -> list[Implementation]:
    """The implementations of the registry's current rows (one row per project x site x outcome
    indicator x stratifier, as the implementation-registry template sends them): one
    Implementation per project, intervention, country and site level. Comparison sites are the
    union of the sites' lists, or every other site of the level in the country when any row says
    all_same_level; outcomes and stratifiers are those any row names (`all` is the site total,
    always evaluated)."""
    needed = ("project_code", "intervention_code", "country_code", "site_level", "site_code",
              "go_live_date", "comparison_sites", "indicator_code", "stratifier")  # fmt: skip
    missing = [c for c in needed if c not in rows.columns]
    if missing:
        raise ColumnError(f"registry: missing column(s) {', '.join(missing)}")
    implementations = []
    keys = ["project_code", "intervention_code", "country_code", "site_level"]
    for (project, intervention, country, level), group in rows.groupby(keys, sort=True):
        go_live: dict[str, date] = {}
        for site, dates in group.groupby("site_code")["go_live_date"]:
            values = sorted(set(pd.to_datetime(dates).dt.date))
            if len(values) > 1:
                raise ColumnError(
                    f"registry: project {project!r} site {site!r} has {len(values)} go-live "
                    f"dates ({', '.join(map(str, values))}); one per site"
                )
            go_live[str(site)] = values[0]
        lists = {str(v).strip() for v in group["comparison_sites"]}
        comparison = None
        if ALL_SAME_LEVEL not in lists:
            comparison = tuple(sorted({c for v in lists for c in v.split(";") if c}))
        implementations.append(
            Implementation(
                project=str(project),
                intervention=str(intervention),
                site_level=str(level),
                go_live=go_live,
                comparison=comparison,
                country_code=str(country),
                outcomes=tuple(sorted(set(group["indicator_code"]))),
                stratifiers=tuple(sorted(set(group["stratifier"]) - {TOTAL})),
            )
        )
    return implementations
