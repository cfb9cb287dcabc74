"""Issue 15 item 1: the sample implementation registry goes through the real ingest path and dbt,
and the effects planted in the sample series are recovered from the counts the warehouse publishes
(and nothing is found where nothing was planted), with knowdo.impact.

In a scratch warehouse database on the project's cluster (the shared `warehouse` is untouched): the
sample feeds ingested by knowdo.pipeline.ingest_feed (what the ingest DAG runs per feed), then
`dbt build` of `fct_service_use` (and what it needs) and of the registry's staging model. The
series are read from `marts_candidate.fct_service_use`: the disclosure-controlled monthly counts
(under 5 suppressed, the rest rounded to 5, secondary suppression) the quality gate publishes as
`marts.fct_service_use`, one row per month x site x indicator x stratifier x group. The next step's
marts (mart_implementation_impact, mart_implementation_counterfactual) read the same rows.

For every row of the registry (project x site x outcome x stratifier) and every group of its
stratifier: a controlled interrupted time series of the site's monthly count, with the sum of its
comparison sites' counts as the offset (so the seasonality and trend the sites share cancel),
quasi-Poisson (Poisson when the rounded counts are under-dispersed), level change from the go-live
month. The planted multiplier of each series comes from the generator
(knowdo.synth.implementation.PLANTED and the MHSDS measures the effect flows into). Where one is
planted (x0.85, x1.20, or x0.90 for MHS08 of the Black group, which counts those detained), its
95% interval must cover it and exclude 1; the primary analyses where nothing was planted must
cover 1, and the other series may miss the truth no more often than chance allows. The same fall is
checked with the staggered difference-in-differences of knowdo.impact.did against the
never-treated ICBs.
"""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from knowdo.db import connect
from knowdo.impact.did import staggered_did
from knowdo.impact.its import interrupted_time_series
from knowdo.synth import implementation, mhsds
from knowdo.synth.geography import ETHNIC_GROUPS
from tests.conftest import REPO, SAMPLE_FEEDS
from tests.helpers.scratch_warehouse import create_scratch_warehouse, run, scratch_settings

pytestmark = pytest.mark.integration
SCRATCH_DB = os.environ.get("KNOWDO_TEST_IMPLEMENTATION_DB", "knowdo_test_implementation")
DBT = str(REPO / ".venvs" / "dbt" / "bin" / "dbt")
DBT_ARGS = ("--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"))
REGISTRY_MODEL = "stg_templates_implementation__registry"
# MHSDS measure of each KnowDo indicator (the generator's ids)
MEASURE = {indicator: measure for measure, indicator in mhsds.INDICATORS.items()}


@pytest.fixture(scope="module")
def scratch(cluster):
    started = time.monotonic()
    env = create_scratch_warehouse(SCRATCH_DB)
    ingest_seconds = time.monotonic() - started
    run([DBT, "run-operation", "create_stats_functions", *DBT_ARGS], env)
    run(
        [
            DBT,
            "build",
            "--full-refresh",
            *DBT_ARGS,
            "--select",
            "+fct_service_use",
            REGISTRY_MODEL,
            "--exclude-resource-type",
            "test",
            "unit_test",
        ],
        env,
    )
    with scratch_settings(SCRATCH_DB) as settings:
        yield settings, env, ingest_seconds


@pytest.fixture(scope="module")
def published(scratch):
    settings, _env, _seconds = scratch
    with connect(settings.transformer_url) as conn:
        rows = conn.execute(
            "select period_start, geography_code, indicator_code, stratifier, group_code,"
            " numerator, is_suppressed from marts_candidate.fct_service_use"
            " where period_type = 'month' or period_type is null"
        ).fetchall()
        registry = conn.execute(
            f"select project_code, site_level, site_code, country_code, go_live_date,"
            f" comparison_sites, indicator_code, stratifier from staging.{REGISTRY_MODEL}"
            f" where batch_id = (select max(batch_id) from staging.{REGISTRY_MODEL})"
        ).fetchall()
        levels = conn.execute(
            "select geography_code, geography_level, country_code from seeds.ref_geography"
            " union all select geography_code, 'icb', 'GBR' from seeds.ref_england_geography"
            " where geography_level = 'icb'"
        ).fetchall()
    frame = pd.DataFrame(
        rows,
        columns=["period", "site", "indicator", "stratifier", "group", "count", "suppressed"],
    )
    frame["count"] = frame["count"].astype(float)
    registry = pd.DataFrame(
        registry,
        columns=[
            "project",
            "level",
            "site",
            "country",
            "go_live",
            "comparison",
            "indicator",
            "stratifier",
        ],
    )
    sites = pd.DataFrame(levels, columns=["site", "level", "country"])
    return frame, registry, sites


