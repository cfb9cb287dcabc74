"""England's ARC measures in the marts, against the raw feeds: the MHSDS measures relevant to PCREF
by ethnic group in fct_service_use, and the ARCs' parent-led CBT and Alcohol Assertive Outreach
reach in mart_know_do_gap. Every expected figure is recomputed in Python from raw.* (MHSDS values,
population template, service-use template), independently of the dbt SQL."""

from __future__ import annotations

import math
from collections import defaultdict

import psycopg
import pytest
from psycopg.rows import dict_row
from scipy.stats import norm

from knowdo.synth.mhsds import MONTHS  # the sample's months: April 2022 - March 2025 (36)

pytestmark = pytest.mark.integration

Z95 = norm.ppf(0.975)
MHSDS_INDICATORS = {
    "MHS01": "mhsds_people_in_contact",
    "MHS08": "mha_people_subject_to_act",
    "MHS09": "mha_people_detained",
    "MHS10": "mha_people_on_cto",
}
ETHNIC_GROUPS = {
    "White": "white",
    "Asian or Asian British": "asian",
    "Black or Black British": "black",
    "Mixed": "mixed",
    "Other Ethnic Groups": "other",
}
ARC_PROGRAMMES = {
    ("parent_led_cbt", "arc_east_of_england"),
    ("parent_led_cbt", "arc_north_west_coast"),
    ("alcohol_assertive_outreach", "arc_greater_manchester"),
    ("alcohol_assertive_outreach", "arc_yorkshire_humber"),
}


def byar(observed: float, population: float) -> tuple[float, float]:
    """PHEindicatormethods' Byar limits of a rate per 100,000 (observed >= 10)."""
    lower = observed * (1 - 1 / (9 * observed) - Z95 / (3 * math.sqrt(observed))) ** 3
    o1 = observed + 1
    upper = o1 * (1 - 1 / (9 * o1) + Z95 / (3 * math.sqrt(o1))) ** 3
    return lower / population * 1e5, upper / population * 1e5


def rounded_to_5(count: float) -> int:
    return int(5 * math.floor(float(count) / 5 + 0.5))


