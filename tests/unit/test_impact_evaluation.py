"""knowdo.impact.evaluation: every implementation evaluated into the rows of the impact marts.

Simulated published series with planted effects: a 15% fall in one group's count after go-live at
two sites (and nowhere else), and a project where nothing was planted. The evaluation must recover
the planted fall (in the group, in the gap to the reference group) and find nothing elsewhere.
"""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

from knowdo.impact.evaluation import (
    COUNTERFACTUAL_COLUMNS,
    IMPACT_COLUMNS,
    Implementation,
    evaluate,
)
from knowdo.impact.table import ColumnError

SITES = ("A", "B", "C", "D", "E", "F")
GROUPS = {"White": (0.0010, 0.80), "Black": (0.0035, 0.05), "Asian": (0.0012, 0.10)}
MONTHS = pd.date_range("2022-04-01", "2025-03-01", freq="MS")
PCREF = Implementation(
    project="PCREF",
    intervention="pcref",
    site_level="icb",
    go_live={"A": date(2023, 4, 1), "B": date(2023, 4, 15)},
    outcomes=("detentions",),
    stratifiers=("ethnicity",),
)
NOTHING = Implementation(
    project="NOTHING",
    intervention="placebo",
    site_level="icb",
    go_live={"C": date(2023, 10, 1), "D": date(2024, 1, 1)},
    comparison=("E", "F"),
    outcomes=("detentions",),
    stratifiers=(),
)


def _series(seed: int = 42) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for k, site in enumerate(SITES):
        adults = 1_000_000 + 250_000 * k
        for m, month in enumerate(MONTHS):
            season = 1 + 0.08 * math.sin(2 * math.pi * month.month / 12)
            total, total_pop = 0, 0
            for group, (rate, share) in GROUPS.items():
                mu = adults * share * rate * season * (1.002**m)
                if site in ("A", "B") and group == "Black" and month >= pd.Timestamp("2023-04-01"):
                    mu *= 0.85  # the planted effect
                count = int(rng.poisson(mu))
                total += count
                total_pop += adults * share
                rows.append(
                    (site, "ethnicity", group, group == "White", month, count, adults * share)
                )
            rows.append((site, "all", "all", False, month, total, total_pop))
    frame = pd.DataFrame(
        rows,
        columns=[
            "site_code",
            "stratifier",
            "group_name",
            "is_reference",
            "month",
            "count",
            "population",
        ],
    )
    return frame.assign(outcome="detentions", site_level="icb")


@pytest.fixture(scope="module")
def marts():
    return evaluate([PCREF, NOTHING], _series())


def _one(impact: pd.DataFrame, **where) -> pd.Series:
    rows = impact
    for k, v in where.items():
        rows = rows[rows[k] == v]
    assert len(rows) == 1, f"{len(rows)} rows for {where}"
    return rows.iloc[0]


def test_the_marts_have_their_columns_and_one_row_per_grain(marts):
    impact, counterfactual = marts
    assert list(impact.columns) == list(IMPACT_COLUMNS)
    assert list(counterfactual.columns) == list(COUNTERFACTUAL_COLUMNS)
    grain = [
        "project",
        "site_code",
        "outcome",
        "method",
        "stratifier",
        "group_name",
        "effect",
        "event_time",
        "cohort_month",
    ]
    assert not impact.duplicated(grain).any()
    assert not counterfactual.duplicated(
        ["project", "site_code", "outcome", "method", "stratifier", "group_name", "month"]
    ).any()
    estimated = impact[impact["status"] == "estimated"]
    assert estimated["estimate"].notna().all()
    assert (estimated["lower"] <= estimated["estimate"]).all()
    assert (estimated["estimate"] <= estimated["upper"]).all()
    assert estimated["n"].gt(0).all()