def test_the_registry_loads_through_the_ingest_path_and_its_dbt_tests_pass(scratch):
    settings, env, ingest_seconds = scratch
    with connect(settings.warehouse_url) as conn:
        batches = conn.execute(
            "select status, rows_loaded, rows_rejected from ops.load_batches"
            " where feed_id = 'implementation_registry'"
        ).fetchall()
        raw = conn.execute("select count(*) from raw.template_implementation_registry").fetchone()
        mhsds_batches = conn.execute(
            "select count(*) from ops.load_batches where feed_id = 'mhsds_arcs'"
            " and status = 'loaded'"
        ).fetchone()[0]
    lines = (SAMPLE_FEEDS / implementation.FILE).read_text(encoding="utf-8").splitlines()
    assert batches == [("loaded", len(lines) - 1, 0)]
    assert raw[0] == len(lines) - 1
    assert mhsds_batches == len(mhsds.MONTHS) == 36  # one file per month, April 2022 - March 2025
    run([DBT, "test", *DBT_ARGS, "--select", REGISTRY_MODEL], env)
    print(f"sample ingest (all {len(mhsds.MONTHS)} MHSDS months): {ingest_seconds:.0f}s")


def _months(period: pd.Series) -> pd.Series:
    period = pd.to_datetime(period)
    return period.dt.year * 12 + period.dt.month


def _expected(project: str, site: str, indicator: str, group: str) -> float:
    """The multiplier the generator planted on this series from the project's go-live."""
    if indicator == "mh_outpatient_contacts":  # DHIS2: every cell of a region
        return implementation.effect(indicator, site, None, 2100, 1)
    measure = MEASURE[indicator]
    if measure not in ("MHS08", "MHS09"):
        return 1.0
    # expected counts per adult of each group before and after (mhsds._group_counts)
    rates = {m[0]: m for m in mhsds.MEASURES}
    before, after = {}, {}
    for label, code, share, _access in ETHNIC_GROUPS:
        r9 = share * rates["MHS09"][2] * rates["MHS09"][3][label]
        r10 = share * rates["MHS10"][2] * rates["MHS10"][3][label]
        planted = implementation.effect("mha_people_detained", site, code, 2100, 1)
        short = share * mhsds.SHORT_TERM_ORDERS_PER_100K
        if measure == "MHS09":
            before[code], after[code] = r9, r9 * planted
        else:
            before[code], after[code] = r9 + r10 + short, r9 * planted + r10 + short
    if group in before:
        return after[group] / before[group]
    return sum(after.values()) / sum(before.values())  # not stated and all: shares of the sum


def _comparison_sites(entry, registry, sites, frame) -> list[str]:
    """The listed sites, or every other site of the level in the country that KnowDo publishes the
    outcome for and that does not implement the project (never treated)."""
    if entry.comparison != "all_same_level":
        return entry.comparison.split(";")
    implementing = set(registry.loc[registry.project == entry.project, "site"])
    same = sites[(sites.level == entry.level) & (sites.country == entry.country)]
    with_series = set(frame.loc[frame.indicator == entry.indicator, "site"])
    return sorted((set(same.site) & with_series) - implementing)


def _controlled_its(frame, entry, group, comparison):
    cell = (
        (frame.indicator == entry.indicator)
        & (frame.stratifier == entry.stratifier)
        & (frame.group == group)
        & ~frame.suppressed
    )
    treated = frame[cell & (frame.site == entry.site)].set_index("period")["count"]
    # comparison sites with a count published every month (a suppressed month would make the
    # sum jump); months the site's own count is suppressed are left out
    controls = frame[
        (frame.indicator == entry.indicator)
        & (frame.stratifier == entry.stratifier)
        & (frame.group == group)
        & frame.site.isin(comparison)
    ]
    complete = controls.groupby("site").filter(lambda d: not d.suppressed.any())
    control = complete.groupby("period")["count"].sum()
    data = pd.DataFrame({"y": treated, "control": control}).dropna().reset_index()
    data["t"] = _months(data["period"])
    live = pd.Timestamp(entry.go_live)
    data["i"] = (data["t"] >= live.year * 12 + live.month).astype(int)
    if data["y"].nunique() <= 1:  # a small count rounded to the same 5 every month
        return None
    fit = interrupted_time_series(
        data, outcome="y", time="t", intervention="i", offset="control", family="quasipoisson"
    )
    if fit.dispersion is not None and fit.dispersion < 1:
        # under-dispersed: counts rounded to 5 vary less than counts do; never let the rounding
        # make an interval narrower than Poisson's
        fit = interrupted_time_series(
            data, outcome="y", time="t", intervention="i", offset="control", family="poisson"
        )
    return fit


