"""fct_outcomes and mart_know_do_gap against the raw feeds, on the warehouse env.sh names with the
sample feeds ingested: figures recomputed in Python from raw.* (NHS Talking Therapies, population
and prevalence templates, NGO templates) and the sample generator's ICB -> ARC pairing,
independently of the dbt SQL."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date

import psycopg
import pytest
from psycopg.rows import dict_row
from scipy.stats import norm

from knowdo.synth.geography import ARC_AREAS

pytestmark = pytest.mark.integration

Z95 = norm.ppf(0.975)


def wilson(x: float, n: float) -> tuple[float, float]:
    root = Z95 * math.sqrt(Z95**2 + 4 * x * (1 - x / n))
    return (
        (2 * x + Z95**2 - root) / (2 * (n + Z95**2)),
        (2 * x + Z95**2 + root) / (2 * (n + Z95**2)),
    )


def round5(n: float) -> int:
    return 5 * math.floor(n / 5 + 0.5)


@pytest.fixture(scope="module")
def db(run_dbt, transformer_conninfo):
    with psycopg.connect(transformer_conninfo) as conn:
        loaded = conn.execute(
            "select count(*) from ops.load_batches"
            " where feed_id = 'nhs_talking_therapies_arcs' and status = 'loaded'"
        ).fetchone()[0]
    if not loaded:
        pytest.fail("the sample feeds are not loaded in this warehouse: run `knowdo ingest` first")
    result = run_dbt(
        "build",
        "--select",
        "+fct_outcomes",
        "+mart_know_do_gap",
        "--exclude-resource-type",
        "test",
        "unit_test",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    with psycopg.connect(transformer_conninfo, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def talking_therapies_cell(
    db, icb: str, start: date, breakdown: str, group: str
) -> dict[str, float]:
    rows = db.execute(
        """
        select m.measure_name, m.measure_value
        from raw.nhs_talking_therapies_measures m join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and m.org_code = %s and m.reporting_period_start = %s
          and m.breakdown = %s and m.breakdown_group = %s
        """,
        (icb, start, breakdown, group),
    ).fetchall()
    return {r["measure_name"]: r["measure_value"] for r in rows}


def outcome(db, **where) -> dict:
    clause = " and ".join(f"{k} = %({k})s" for k in where)
    row = db.execute(f"select * from marts_candidate.fct_outcomes where {clause}", where).fetchone()
    assert row is not None, where
    return row


def test_recovery_is_recovered_over_caseness_with_wilson_limits(db):
    start = date(2023, 4, 1)
    cell = talking_therapies_cell(db, "QOP", start, "Ethnicity", "Black or Black British")
    x, n = float(cell["Count_Recovery"]), float(cell["Count_AtCaseness"])
    row = outcome(
        db,
        period_start=start,
        geography_code="QOP",
        stratifier="ethnicity",
        group_code="black",
        measure="recovery",
    )
    assert row["numerator"] == x and row["denominator"] == n
    assert float(row["value"]) == pytest.approx(100 * x / n, abs=1e-4)
    lower, upper = wilson(x, n)
    assert float(row["lower_95"]) == pytest.approx(100 * lower, abs=1e-4)
    assert float(row["upper_95"]) == pytest.approx(100 * upper, abs=1e-4)
    white = outcome(
        db,
        period_start=start,
        geography_code="QOP",
        stratifier="ethnicity",
        group_code="white",
        measure="recovery",
    )
    assert float(row["difference_from_reference"]) == pytest.approx(
        float(row["value"]) - float(white["value"]), abs=1e-3
    )


def test_access_rate_uses_the_icb_population_of_the_group(db):
    start = date(2024, 4, 1)
    cell = talking_therapies_cell(db, "QWO", start, "IMD Decile", "01")
    population = db.execute(
        """
        select sum(p.population) as n
        from raw.template_population p join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and p.geography_code = 'QWO' and p.year = 2024
          and p.imd_decile = '1'
        """
    ).fetchone()["n"]
    row = outcome(
        db,
        period_start=start,
        geography_code="QWO",
        stratifier="imd_decile",
        group_code="1",
        measure="access_rate",
    )
    assert row["denominator"] == population
    expected = float(cell["Count_AccessingServices"]) / float(population) * 100000
    assert float(row["value"]) == pytest.approx(expected, abs=1e-4)


def test_every_england_row_carries_the_arc_of_its_icb(db):
    expected = {icb: arc for arc, _name, icb, _icb_name, _pop in ARC_AREAS}
    rows = db.execute(
        "select distinct geography_code, arc_code from marts_candidate.fct_outcomes"
        " where country_code = 'GBR'"
    ).fetchall()
    assert {r["geography_code"]: r["arc_code"] for r in rows} == expected


def test_ngo_mean_change_is_after_minus_before(db):
    raw = db.execute(
        """
        select mean_score_before, mean_score_after from raw.template_ngo_outcomes o
        join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and o.country_code = 'PAK' and o.period = '2024-05-01'
          and o.instrument = 'GAD-7' and o.stratifier = 'sex' and o.group_code = 'F'
        """
    ).fetchone()
    row = outcome(
        db,
        period_start=date(2024, 5, 1),
        geography_code="PAK",
        stratifier="sex",
        group_code="F",
        measure="gad7_mean_change",
    )
    assert float(row["value"]) == pytest.approx(
        float(raw["mean_score_after"] - raw["mean_score_before"]), abs=1e-4
    )


def test_know_do_gap_of_an_ngo_region(db):
    reached = db.execute(
        """
        select sum(people_reached) as n from raw.template_ngo_service_use u
        join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and u.geography_code = 'GH-NP'
          and u.period between '2024-01-01' and '2024-12-01' and u.stratifier = 'all'
        """
    ).fetchone()["n"]
    population = db.execute(
        """
        select sum(p.population) as n from raw.template_population p
        join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and p.geography_code = 'GH-NP' and p.year = 2024
        """
    ).fetchone()["n"]
    prevalence = defaultdict(float)
    for r in db.execute(
        """
        select condition, prevalence_percent from raw.template_prevalence p
        join ops.load_batches b using (batch_id)
        where b.status = 'loaded' and p.geography_code = 'GHA' and p.year = 2024
          and p.sex = 'all' and p.age_band = 'all'
        """
    ):
        prevalence[r["condition"]] = float(r["prevalence_percent"])
    need = round(float(population) * (prevalence["depression"] + prevalence["anxiety"]) / 100)
    row = db.execute(
        "select * from marts_candidate.mart_know_do_gap where geography_code = 'GH-NP'"
        " and year = 2024 and stratifier = 'all'"
    ).fetchone()
    assert row["need"] == need
    assert row["reached"] == round5(float(reached))
    assert row["gap"] == need - round5(float(reached))
    lower, _upper = wilson(round5(float(reached)), need)
    assert float(row["coverage_percent"]) == pytest.approx(
        100 * round5(float(reached)) / need, abs=1e-4
    )
    assert float(row["coverage_lower_95"]) == pytest.approx(100 * lower, abs=1e-4)
    assert row["country_code"] == "GHA" and row["arc_code"] is None