def test_the_planted_fall_is_recovered_in_the_group_and_in_the_gap(marts):
    impact, _ = marts
    for site in ("A", "B"):
        black = _one(
            impact,
            project="PCREF",
            site_code=site,
            method="its",
            group_name="Black",
            effect="level_change",
        )
        assert black["lower"] < 0.85 < black["upper"] < 1, black.to_dict()
        white = _one(
            impact,
            project="PCREF",
            site_code=site,
            method="its",
            group_name="White",
            effect="level_change",
        )
        # no effect of the planted size where none was planted (at 95%, one estimate in twenty
        # misses 1 by chance; the null project below checks coverage)
        assert abs(white["estimate"] - 1) < 0.05, white.to_dict()
        gap = _one(
            impact,
            project="PCREF",
            site_code=site,
            method="gap_change",
            group_name="Black",
            effect="rate_ratio_change",
        )
        assert gap["lower"] < 0.85 < gap["upper"] < 1
        assert gap["verdict"] == "narrowed"
        assert gap["reference_group"] == "White"
        before = _one(
            impact,
            project="PCREF",
            site_code=site,
            method="gap_change",
            group_name="Black",
            effect="rate_ratio_before",
        )
        assert before["lower"] < 3.5 < before["upper"]
        asian = _one(
            impact,
            project="PCREF",
            site_code=site,
            method="gap_change",
            group_name="Asian",
            effect="rate_ratio_change",
        )
        assert asian["lower"] < 1 < asian["upper"]
        assert asian["verdict"] == "no clear change"


def test_nothing_is_found_where_nothing_was_planted(marts):
    impact, _ = marts
    nothing = impact[(impact["project"] == "NOTHING") & (impact["status"] == "estimated")]
    headline = nothing[nothing["effect"].isin(["level_change", "att_simple", "att_group"])]
    assert set(headline["method"]) == {"its", "controlled_its", "did"}
    for row in headline.itertuples():
        assert row.lower < (1 if row.scale == "ratio" else 0) < row.upper, row


def test_staggered_sites_get_cohort_and_event_time_effects_against_never_treated_sites(marts):
    impact, _ = marts
    did = impact[(impact["project"] == "NOTHING") & (impact["method"] == "did")]
    assert set(did["cohort_month"].dropna()) == {date(2023, 10, 1), date(2024, 1, 1)}
    assert did.loc[did["effect"] == "att_event_time", "event_time"].min() < 0
    # four sites and 36 months: more pre-treatment cells than sites, so no pre-trend test, and
    # the intervals carry the few-sites caution
    assert did["pretrend_p"].isna().all()
    assert did["caution"].str.contains("no pre-trend test").all()
    assert did["caution"].str.contains("only 4 sites").all()
    # PCREF's comparison is every other site of the level: C to F
    cits = _one(
        impact,
        project="PCREF",
        site_code="A",
        method="controlled_its",
        effect="comparison_level_change",
    )
    assert "4 site(s) added together" in cits["caution"]


def test_the_counterfactual_runs_the_whole_series_with_the_go_live_marked(marts):
    _, counterfactual = marts
    a = counterfactual[
        (counterfactual["project"] == "PCREF")
        & (counterfactual["site_code"] == "A")
        & (counterfactual["method"] == "its")
        & (counterfactual["group_name"] == "Black")
    ]
    assert len(a) == len(MONTHS)
    assert a["go_live_month"].unique().tolist() == [date(2023, 4, 1)]
    assert a.loc[a["after_go_live"], "month"].min() == date(2023, 4, 1)
    after = a[a["after_go_live"]]
    assert (after["counterfactual"] > after["fitted"]).all()  # the fall: observed below
    assert (after["counterfactual_lower"] < after["counterfactual"]).all()


def test_suppressed_months_are_left_out_and_too_few_left_is_not_estimated():
    series = _series()
    black_a = (series["site_code"] == "A") & (series["group_name"] == "Black")
    few = series.copy()
    few.loc[black_a & (few["month"] < "2022-07-01"), "count"] = np.nan
    impact, _ = evaluate([PCREF], few)
    row = _one(impact, site_code="A", method="its", group_name="Black", effect="level_change")
    assert row["status"] == "estimated"
    assert "3 suppressed month(s) left out" in row["caution"]
    many = series.copy()
    many.loc[black_a & (many["month"] < "2023-01-01"), "count"] = np.nan
    impact, _ = evaluate([PCREF], many)
    row = _one(impact, site_code="A", method="its", group_name="Black", effect="level_change")
    assert row["status"] == "not estimated" and pd.isna(row["estimate"])
    assert "too short a series: 3 point(s) before" in row["caution"]