def _evaluate_registry(frame, registry, sites):
    """One controlled ITS per registry row and group: (label, planted, estimate, lower, upper),
    and the series not estimated with the reason."""
    results, skipped = [], []
    for entry in registry.itertuples():
        comparison = _comparison_sites(entry, registry, sites, frame)
        assert comparison and entry.site not in comparison, entry
        groups = sorted(
            set(
                frame.loc[
                    (frame.site == entry.site)
                    & (frame.indicator == entry.indicator)
                    & (frame.stratifier == entry.stratifier),
                    "group",
                ]
            )
        )
        assert groups, f"no published series for {entry}"
        for group in groups:
            fit = _controlled_its(frame, entry, group, comparison)
            label = f"{entry.project} {entry.site} {entry.indicator} {entry.stratifier}={group}"
            if fit is None or fit.level_change is None:  # NULL, with the reason
                skipped.append(f"{label}: {fit.cautions if fit else 'constant published count'}")
                continue
            level = fit.level_change
            expected = _expected(entry.project, entry.site, entry.indicator, group)
            results.append((label, expected, level.estimate, level.lower, level.upper))
    return results, skipped


def _strong(multiplier: float) -> bool:
    return abs(math.log(multiplier)) > 0.05


def test_planted_effects_are_recovered_and_nothing_is_found_where_none_was_planted(published):
    """Planted effects (x0.85, x0.90, x1.20): the 95% CI covers the planted multiplier and excludes
    1, every one. Where nothing (or under 5%, through a total) was planted, 95% intervals miss the
    truth 5% of the time by design: each primary analysis (the whole population of each project
    with no planted effect, and PCREF's reference group, White) must cover 1, and across all the
    other series the misses must be no more than chance allows (the 99th percentile of
    Binomial(n, 0.05)), so a leaked effect or intervals that are too narrow fail."""
    frame, registry, sites = published
    assert set(registry.project) == {p.code for p in implementation.PROJECTS}
    results, skipped = _evaluate_registry(frame, registry, sites)
    table = "\n".join(f"{r[0]}: x{r[1]:.3f} -> {r[2]:.3f} ({r[3]:.3f}-{r[4]:.3f})" for r in results)
    print(table, "\nnot estimated:", *skipped, sep="\n")
    assert len(skipped) <= 4, skipped  # small groups' CTO counts rounded to the same 5 only

    planted = [r for r in results if _strong(r[1])]
    assert {r[0] for r in planted} >= {
        "pcref QOP mha_people_detained ethnicity=black",
        "pcref QWO mha_people_detained ethnicity=black",
        "pcref QOP mha_people_subject_to_act ethnicity=black",
        "col_community_mh_centres CO-DC mh_outpatient_contacts all=all",
        "col_community_mh_centres CO-ANT mh_outpatient_contacts all=all",
    }
    for label, expected, estimate, lower, upper in planted:
        assert lower <= expected <= upper and not lower <= 1 <= upper, (
            f"{label}: planted x{expected:.3f}, estimated {estimate:.3f} ({lower:.3f}-{upper:.3f})"
        )

    no_effect_projects = {"parent_led_cbt", "alcohol_assertive_outreach", "rou_mhgap_primary_care"}
    primary = [
        r
        for r in results
        if (r[0].split()[0] in no_effect_projects and r[0].endswith(" all=all"))
        or (r[0].startswith("pcref ") and r[0].endswith("ethnicity=white"))
    ]
    assert len(primary) >= 10
    for label, expected, estimate, lower, upper in primary:
        assert expected == 1.0 and lower <= 1 <= upper, (
            f"{label}: nothing planted, estimated {estimate:.3f} ({lower:.3f}-{upper:.3f})"
        )

    rest = [r for r in results if not _strong(r[1]) and r not in primary]
    misses = [r for r in rest if not r[3] <= r[1] <= r[4]]
    allowed = int(stats.binom.ppf(0.99, len(rest), 0.05))
    assert len(rest) >= 30, len(rest)
    assert len(misses) <= allowed, (
        f"{len(misses)} of {len(rest)} intervals miss the truth (chance allows {allowed}): "
        + "; ".join(f"{m[0]} {m[2]:.3f} ({m[3]:.3f}-{m[4]:.3f})" for m in misses)
    )


