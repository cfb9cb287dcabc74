"""Disclosure control in every public mart that publishes counts of people (docs/security.md
"Disclosure control"), checked on the built marts from the
sample feeds, in Python and independently of the dbt macros:

- below national level a published count is at least 5 and a multiple of 5; a suppressed row
  shows no count, rate or confidence limit, and says why;
- no suppressed cell can be worked out from the `all` row and its published siblings: in every
  set {all, group 1, ..., group n} of a place (and period, indicator or measure) and stratifier, the
  suppressed cells are none or at least two;
- the same NHS Talking Therapies access counts, published in both fct_outcomes and
  mart_know_do_gap, are suppressed and rounded alike (else one mart would give back the other's
  suppressed cells).

Funding marts publish money, not people, and are not covered (see their models' docs)."""

from __future__ import annotations

from collections import defaultdict

import psycopg
import pytest
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration

# mart -> (the columns that identify a place whose groups add up to its `all` row, the count,
# the statistics derived from it that must be withheld with it)
COUNT_MARTS = {
    "fct_service_use": (
        ("period_start", "geography_code", "indicator_code"),
        "numerator",
        ("value", "lower_95", "upper_95", "lower_998", "upper_998", "rate_ratio"),
    ),
    "mart_service_use_by_arc": (
        ("period_start", "geography_code", "indicator_code"),
        "numerator",
        ("value", "lower_95", "upper_95", "rate_ratio"),
    ),
    "fct_outcomes": (
        ("period_start", "geography_code", "intervention_code", "measure"),
        "numerator",
        ("value", "lower_95", "upper_95", "lower_998", "upper_998", "difference_from_reference"),
    ),
    "mart_know_do_gap": (
        ("intervention_code", "geography_code", "year"),
        "reached",
        (
            "coverage_percent",
            "coverage_lower_95",
            "gap",
            "reached_per_100k",
            "reached_per_100k_lower_95",
            "reached_per_100k_upper_95",
        ),
    ),
}


@pytest.fixture(scope="module")
def db(template_conninfo):
    """The session's template warehouse (tests/dbt/conftest.py): the sample feeds ingested,
    +fct_service_use, +fct_outcomes, +mart_know_do_gap and +mart_service_use_by_arc built by dbt
    (seeds and models)."""
    with psycopg.connect(template_conninfo, autocommit=True, row_factory=dict_row) as conn:
        yield conn


def below_national_rows(db, mart: str) -> list[dict]:
    rows = db.execute(
        f"select * from marts_candidate.{mart} where geography_level <> 'national'"
    ).fetchall()
    assert rows, f"{mart} has no rows below national level: the test would prove nothing"
    return rows


@pytest.mark.parametrize("mart", sorted(COUNT_MARTS))
def test_published_counts_are_rounded_and_suppressed_rows_show_nothing(db, mart):
    _, count_column, derived_columns = COUNT_MARTS[mart]
    for row in below_national_rows(db, mart):
        count = row[count_column]
        if row["is_suppressed"]:
            assert count is None, (mart, row)
            assert row["suppression_reason"], (mart, row)
            for column in derived_columns:
                assert row[column] is None, (mart, column, row)
        elif count is not None:
            assert count >= 5 and count % 5 == 0, (mart, count_column, row)
            assert row["suppression_reason"] is None, (mart, row)


@pytest.mark.parametrize("mart", sorted(COUNT_MARTS))
def test_no_suppressed_cell_can_be_recovered_from_the_all_row_and_its_siblings(db, mart):
    place_columns, count_column, _ = COUNT_MARTS[mart]
    totals: dict[tuple, dict] = {}
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in below_national_rows(db, mart):
        place = tuple(row[column] for column in place_columns)
        if row["stratifier"] == "all":
            totals[place] = row
        else:
            groups[(place, row["stratifier"])].append(row)

    recoverable = []
    for (place, stratifier), siblings in groups.items():
        total = totals.get(place)
        cells = siblings + ([total] if total is not None else [])
        suppressed = [cell for cell in cells if cell["is_suppressed"]]
        if len(suppressed) == 1:
            published = sum(cell[count_column] or 0 for cell in cells if not cell["is_suppressed"])
            recoverable.append((place, stratifier, suppressed[0]["group_code"], published))
    assert recoverable == [], (
        f"{mart}: {len(recoverable)} sets with one suppressed cell, e.g. {recoverable[:3]}"
    )


def test_the_sample_exercises_secondary_suppression(db):
    """The sample feeds have sets where one group is under 5, so the rule above is not vacuous."""
    # one published reason for primary and secondary suppression: the true counts (the NGO
    # template's monthly counts, summed over the year as the mart does) tell them apart here
    secondary = db.execute(
        """
        select count(*) as n
        from marts_candidate.mart_know_do_gap as k
        inner join (
            select s.intervention_code, s.geography_code, extract(year from s.period)::int as year,
                s.stratifier, s.group_code, sum(s.people_reached) as reached
            from raw.template_ngo_service_use as s
            inner join ops.load_batches as b using (batch_id)
            where b.status = 'loaded'
            group by 1, 2, 3, 4, 5
        ) as truth using (intervention_code, geography_code, year, stratifier, group_code)
        where k.is_suppressed and truth.reached >= 5
        """
    ).fetchone()["n"]
    assert secondary > 0


def test_talking_therapies_access_is_controlled_alike_in_both_marts(db):
    outcomes = {
        (r["geography_code"], r["year"], r["stratifier"], r["group_code"]): (r["n"], r["s"])
        for r in db.execute(
            """
            select geography_code, extract(year from period_start)::integer as year, stratifier,
                group_code, numerator as n, is_suppressed as s
            from marts_candidate.fct_outcomes
            where intervention_code = 'talking_therapies' and measure = 'access_rate'
            """
        )
    }
    know_do_gap = {
        (r["geography_code"], r["year"], r["stratifier"], r["group_code"]): (r["n"], r["s"])
        for r in db.execute(
            """
            select geography_code, year, stratifier, group_code, reached as n, is_suppressed as s
            from marts_candidate.mart_know_do_gap
            where intervention_code = 'talking_therapies'
            """
        )
    }
    assert outcomes, "no Talking Therapies access rows in fct_outcomes"
    assert know_do_gap == outcomes
