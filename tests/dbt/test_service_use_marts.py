"""fct_service_use against the raw feeds, on the warehouse env.sh names with the sample feeds
ingested: every figure checked here is recomputed in Python from raw.* (DHIS2 values, population
template) and the standard-population seed, independently of the dbt SQL."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row
from scipy.stats import norm

from tests.dbt.conftest import DBT_PROJECT_DIR

pytestmark = pytest.mark.integration

BEING_COUNTRIES = {"GHA", "ROU", "TZA", "COL", "ECU", "SEN", "IND", "MAR", "EGY", "IDN", "PAK",
                   "SLE", "VNM"}  # fmt: skip
Z95 = norm.ppf(0.975)


@pytest.fixture(scope="module")
def db(run_dbt, transformer_conninfo):
    with psycopg.connect(transformer_conninfo) as conn:
        loaded = conn.execute(
            "select count(*) from ops.load_batches"
            " where feed_id = 'population_denominators' and status = 'loaded'"
        ).fetchone()[0]
    if not loaded:
        pytest.fail("the sample feeds are not loaded in this warehouse: run `knowdo ingest` first")
    result = run_dbt(
        "build", "--select", "+fct_service_use", "--exclude-resource-type", "test", "unit_test"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    with psycopg.connect(transformer_conninfo, autocommit=True, row_factory=dict_row) as conn:
        yield conn


@pytest.fixture(scope="module")
def region_cells(db) -> dict[tuple, Decimal]:
    """(month, region, sex, age band) -> events of the current load (latest loaded batch per feed
    and period), deleted values left out."""
    rows = db.execute(
        """
        with current as (
            select v.feed_id, v.period, max(v.batch_id) as batch_id
            from raw.dhis2_data_values v join ops.load_batches b using (batch_id)
            where b.status = 'loaded' group by 1, 2
        )
        select v.period_start, v.geography_code, v.sex_code, v.age_band_code, v.value
        from raw.dhis2_data_values v
        join current c on c.feed_id = v.feed_id and c.period = v.period and c.batch_id = v.batch_id
        where not v.deleted and v.value is not null and v.period_type = 'month'
        """
    ).fetchall()
    cells: dict[tuple, Decimal] = defaultdict(Decimal)
    for r in rows:
        cells[(r["period_start"], r["geography_code"], r["sex_code"], r["age_band_code"])] += r[
            "value"
        ]
    return cells


@pytest.fixture(scope="module")
def population(db) -> dict[tuple, int]:
    """(place, year, sex, age band) -> population of the current load of the population feed."""
    rows = db.execute(
        """
        with current as (
            select p.feed_id, p.geography_code, p.year, max(p.batch_id) as batch_id
            from raw.template_population p join ops.load_batches b using (batch_id)
            where b.status = 'loaded' group by 1, 2, 3
        )
        select p.geography_code, p.year, p.sex, p.age_band, p.population
        from raw.template_population p
        join current c using (feed_id, geography_code, year, batch_id)
        where p.ethnicity is null and p.imd_decile is null
        """
    ).fetchall()
    return {
        (r["geography_code"], r["year"], r["sex"], r["age_band"]): r["population"] for r in rows
    }


def regions_of(country: str) -> set[str]:
    with open(DBT_PROJECT_DIR / "seeds" / "ref_geography.csv", newline="") as f:
        return {r["geography_code"] for r in csv.DictReader(f) if r["parent_code"] == country}


def mart_row(db, **where) -> dict:
    clause = " and ".join(f"{k} = %({k})s" for k in where)
    row = db.execute(
        f"select * from marts_candidate.fct_service_use where {clause}", where
    ).fetchone()
    assert row is not None, where
    return row


def test_all_thirteen_countries_are_published(db):
    countries = {
        r["country_code"]
        for r in db.execute(
            "select distinct country_code from marts_candidate.fct_service_use"
            " where geography_level = 'national'"
        )
    }
    assert countries == BEING_COUNTRIES


@pytest.mark.parametrize("country, month", [("SEN", "2024-06-01"), ("IND", "2022-03-01")])
def test_national_row_is_the_sum_of_reporting_regions(db, region_cells, population, country, month):
    from datetime import date

    period = date.fromisoformat(month)
    regions = {g for (p, g, _s, _a) in region_cells if p == period and g in regions_of(country)}
    assert regions, "the sample has regional values for this month"
    events = sum(v for (p, g, _s, _a), v in region_cells.items() if p == period and g in regions)
    pop = sum(n for (g, y, _s, _a), n in population.items() if g in regions and y == period.year)
    row = mart_row(
        db, period_start=period, geography_code=country, stratifier="all", group_code="all"
    )
    assert row["numerator"] == events
    # the denominator is the reporting regions' population, not the country's own population row
    assert row["denominator"] == pop
    country_pop = sum(
        n for (g, y, _s, _a), n in population.items() if g == country and y == period.year
    )
    assert country_pop > pop
    assert float(row["value"]) == pytest.approx(float(events) / pop * 100000, abs=1e-4)


def test_age_standardised_rate_matches_dobson_in_python(db, region_cells, population):
    from datetime import date

    period, country = date(2024, 6, 1), "GHA"
    with open(DBT_PROJECT_DIR / "seeds" / "ref_standard_populations.csv", newline="") as f:
        weights: dict[str, float] = defaultdict(float)
        for r in csv.DictReader(f):
            if r["standard_population"] == "who_world_2000_2025":
                start = int(r["age_from"])
                band = (
                    "0-14"
                    if start < 15
                    else "15-24"
                    if start < 25
                    else "25-49"
                    if start < 50
                    else "50+"
                )
                weights[band] += float(r["weight"])
    bands = sorted(weights)
    regions = {g for (p, g, _s, _a) in region_cells if p == period and g in regions_of(country)}
    x = [
        float(
            sum(
                v
                for (p, g, s, a), v in region_cells.items()
                if p == period and g in regions and a == band and s == "F"
            )
        )
        for band in bands
    ]
    n = [
        float(
            sum(
                v
                for (g, y, s, a), v in population.items()
                if g in regions and y == 2024 and a == band and s == "F"
            )
        )
        for band in bands
    ]
    w = [weights[b] for b in bands]
    total_w, observed = sum(w), sum(x)
    dsr = sum(xi * wi / ni for xi, wi, ni in zip(x, w, n)) / total_w
    var = sum(xi * (wi / ni) ** 2 for xi, wi, ni in zip(x, w, n)) / total_w**2
    byar_lower = observed * (1 - 1 / (9 * observed) - Z95 / (3 * math.sqrt(observed))) ** 3
    row = mart_row(
        db, period_start=period, geography_code=country, stratifier="sex", group_code="F"
    )
    assert float(row["age_standardised_rate"]) == pytest.approx(dsr * 1e5, abs=1e-4)
    expected_lower = (dsr + math.sqrt(var / observed) * (byar_lower - observed)) * 1e5
    assert float(row["age_standardised_lower_95"]) == pytest.approx(expected_lower, abs=1e-4)


def test_rate_ratio_against_the_reference_group(db):
    from datetime import date

    keys = {"period_start": date(2024, 6, 1), "geography_code": "COL", "stratifier": "sex"}
    female = mart_row(db, group_code="F", **keys)
    male = mart_row(db, group_code="M", **keys)
    assert female["is_reference_group"] and male["reference_group_code"] == "F"
    ratio = float(male["value"]) / float(female["value"])
    se = math.sqrt(1 / male["numerator"] + 1 / female["numerator"])
    assert float(male["rate_ratio"]) == pytest.approx(ratio, abs=1e-5)
    assert float(male["rate_ratio_lower_95"]) == pytest.approx(
        ratio * math.exp(-Z95 * se), abs=1e-5
    )
    assert float(male["rate_difference"]) == pytest.approx(
        float(male["value"]) - float(female["value"]), abs=1e-3
    )


def test_no_suppressed_cell_can_be_recovered_from_its_siblings(db):
    lone = db.execute(
        """
        select period_start, geography_code, indicator_code, stratifier
        from marts_candidate.fct_service_use
        where geography_level = 'region' and stratifier <> 'all'
        group by 1, 2, 3, 4
        having count(*) filter (where is_suppressed) = 1
        """
    ).fetchall()
    assert lone == []
    # one published reason for primary and secondary suppression: the true (restricted) count
    # tells them apart here
    secondary = db.execute(
        "select count(*) as n from marts_candidate.fct_service_use f"
        " join restricted.restricted_service_use__unrounded u using (service_use_key)"
        " where f.is_suppressed and u.numerator >= 5"
    ).fetchone()["n"]
    assert secondary > 0, "the sample has small counts: secondary suppression must occur"