@pytest.mark.parametrize("group, expected", [("black", 0.85), ("white", 1.0), ("asian", 1.0)])
def test_staggered_did_recovers_the_pcref_fall_against_never_treated_icbs(
    published, group, expected
):
    """ATT on log counts, PCREF's ICBs against every ICB that never implemented it."""
    frame, registry, _sites = published
    pcref = registry[registry.project == "pcref"]
    first = {
        site: _months(pd.Series([live])).iloc[0] for site, live in zip(pcref.site, pcref.go_live)
    }
    cells = frame[
        (frame.indicator == "mha_people_detained")
        & (frame.stratifier == "ethnicity")
        & (frame.group == group)
        & frame.site.str.fullmatch(r"Q[A-Z0-9]{2}")
    ].copy()
    # sites with a suppressed month are left out (the panel must be balanced)
    complete = cells.groupby("site").filter(lambda d: not d.suppressed.any())
    assert complete.site.nunique() >= 10
    complete["log_count"] = np.log(complete["count"])
    complete["t"] = _months(complete["period"])
    complete["unit"] = complete.site.astype("category").cat.codes
    complete["g"] = complete.site.map(first).fillna(0)
    result = staggered_did(
        complete, outcome="log_count", unit="unit", time="t", first_treated="g", control="never"
    )
    simple = result.overall["simple"]
    ratio = [math.exp(simple[k]) for k in ("estimate", "lower", "upper")]
    assert ratio[1] <= expected <= ratio[2], (group, ratio)
    if expected != 1.0:
        assert ratio[2] < 1, (group, ratio)


PLANTED_FEED = "zz_planted_registry"


def test_the_raw_suite_fails_on_what_no_single_row_shows(scratch):
    """Rows the parser would pass, planted straight into raw: an ICB code that is no ICB KnowDo
    holds, a site listed as its own comparison, and one site with two go-lives. The registry's raw
    suite fails on exactly those, naming the planted batch; the sample's registry passes."""
    from knowdo.quality import run_gate

    settings, _env, _seconds = scratch
    columns = (
        "project_code, project_name, intervention_code, country_code, site_level, site_code,"
        " go_live_date, comparison_sites, outcome_indicator, stratifier"
    )
    rows = [
        (
            "p1",
            "P",
            "pcref",
            "GBR",
            "icb",
            "QZZ",
            "2023-04-01",
            "all_same_level",
            "mha_people_detained",
            "all",
        ),
        (
            "p1",
            "P",
            "pcref",
            "GBR",
            "icb",
            "QOP",
            "2023-04-01",
            "QT1;QOP",
            "mha_people_detained",
            "all",
        ),
        (
            "p1",
            "P",
            "pcref",
            "GBR",
            "icb",
            "QOP",
            "2023-05-01",
            "QT1;QOP",
            "mha_people_detained",
            "ethnicity",
        ),
    ]
    with connect(settings.warehouse_url) as conn, conn.transaction():
        sha = f"planted-registry-{os.getpid()}"
        conn.execute(
            "insert into ops.landed_files (file_sha256, feed_id, file_name, size_bytes,"
            " landing_path) values (%s, %s, 'planted.csv', 1, '/dev/null')",
            (sha, PLANTED_FEED),
        )
        batch = conn.execute(
            "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table,"
            " status, rows_read, rows_loaded) values (%s, %s, 'planted.csv', 'planted',"
            " 'raw.template_implementation_registry', 'loaded', 3, 3) returning batch_id",
            (PLANTED_FEED, sha),
        ).fetchone()[0]
        for number, row in enumerate(rows, start=1):
            conn.execute(
                "insert into raw.template_implementation_registry (batch_id, file_sha256,"
                f" row_number, feed_id, {columns}, contract_version)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, '1.0.0')",
                (batch, sha, number, PLANTED_FEED, *row),
            )
    try:
        result = run_gate(settings=settings, layers=("raw",))
    finally:
        with connect(settings.warehouse_url) as conn, conn.transaction():
            conn.execute(
                "delete from raw.template_implementation_registry where feed_id = %s",
                (PLANTED_FEED,),
            )
            conn.execute("delete from ops.load_batches where feed_id = %s", (PLANTED_FEED,))
            conn.execute("delete from ops.landed_files where feed_id = %s", (PLANTED_FEED,))
    outcome = next(o for o in result.outcomes if o.table == "template_implementation_registry")
    text = result.summary()
    assert not outcome.success, text
    failed = {f.description: f for f in outcome.failures}
    assert set(failed) == {
        (
            "every site is a geography KnowDo holds at its level (seeds ref_arcs,"
            " ref_england_geography, ref_countries, ref_geography)"
        ),
        "a site is not its own comparison site",
        (
            "a project's site has one intervention, level, country and one set of phase dates"
            " on all its rows"
        ),
    }, text
    for failure in failed.values():
        assert failure.batches == [f"{PLANTED_FEED} batch {batch}"], text
    others = [o for o in result.outcomes if o.table != "template_implementation_registry"]
    assert all(o.success for o in others), text
