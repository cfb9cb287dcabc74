"""`knowdo evaluate its|did|cits|gap FILE ...`: the analyst's command over any CSV (issue 15).

The statistics live in knowdo.impact.its, knowdo.impact.did and knowdo.impact.comparative; this
module reads the file, calls them and prints the result (one JSON object with --json). A missing
or non-numeric column, or an option that does not fit the data, ends with one line on stderr and
exit status 2.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import click


def _fail(message: str) -> None:
    print("knowdo: " + " ".join(str(message).split()), file=sys.stderr)
    sys.exit(2)


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _fmt(estimate: dict | None) -> str:
    if estimate is None:
        return "not estimated"
    text = f"{estimate['estimate']:.4g} ({estimate['lower']:.4g} to {estimate['upper']:.4g})"
    if estimate.get("p_value") is not None:
        text += f", p = {estimate['p_value']:.3g}"
    return text


@click.group()
def evaluate() -> None:
    """Did an intervention change an outcome? Interrupted time series or difference-in-differences
    on a CSV (docs/impact-methods.md)."""


@evaluate.command("its")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--outcome", required=True, help="Column with the outcome (counts, or a rate).")
@click.option("--time", "time_col", required=True, help="Numeric time column (e.g. month 1..n).")
@click.option("--intervention", required=True, help="0/1 column: 0 before go-live, 1 from it.")
@click.option("--offset", help="Population column (log offset; poisson and quasipoisson).")
@click.option("--season", help="Season column (e.g. calendar month) for harmonic terms.")
@click.option("--harmonics", default=2, show_default=True, help="Sine/cosine pairs K.")
@click.option("--period", default=12.0, show_default=True, help="Seasonal period P.")
@click.option("--slope-change", is_flag=True, help="Also estimate a change in slope.")
@click.option(
    "--family",
    type=click.Choice(["poisson", "quasipoisson", "gaussian"]),
    default="quasipoisson",
    show_default=True,
)
@click.option("--confidence", default=0.95, show_default=True, help="Interval level.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_its(
    file: Path,
    outcome: str,
    time_col: str,
    intervention: str,
    offset: str | None,
    season: str | None,
    harmonics: int,
    period: float,
    slope_change: bool,
    family: str,
    confidence: float,
    as_json: bool,
) -> None:
    """Interrupted time series (segmented regression) of FILE."""
    from knowdo.impact.its import interrupted_time_series
    from knowdo.impact.table import ColumnError, read_table

    try:
        result = interrupted_time_series(
            read_table(file),
            outcome=outcome,
            time=time_col,
            intervention=intervention,
            offset=offset,
            season=season,
            harmonics=harmonics,
            period=period,
            slope_change=slope_change,
            family=family,
            confidence=confidence,
        )
    except ColumnError as exc:
        _fail(f"{file}: {str(exc).removeprefix('data: ')}")
    except ValueError as exc:
        _fail(f"evaluate its: {exc}")
    doc = _clean(result.as_json())
    if as_json:
        print(json.dumps(doc))
        return
    kind = "ratio" if family != "gaussian" else "difference"
    print(
        f"interrupted time series, {family}, n = {doc['n']} ({doc['n_pre']} before, "
        f"{doc['n_post']} from go-live)"
    )
    print(f"  level change ({kind}): {_fmt(doc['level_change'])}")
    if slope_change:
        print(f"  slope change ({kind} per period): {_fmt(doc['slope_change'])}")
    print(f"  trend ({kind} per period): {_fmt(doc['trend'])}")
    if doc["dispersion"] is not None:
        print(f"  dispersion: {doc['dispersion']:.3f}")
    if doc["autocorrelation"]:
        ac = doc["autocorrelation"]
        print(f"  autocorrelation: Breusch-Godfrey p = {ac['p_value']:.3g} (order {ac['order']})")
    if doc["effect_12"]:
        e = doc["effect_12"]
        print(
            f"  at time {e['time']:g}: absolute {_fmt(e['absolute'])}; "
            f"relative {_fmt(e['relative'])}"
        )
    for caution in doc["cautions"]:
        print(f"  caution: {caution}")


@evaluate.command("did")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--outcome", required=True, help="Column with the outcome.")
@click.option("--unit", required=True, help="Numeric unit (site) identifier column.")
@click.option("--time", "time_col", required=True, help="Numeric period column.")
@click.option("--first-treated", required=True, help="Period first treated; 0 = never treated.")
@click.option(
    "--control", type=click.Choice(["never", "not-yet"]), default="never", show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate_did(
    file: Path,
    outcome: str,
    unit: str,
    time_col: str,
    first_treated: str,
    control: str,
    as_json: bool,
) -> None:
    """Staggered difference-in-differences (Callaway & Sant'Anna) of FILE."""
    from knowdo.impact.did import staggered_did
    from knowdo.impact.table import ColumnError, read_table

    try:
        result = staggered_did(
            read_table(file),
            outcome=outcome,
            unit=unit,
            time=time_col,
            first_treated=first_treated,
            control=control,
        )
    except ColumnError as exc:
        _fail(f"{file}: {str(exc).removeprefix('data: ')}")
    except ValueError as exc:
        _fail(f"evaluate did: {exc}")
    doc = _clean(result.as_json())
    if as_json:
        print(json.dumps(doc))
        return
    print(
        f"staggered difference-in-differences, {control}-treated controls, {doc['n_units']} units"
    )
    print("  group   time        ATT      lower      upper")
    for c in doc["att_gt"]:
        lo = "" if c["lower"] is None else f"{c['lower']:10.4f} {c['upper']:10.4f}"
        print(f"  {c['group']:5g} {c['time']:6g} {c['att']:10.4f} {lo}")
    for name in ("simple", "group", "dynamic"):
        print(f"  overall ({name}): {_fmt(doc['overall'][name])}")
    for e in doc["event_study"]:
        print(f"  event time {e['e']:+g}: {e['att']:.4f} ({e['lower']:.4f} to {e['upper']:.4f})")
    if doc["pretrend_p"] is not None:
        print(f"  pre-trend test p = {doc['pretrend_p']:.4g}")
    for caution in doc["cautions"]:
        print(f"  caution: {caution}")


def _two_series_options(series_option: str, series_help: str):
    """The options of `evaluate cits` and `evaluate gap` (those of `evaluate its` plus the column
    that tells the two series apart)."""

    def decorate(fn):
        options = [
            click.argument("file", type=click.Path(path_type=Path)),
            click.option("--outcome", required=True, help="Column with the outcome."),
            click.option("--time", "time_col", required=True, help="Numeric time column."),
            click.option(
                "--intervention", required=True, help="0/1 column: 0 before go-live, 1 from it."
            ),
            click.option(series_option, "series_col", required=True, help=series_help),
            click.option("--offset", help="Population column (log offset)."),
            click.option("--season", help="Season column for harmonic terms."),
            click.option("--harmonics", default=2, show_default=True),
            click.option("--period", default=12.0, show_default=True),
            click.option("--slope-change", is_flag=True, help="Also estimate a change in slope."),
            click.option(
                "--family",
                type=click.Choice(["poisson", "quasipoisson", "gaussian"]),
                default="quasipoisson",
                show_default=True,
            ),
            click.option("--confidence", default=0.95, show_default=True),
            click.option("--json", "as_json", is_flag=True, help="Print one JSON object."),
        ]
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _run_two_series(name: str, function, file: Path, series_kw: str, series_col: str, **kw):
    from knowdo.impact.table import ColumnError, read_table

    as_json = kw.pop("as_json")
    time_col = kw.pop("time_col")
    try:
        result = function(read_table(file), time=time_col, **{series_kw: series_col}, **kw)
    except ColumnError as exc:
        _fail(f"{file}: {str(exc).removeprefix('data: ')}")
    except ValueError as exc:
        _fail(f"evaluate {name}: {exc}")
    doc = _clean(result.as_json())
    if as_json:
        print(json.dumps(doc))
        return
    contrast = "rate ratio" if kw["family"] != "gaussian" else "difference"
    other = "comparison" if name == "cits" else "reference group"
    print(
        f"{doc['method'].replace('_', ' ')}, {kw['family']}, n = {doc['n']} "
        f"({doc['n_pre']} before, {doc['n_post']} from go-live, in each series)"
    )
    print(f"  level change beyond the {other}'s: {_fmt(doc['level_change'])}")
    if kw["slope_change"]:
        print(f"  slope change beyond the {other}'s: {_fmt(doc['slope_change'])}")
    print(f"  the {other}'s own level change: {_fmt(doc['other_level_change'])}")
    print(f"  {contrast} before go-live: {_fmt(doc['contrast_before'])}")
    print(f"  {contrast} 12 periods on: {_fmt(doc['contrast_after'])}")
    print(f"  ... without the change: {_fmt(doc['contrast_after_counterfactual'])}")
    if doc["verdict"]:
        print(f"  the gap: {doc['verdict']}")
    for caution in doc["cautions"]:
        print(f"  caution: {caution}")


@evaluate.command("cits")
@_two_series_options("--treated", "0/1 column: 1 for the treated site, 0 for its comparison.")
def evaluate_cits(file: Path, series_col: str, **kw) -> None:
    """Controlled interrupted time series of FILE: the treated series against its comparison,
    one row per series and time."""
    from knowdo.impact.comparative import controlled_its

    _run_two_series("cits", controlled_its, file, "treated", series_col, **kw)


@evaluate.command("gap")
@_two_series_options("--group", "0/1 column: 1 for the group, 0 for the reference group.")
def evaluate_gap(file: Path, series_col: str, **kw) -> None:
    """Did the gap between a group and the reference group change at go-live? One row per group
    and time; with --offset the contrasts are rate ratios."""
    from knowdo.impact.comparative import gap_change

    _run_two_series("gap", gap_change, file, "group", series_col, **kw)
