"""Funding marts (dbt_project/models/marts/funding) against the raw funding feeds, on the warehouse
that env.sh names, with the sample feeds ingested. Every expected figure is recomputed here in
Python from raw.* and the exchange-rate seed, independently of the dbt SQL: splitting a transaction
by country and sector percentages must neither double count nor lose money, and the mental-health
share must be the budget over GHED government health expenditure."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date
from decimal import Decimal

import psycopg
import pytest

from tests.dbt.conftest import DBT_PROJECT_DIR

pytestmark = pytest.mark.integration

MARTS = "+fct_funding_flows +mart_mental_health_funding_share"
CENT = Decimal("0.01")


@pytest.fixture(scope="module")
def built(run_dbt, transformer_conninfo):
    with psycopg.connect(transformer_conninfo) as conn:
        sample = conn.execute(
            "select count(*) from ops.load_batches"
            " where feed_id = 'fcdo_iati' and status = 'loaded'"
        ).fetchone()[0]
    if not sample:
        pytest.fail(
            "the sample feeds are not loaded in this warehouse: run"
            " `knowdo ingest` (or pipeline.ingest_feed for every feed) first"
        )
    # models and seeds only: other domains' data tests upstream are not this module's subject
    result = run_dbt(
        "build", "--select", *MARTS.split(), "--exclude-resource-type", "test", "unit_test"
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return True


@pytest.fixture
def db(built, transformer_conninfo):
    with psycopg.connect(transformer_conninfo, autocommit=True) as conn:
        yield conn


@pytest.fixture(scope="module")
def units_per_usd() -> dict[tuple[str, int], Decimal]:
    with open(DBT_PROJECT_DIR / "seeds" / "ref_exchange_rates.csv", newline="") as f:
        return {
            (row["currency_code"], int(row["year"])): Decimal(row["units_per_usd"])
            for row in csv.DictReader(f)
        }


def current_activities(db) -> list[dict]:
    """The newest loaded version of every IATI activity (latest update, then latest batch)."""
    cur = db.execute(
        "select a.iati_identifier, a.default_currency, a.transactions, a.last_updated_datetime,"
        " a.batch_id from raw.iati_activities a"
        " join ops.load_batches b on b.batch_id = a.batch_id where b.status = 'loaded'"
    )
    newest: dict[str, tuple] = {}
    for identifier, currency, transactions, updated, batch_id in cur:
        rank = (updated, batch_id)
        if identifier not in newest or rank > newest[identifier][0]:
            newest[identifier] = (rank, currency, transactions)
    return [
        {"iati_identifier": k, "default_currency": v[1], "transactions": v[2]}
        for k, v in newest.items()
    ]


def transaction_usd(transaction: dict, default_currency: str, rates) -> Decimal:
    currency = transaction.get("currency") or default_currency
    when = date.fromisoformat(transaction.get("value_date") or transaction["date"])
    return Decimal(str(transaction["value"])) / rates[(currency, when.year)]


@pytest.mark.parametrize(
    ("transaction_type", "flow_type"), [("3", "disbursement"), ("2", "commitment")]
)
def test_iati_totals_in_usd_equal_the_raw_transactions(
    db, units_per_usd, transaction_type, flow_type
):
    expected: dict[int, Decimal] = defaultdict(Decimal)
    for activity in current_activities(db):
        for t in activity["transactions"]:
            if t["type"] == transaction_type and t.get("value") is not None:
                year = date.fromisoformat(t["date"]).year
                expected[year] += transaction_usd(t, activity["default_currency"], units_per_usd)
    assert expected, f"the sample has IATI {flow_type}s"
    actual = dict(
        db.execute(
            "select year, sum(amount_usd) from marts_candidate.fct_funding_flows"
            " where source = 'iati' and flow_type = %s group by year",
            (flow_type,),
        ).fetchall()
    )
    assert set(actual) == set(expected)
    rows = db.execute(
        "select count(*) from marts_candidate.fct_funding_flows where source = 'iati'"
    ).fetchone()[0]
    for year, total in expected.items():
        # each published cell is rounded to the cent: the totals agree within half a cent per row
        assert abs(actual[year] - total) <= CENT / 2 * rows, (year, actual[year], total)


def test_country_and_sector_slices_add_up_to_each_transaction(db):
    raw = {}
    for activity in current_activities(db):
        for number, t in enumerate(activity["transactions"], start=1):
            if t["type"] in ("2", "3", "4") and t.get("value") is not None:
                raw[(activity["iati_identifier"], number)] = Decimal(str(t["value"]))
    sliced = {
        (identifier, number): (total, slices)
        for identifier, number, total, slices in db.execute(
            "select iati_identifier, transaction_number, sum(amount_original), count(*)"
            " from intermediate.int_funding__iati_flows group by 1, 2"
        )
    }
    assert set(sliced) == set(raw)
    assert any(slices > 1 for _, slices in sliced.values()), "the sample has split transactions"
    for key, value in raw.items():
        assert abs(sliced[key][0] - value) < Decimal("1e-9"), key


def test_empty_percentage_is_split_equally_and_flagged(db):
    # GB-CHC-1089464-KD3009 sends recipient-country percentage="" (sample_feeds/iati)
    row = db.execute(
        "select bool_and(is_country_equal_split), sum(country_share)"
        " from intermediate.int_funding__iati_flows"
        " where iati_identifier = 'GB-CHC-1089464-KD3009' group by transaction_number limit 1"
    ).fetchone()
    assert row is not None
    assert row[0] is True
    assert row[1] == 1
    flagged = db.execute(
        "select count(*) from marts_candidate.fct_funding_flows"
        " where source = 'iati' and has_equal_split and country_code = 'GHA'"
    ).fetchone()[0]
    assert flagged >= 1


def test_360giving_grants_in_usd_equal_the_raw_grants(db, units_per_usd):
    expected = Decimal(0)
    grants = db.execute(
        "select distinct on (g.grant_id) g.amount_awarded, g.currency, g.award_date"
        " from raw.threesixtygiving_grants g join ops.load_batches b on b.batch_id = g.batch_id"
        " where b.status = 'loaded' order by g.grant_id, g.batch_id desc"
    ).fetchall()
    for amount, currency, awarded in grants:
        expected += amount / units_per_usd[(currency, awarded.year)]
    actual, rows = db.execute(
        "select sum(amount_usd), count(*) from marts_candidate.fct_funding_flows"
        " where source = '360giving'"
    ).fetchone()
    assert len(grants) == 30
    assert abs(actual - expected) <= CENT / 2 * rows


def test_mental_health_share_recomputed_from_budget_ghed_and_population(db, units_per_usd):
    budget = defaultdict(lambda: defaultdict(Decimal))
    for country, year, kind, amount, currency in db.execute(
        "select m.country_code, m.fiscal_year, m.amount_type, m.amount, m.currency"
        " from raw.template_ministry_budget m join ops.load_batches b on b.batch_id = m.batch_id"
        " where b.status = 'loaded'"
    ):
        budget[(country, year)][kind] += amount / units_per_usd[(currency, year)]
    ghed = defaultdict(dict)
    for indicator, country, year, value in db.execute(
        "select v.indicator_code, v.country_code, v.period, v.value_numeric"
        " from raw.who_gho_values v join ops.load_batches b on b.batch_id = v.batch_id"
        " where b.status = 'loaded' and v.value_numeric is not null"
    ):
        ghed[(country, year)][indicator] = value
    population = {
        (country, year): people
        for country, year, people in db.execute(
            "select p.geography_code, p.year, sum(p.population) from raw.template_population p"
            " join ops.load_batches b on b.batch_id = p.batch_id"
            " where b.status = 'loaded' and p.geography_code = 'GHA' group by 1, 2"
        )
    }
    rows = db.execute(
        "select country_code, year, mh_spending_usd, mh_spending_basis, share_percent,"
        " gap_to_10_percent_floor, meets_floor, share_missing_reason"
        " from marts_candidate.mart_mental_health_funding_share where country_code = 'GHA'"
    ).fetchall()
    checked = 0
    for country, year, spending, basis, share, gap, meets, reason in rows:
        key = (country, year)
        if key in budget:
            kind = "spent" if "spent" in budget[key] else "allocated"
            assert basis == kind
            assert abs(spending - budget[key][kind]) <= CENT
        inputs = ghed.get(key, {})
        if key in budget and len(inputs) == 2 and key in population:
            government = (
                inputs["GHED_CHE_pc_US_SHA2011"]
                * population[key]
                * inputs["GHED_GGHE-DCHE_SHA2011"]
                / 100
            )
            expected = 100 * budget[key][kind] / government
            assert abs(share - expected) < Decimal("0.0001"), key
            assert abs(gap - max(10 - expected, Decimal(0))) < Decimal("0.0001")
            assert meets is (expected >= 10)
            assert reason is None
            checked += 1
        else:
            assert share is None and gap is None and meets is None
            assert reason
    # the sample overlaps in 2021 and 2022 (budgets 2021-2025, GHED 2015-2022)
    assert checked == 2