def test_an_outcome_or_site_without_a_published_series_says_so():
    imp = Implementation(
        project="P",
        intervention="x",
        site_level="icb",
        go_live={"Z": date(2023, 4, 1)},
        outcomes=("detentions", "contacts"),
    )
    impact, counterfactual = evaluate([imp], _series())
    z = _one(impact, outcome="detentions", site_code="Z")
    assert z["status"] == "not estimated" and "for site 'Z'" in z["caution"]
    contacts = _one(impact, outcome="contacts")
    assert "no published monthly series of 'contacts'" in contacts["caution"]
    assert counterfactual.empty
    with pytest.raises(ColumnError, match="population"):
        evaluate([imp], _series().drop(columns="population"))


def test_all_other_sites_means_those_of_the_same_country():
    series = _series()
    other = series[series["site_code"].isin(["E", "F"])].assign(
        site_code=lambda f: f["site_code"] + "2", country_code="ZZZ"
    )
    both = pd.concat([series.assign(country_code="GBR"), other], ignore_index=True)
    imp = Implementation(
        project="P", intervention="x", site_level="icb", go_live={"A": date(2023, 4, 1)},
        outcomes=("detentions",), country_code="GBR",
    )  # fmt: skip
    impact, _ = evaluate([imp], both)
    cits = _one(impact, method="controlled_its", effect="level_change")
    assert "5 site(s) added together" in cits["caution"]  # B to F, not E2 and F2
    anywhere, _ = evaluate([Implementation(**{**imp.__dict__, "country_code": None})], both)
    cits = _one(anywhere, method="controlled_its", effect="level_change")
    assert "7 site(s) added together" in cits["caution"]


def test_the_registry_rows_become_one_implementation_per_project_country_and_level():
    from knowdo.impact.evaluation import implementations_from_registry

    def row(project, site, go_live, comparison, indicator, stratifier, level="icb", c="GBR"):
        return {"project_code": project, "intervention_code": project, "country_code": c,
                "site_level": level, "site_code": site, "go_live_date": go_live,
                "comparison_sites": comparison, "indicator_code": indicator,
                "stratifier": stratifier}  # fmt: skip

    rows = pd.DataFrame(
        [
            row("pcref", "QOP", "2023-04-01", "all_same_level", "detained", "ethnicity"),
            row("pcref", "QOP", "2023-04-01", "all_same_level", "detained", "all"),
            row("pcref", "QWO", "2023-04-01", "all_same_level", "on_cto", "ethnicity"),
            row("cbt", "QUE", "2024-01-10", "QT1;QKS", "contacts", "all"),
            row("cbt", "QYG", "2024-06-01", "QKS;QHM", "contacts", "age_band"),
            row("mhgap", "CO-DC", "2022-07-01", "all_same_level", "opd", "sex", "region", "COL"),
        ]
    )
    imps = {i.project: i for i in implementations_from_registry(rows)}
    assert imps["pcref"].go_live == {"QOP": date(2023, 4, 1), "QWO": date(2023, 4, 1)}
    assert imps["pcref"].comparison is None
    assert imps["pcref"].outcomes == ("detained", "on_cto")
    assert imps["pcref"].stratifiers == ("ethnicity",)
    assert imps["cbt"].comparison == ("QHM", "QKS", "QT1")
    assert imps["cbt"].go_live["QUE"] == date(2024, 1, 10)
    assert imps["mhgap"].country_code == "COL" and imps["mhgap"].site_level == "region"
    clash = pd.concat([rows, pd.DataFrame([row("pcref", "QOP", "2023-05-01", "all_same_level",
                                               "detained", "sex")])])  # fmt: skip
    with pytest.raises(ColumnError, match="'QOP' has 2 go-live dates"):
        implementations_from_registry(clash)


def test_a_group_with_every_month_suppressed_is_a_reason_not_a_failure():
    series = _series()
    black_a = (series["site_code"] == "A") & (series["group_name"] == "Black")
    series.loc[black_a, "count"] = np.nan
    impact, _ = evaluate([PCREF], series)
    gap = _one(impact, site_code="A", method="gap_change", group_name="Black")
    assert gap["status"] == "not estimated" and gap["verdict"] == "not estimated"
    assert "cannot be fitted" in gap["caution"]
    its = _one(impact, site_code="A", method="its", group_name="Black", effect="level_change")
    assert its["status"] == "not estimated" and pd.isna(its["estimate"])
    # the other site is untouched
    ok = _one(impact, site_code="B", method="gap_change", group_name="Black",
              effect="rate_ratio_change")  # fmt: skip
    assert ok["status"] == "estimated"