@pytest.fixture(scope="module")
def db(run_dbt, transformer_conninfo):
    with psycopg.connect(transformer_conninfo) as conn:
        loaded = conn.execute(
            "select count(*) from ops.load_batches"
            " where feed_id = 'mhsds_arcs' and status = 'loaded'"
        ).fetchone()[0]
    if not loaded:
        pytest.fail(
            "the MHSDS sample feed is not loaded in this warehouse: run `knowdo ingest` first"
        )
    result = run_dbt(
        "build",
        "--select",
        "+fct_service_use",
        "+mart_know_do_gap",
        "--exclude-resource-type",
        "test",
        "unit_test",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    with psycopg.connect(transformer_conninfo, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def icb_population(db) -> dict[tuple, int]:
    """(ICB, year, ethnic group) -> adults, from the population template's cells by ONS 2021
    high-level ethnic group (the detailed groups are a second partition of the same people)."""
    rows = db.execute(
        """
        select p.geography_code, p.year, p.ethnicity, sum(p.population) as population
        from raw.template_population p join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and p.ethnicity = any(%(high_level)s)
        group by 1, 2, 3
        """,
        {"high_level": [*ETHNIC_GROUPS.values(), "not_stated"]},
    ).fetchall()
    population = {
        (r["geography_code"], r["year"], r["ethnicity"]): int(r["population"]) for r in rows
    }
    for (icb, year, _group), n in list(population.items()):
        population[icb, year, "all"] = population.get((icb, year, "all"), 0) + n
    return population


@pytest.fixture(scope="module")
def mhsds_cells(db) -> list[dict]:
    """Raw MHSDS ICB cells of the sample (one load per month), mapped to KnowDo codes."""
    rows = db.execute(
        """
        select m.reporting_period_start as period_start, m.primary_level as icb, m.breakdown,
            m.secondary_level, m.measure_id, m.measure_value, m.is_suppressed, a.arc_code
        from raw.mhsds_measures m
        join ops.load_batches b using (batch_id)
        join seeds.ref_icb_arcs a on a.icb_code = m.primary_level
        where b.status = 'loaded' and m.breakdown like 'ICB%'
        """
    ).fetchall()
    cells = []
    for r in rows:
        group = (
            "all"
            if ";" not in r["breakdown"]
            else ETHNIC_GROUPS.get(r["secondary_level"], "not_stated")
        )
        cells.append(
            {
                **r,
                "indicator_code": MHSDS_INDICATORS[r["measure_id"]],
                "group_code": group,
                "stratifier": "all" if group == "all" else "ethnicity",
            }
        )
    assert len({c["icb"] for c in cells}) == 15
    assert len({c["period_start"] for c in cells}) == len(MONTHS) == 36
    return cells


def published(db, **where) -> dict | None:
    clause = " and ".join(f"{k} = %({k})s" for k in where)
    rows = db.execute(
        f"select * from marts_candidate.fct_service_use where {clause}", where
    ).fetchall()
    assert len(rows) <= 1, where
    return rows[0] if rows else None


def test_every_mhsds_icb_cell_is_in_fct_service_use_with_its_rate_and_byar_ci(
    db, mhsds_cells, icb_population
):
    checked = 0
    for cell in mhsds_cells:
        if cell["is_suppressed"] or cell["group_code"] == "not_stated":
            continue
        row = published(
            db,
            period_start=cell["period_start"],
            geography_code=cell["icb"],
            indicator_code=cell["indicator_code"],
            stratifier=cell["stratifier"],
            group_code=cell["group_code"],
        )
        assert row is not None, cell
        population = icb_population[cell["icb"], cell["period_start"].year, cell["group_code"]]
        count = rounded_to_5(cell["measure_value"])
        assert (row["country_code"], row["geography_level"], row["denominator"]) == (
            "GBR",
            "icb",
            population,
        )
        if row["is_suppressed"]:  # secondary suppression: another group of the stratifier is
            assert row["suppression_reason"] == "disclosure control"
            assert (row["numerator"], row["value"]) == (None, None)
            continue
        assert row["numerator"] == count
        assert float(row["value"]) == pytest.approx(count / population * 1e5, abs=1e-4)
        if count >= 10:
            lower, upper = byar(count, population)
            assert float(row["lower_95"]) == pytest.approx(lower, abs=1e-4)
            assert float(row["upper_95"]) == pytest.approx(upper, abs=1e-4)
            assert row["ci_method"] == "byar"
        checked += 1
    assert checked > 4000


def test_publisher_suppressed_cells_stay_suppressed_never_zero(db, mhsds_cells):
    suppressed = [c for c in mhsds_cells if c["is_suppressed"]]
    assert suppressed, "the sample MHSDS feed plants '*' cells"
    for cell in suppressed:
        for place in (cell["icb"], cell["arc_code"]):
            row = published(
                db,
                period_start=cell["period_start"],
                geography_code=place,
                indicator_code=cell["indicator_code"],
                stratifier=cell["stratifier"],
                group_code=cell["group_code"],
            )
            assert row is not None, cell
            assert row["is_suppressed"] is True, (place, cell)
            assert row["suppression_reason"] is not None
            assert (
                row["numerator"],
                row["value"],
                row["lower_95"],
                row["upper_95"],
                row["rate_ratio"],
            ) == (None, None, None, None, None)
    # nothing below the threshold is published for England's places
    shown_small = db.execute(
        "select count(*) as n from marts_candidate.fct_service_use"
        " where country_code = 'GBR' and numerator < 5"
    ).fetchone()["n"]
    assert shown_small == 0


def test_arc_rows_sum_their_icbs(db):
    mismatches = db.execute(
        """
        select a.period_start, a.geography_code, a.indicator_code, a.group_code
        from restricted.restricted_service_use__unrounded a
        join (
            select u.period_start, m.arc_code, u.indicator_code, u.stratifier, u.group_code,
                sum(u.numerator) as numerator, sum(u.denominator) as denominator,
                count(u.numerator) = count(*) as complete
            from restricted.restricted_service_use__unrounded u
            join seeds.ref_icb_arcs m on m.icb_code = u.geography_code
            where u.geography_level = 'icb'
            group by 1, 2, 3, 4, 5
        ) i on i.period_start = a.period_start and i.arc_code = a.geography_code
            and i.indicator_code = a.indicator_code and i.stratifier = a.stratifier
            and i.group_code = a.group_code
        where a.geography_level = 'arc'
            and (a.numerator is distinct from case when i.complete then i.numerator end
                 or a.denominator is distinct from i.denominator)
        """
    ).fetchall()
    assert mismatches == []
    arcs = db.execute(
        "select count(distinct geography_code) as n"
        " from restricted.restricted_service_use__unrounded where geography_level = 'arc'"
    ).fetchone()["n"]
    assert arcs == 15


def test_black_people_are_detained_at_a_higher_rate_than_white_people_with_a_ci(db):
    rows = db.execute(
        """
        select b.rate_ratio, b.rate_ratio_lower_95, b.rate_ratio_upper_95, b.numerator as black,
            w.numerator as white, b.value as black_rate, w.value as white_rate,
            b.reference_group_code
        from marts_candidate.fct_service_use b
        join marts_candidate.fct_service_use w
            on w.period_start = b.period_start and w.geography_code = b.geography_code
            and w.indicator_code = b.indicator_code and w.stratifier = b.stratifier
            and w.group_code = 'white'
        where b.indicator_code = 'mha_people_detained' and b.group_code = 'black'
            and b.geography_level = 'arc'
        """
    ).fetchall()
    assert len(rows) == 15 * len(MONTHS)
    for r in rows:
        assert r["reference_group_code"] == "white"
        ratio = float(r["black_rate"]) / float(r["white_rate"])
        se = math.sqrt(1 / r["black"] + 1 / r["white"])
        assert float(r["rate_ratio"]) == pytest.approx(ratio, rel=1e-4)
        assert float(r["rate_ratio_lower_95"]) == pytest.approx(
            ratio * math.exp(-Z95 * se), rel=1e-4
        )
        assert float(r["rate_ratio_upper_95"]) == pytest.approx(
            ratio * math.exp(Z95 * se), rel=1e-4
        )
    # the generator's disparity (about 3.6 times) is what the mart shows, with CIs above 1 overall
    assert sum(r["rate_ratio_lower_95"] > 1 for r in rows) > len(rows) * 0.9


def test_arc_programme_reach_is_in_the_know_do_gap_mart_with_rates_and_suppression(db):
    raw = db.execute(
        """
        select s.intervention_code, s.geography_code, extract(year from s.period)::int as year,
            s.stratifier, s.group_code, sum(s.people_reached) as reached, count(*) as months
        from raw.template_ngo_service_use s join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and s.country_code = 'GBR'
        group by 1, 2, 3, 4, 5
        """
    ).fetchall()
    assert {r["intervention_code"] for r in raw} == {"parent_led_cbt", "alcohol_assertive_outreach"}
    population = defaultdict(int)
    for r in db.execute(
        "select geography_code, year, sex, ethnicity, population from raw.template_population p"
        " join ops.load_batches b using (batch_id)"
        " where b.status = 'loaded' and p.ethnicity = any(%(high_level)s)",
        {"high_level": [*ETHNIC_GROUPS.values(), "not_stated"]},
    ).fetchall():
        population[r["geography_code"], r["year"], "all", "all"] += r["population"]
        population[r["geography_code"], r["year"], "sex", r["sex"]] += r["population"]
        population[r["geography_code"], r["year"], "ethnicity", r["ethnicity"]] += r["population"]
    mart = {
        (
            r["intervention_code"],
            r["geography_code"],
            r["year"],
            r["stratifier"],
            r["group_code"],
        ): r
        for r in db.execute(
            "select * from marts_candidate.mart_know_do_gap"
            " where intervention_code in ('parent_led_cbt', 'alcohol_assertive_outreach')"
        ).fetchall()
    }
    assert {(k[0], r["arc_code"]) for k, r in mart.items()} == ARC_PROGRAMMES
    # secondary suppression, worked out here from the raw counts: in every set of a programme x
    # ICB x year's `all` row and one stratifier's groups with exactly one hidden cell, or hidden
    # cells adding up to under 5, the smallest published cell (ties: the first in group order) is
    # withheld too, again until no set needs it (macros/disclosure/secondary_suppression.sql)
    sets = defaultdict(list)
    for r in raw:
        if r["stratifier"] != "all":
            sets[r["intervention_code"], r["geography_code"], r["year"], r["stratifier"]].append(r)
    totals = {
        (r["intervention_code"], r["geography_code"], r["year"]): r
        for r in raw
        if r["stratifier"] == "all"
    }

    def key_of(r):
        return (
            r["intervention_code"],
            r["geography_code"],
            r["year"],
            r["stratifier"],
            r["group_code"],
        )

    hidden = {key_of(r) for r in raw if r["reached"] < 5}
    secondary = set()
    while True:
        chosen = set()
        for (intervention, icb, year, _), groups in sets.items():
            cells = [*groups, totals[intervention, icb, year]]
            small = [c for c in cells if key_of(c) in hidden]
            if not small or (len(small) > 1 and sum(c["reached"] for c in small) >= 5):
                continue
            candidates = sorted(
                (c for c in cells if key_of(c) not in hidden),
                key=lambda c: (c["reached"], mart[key_of(c)]["group_order"], c["group_code"]),
            )
            if candidates:
                chosen.add(key_of(candidates[0]))
        if not chosen:
            break
        hidden |= chosen
        secondary |= chosen
    assert secondary, "the sample plants programme cells under 5 next to published siblings"
    suppressed = 0
    for r in raw:
        key = (
            r["intervention_code"],
            r["geography_code"],
            r["year"],
            r["stratifier"],
            r["group_code"],
        )
        row = mart[key]
        if key in secondary:
            assert row["is_suppressed"] and row["suppression_reason"] == "disclosure control"
            assert (row["reached"], row["reached_per_100k"]) == (None, None)
            continue
        assert (
            r["months"] == 12 and row["geography_level"] == "icb" and row["country_code"] == "GBR"
        )
        # no need estimate for these programmes: the prevalence feed is of common mental disorders
        assert (row["need"], row["coverage_percent"], row["gap"]) == (None, None, None)
        people = population[r["geography_code"], r["year"], r["stratifier"], r["group_code"]]
        assert row["population"] == people
        if r["reached"] < 5:
            suppressed += 1
            assert (
                row["is_suppressed"] and row["reached"] is None and row["reached_per_100k"] is None
            )
            continue
        shown = rounded_to_5(r["reached"])
        assert (row["reached"], row["is_suppressed"]) == (shown, False)
        assert float(row["reached_per_100k"]) == pytest.approx(shown / people * 1e5, abs=1e-4)
        if shown >= 10:
            lower, upper = byar(shown, people)
            assert float(row["reached_per_100k_lower_95"]) == pytest.approx(lower, abs=1e-4)
            assert float(row["reached_per_100k_upper_95"]) == pytest.approx(upper, abs=1e-4)
    assert len(raw) == len(mart) and suppressed >= 1
