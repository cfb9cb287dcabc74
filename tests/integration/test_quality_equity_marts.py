"""The quality-gate suites of the equity marts against the real cluster, in a scratch warehouse
database (the shared `warehouse` is untouched): mart_inequality_measures and mart_service_use_by_arc
pass on the bundled sample feeds, and so do mart_know_do_gap and fct_outcomes with their secondary
suppression rule; a copy of the candidates with planted violations makes exactly the planted
expectations fail (every expectation of the two equity suites, and the secondary suppression rule).

The plants go into copies of the candidate tables in a schema of their own (GX reads through its own
connection, so they must be committed, and the candidates must stay as dbt built them). Each plant
breaks one rule in a set (indicator x period x place x dimension) no other plant touches.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import replace

import pytest

from knowdo.db import connect
from tests.conftest import REPO
from tests.helpers.scratch_warehouse import clone_template, scratch_settings

pytestmark = pytest.mark.integration
# KNOWDO_TEST_QUALITY_MARTS_DB lets an engineer point the module at a warehouse of their own
SCRATCH_DB = os.environ.get("KNOWDO_TEST_QUALITY_MARTS_DB", "knowdo_test_quality_marts")
SUITES = REPO / "expectations" / "suites" / "marts"
EQUITY_MARTS = ("mart_inequality_measures", "mart_service_use_by_arc")
SECONDARY_SUPPRESSION_MARTS = ("mart_know_do_gap", "fct_outcomes")
MARTS = EQUITY_MARTS + SECONDARY_SUPPRESSION_MARTS
PLANTED_SCHEMA = "zz_test_planted_marts"
EMPTY_SCHEMA = "zz_test_empty_marts"
INEQUALITY_SET = ("indicator_code", "period_start", "geography_code", "stratifier")
ARC_SET = ("period_start", "geography_code", "indicator_code")


@pytest.fixture(scope="module")
def scratch(scratch_template, tmp_path_factory):
    """The sample feeds loaded and the four marts (and what they need) built in marts_candidate: a
    copy of the session's template warehouse (tests/helpers/scratch_warehouse.build_template), since
    the plants below are committed in schemas of their own."""
    clone_template(scratch_template, SCRATCH_DB)
    with scratch_settings(SCRATCH_DB) as settings:
        settings = replace(settings, gx_docs_dir=tmp_path_factory.mktemp("data_docs"))
        yield settings
        with connect(settings.transformer_url) as conn, conn.transaction():
            for schema in (PLANTED_SCHEMA, EMPTY_SCHEMA):
                conn.execute(f"drop schema if exists {schema} cascade")


def _gate(settings, schema: str):
    from knowdo.quality import run_gate

    result = run_gate(schema=schema, settings=settings, layers=("marts",))
    return result, {o.table: o for o in result.outcomes}


def _identity(expectation: str, column: str | None, description: str) -> str:
    """How a suite expectation and its failure are matched: a row query by its description, a
    column expectation by its type and columns."""
    if expectation == "unexpected_rows_expectation":
        return description
    return f"{expectation} {column}"


def suite_identities(mart: str) -> list[str]:
    spec = json.loads((SUITES / f"{mart}.json").read_text(encoding="utf-8"))
    out = []
    for e in spec["expectations"]:
        kw = e.get("kwargs", {})
        column = kw.get("column") or (
            ",".join(kw["column_list"])
            if "column_list" in kw
            else f"{kw['column_A']},{kw['column_B']}"
            if "column_A" in kw
            else None
        )
        out.append(_identity(e["type"], column, kw.get("description", "")))
    return out


def failed(outcome) -> set[str]:
    return {_identity(f.expectation, f.column, f.description) for f in outcome.failures}


def test_the_suites_pass_on_the_sample_feeds(scratch):
    result, outcomes = _gate(scratch, "marts_candidate")
    text = result.summary()
    for mart in MARTS:
        outcome = outcomes[mart]
        assert outcome.suite == mart and outcome.success, text
        assert outcome.evaluated >= len(suite_identities(mart)), text


def test_each_suite_expectation_has_its_own_identity():
    for mart in MARTS:
        identities = suite_identities(mart)
        assert len(identities) == len(set(identities)), mart
    assert sum("secondary suppression" in i for i in suite_identities("fct_outcomes")) == 1
    assert sum("secondary suppression" in i for i in suite_identities("mart_know_do_gap")) == 1


# --- plants --------------------------------------------------------------------------------------

ROW_KEY = {
    "mart_inequality_measures": "inequality_measure_key",
    "mart_service_use_by_arc": "service_use_key",
    "mart_know_do_gap": "know_do_gap_key",
    "fct_outcomes": "outcome_key",
}


class Planter:
    """Copies the candidates into a schema of their own and breaks rows there, each plant in a set
    (the `key` columns' values) that no other plant touches."""

    def __init__(self, conn, schema: str):
        self.conn = conn
        self.schema = schema
        self.used: set[tuple] = set()

    def copy(self, empty: bool = False) -> None:
        self.conn.execute(f"drop schema if exists {self.schema} cascade")
        self.conn.execute(f"create schema {self.schema}")
        for mart in MARTS:
            # create table as: without the contract's constraints, so a plant can break any rule
            self.conn.execute(
                f"create table {self.schema}.{mart} as"
                f" select * from marts_candidate.{mart}" + (" with no data" if empty else "")
            )

    def sets(self, table: str, key: tuple[str, ...], having: str) -> Iterator[tuple]:
        """The sets of `table` that satisfy `having`, each handed out once."""
        columns = ", ".join(key)
        rows = self.conn.execute(
            f"select {columns} from {self.schema}.{table} group by {columns}"
            f" having {having} order by {columns}"
        ).fetchall()
        for row in rows:
            if (table, *row) not in self.used:
                self.used.add((table, *row))
                yield tuple(row)

    def one_set(self, table: str, key: tuple[str, ...], having: str) -> tuple:
        found = next(self.sets(table, key, having), None)
        assert found is not None, f"the sample feeds have no {table} set with {having}"
        return found

    def row(
        self,
        table: str,
        key: tuple[str, ...],
        values: tuple,
        condition: str,
        first_by: str | None = None,
    ) -> str:
        """The row key of the one row of a set that meets `condition` (the first by `first_by`)."""
        where = " and ".join(f"{c} = %s" for c in key)
        order = f" order by {first_by} limit 1" if first_by else ""
        rows = self.conn.execute(
            f"select {ROW_KEY[table]} from {self.schema}.{table}"
            f" where {where} and {condition}{order}",
            values,
        ).fetchall()
        assert len(rows) == 1, (table, values, condition, rows)
        return rows[0][0]

    def update(self, table: str, row_key: str, assignments: str) -> None:
        cur = self.conn.execute(
            f"update {self.schema}.{table} set {assignments} where {ROW_KEY[table]} = %s",
            (row_key,),
        )
        assert cur.rowcount == 1, (table, row_key, assignments)

    def update_set(self, table: str, key: tuple[str, ...], values: tuple, assignments: str) -> int:
        where = " and ".join(f"{c} = %s" for c in key)
        return self.conn.execute(
            f"update {self.schema}.{table} set {assignments} where {where}", values
        ).rowcount

    def copy_row(self, table: str, row_key: str, assignments: str) -> None:
        self.conn.execute(
            f"create temporary table planted_row as select * from"
            f" {self.schema}.{table} where {ROW_KEY[table]} = %s",
            (row_key,),
        )
        self.conn.execute(f"update planted_row set {assignments}")
        self.conn.execute(f"insert into {self.schema}.{table} select * from planted_row")
        self.conn.execute("drop table planted_row")

    def delete(self, table: str, row_key: str) -> None:
        cur = self.conn.execute(
            f"delete from {self.schema}.{table} where {ROW_KEY[table]} = %s", (row_key,)
        )
        assert cur.rowcount == 1


PUBLISHED_NON_ORDERED = (
    "not bool_or(is_ordered_dimension) and min(group_count) > 2"
    " and bool_and(is_favourable_indicator) and count(value) = 15"
)
PUBLISHED_ORDERED = (
    "bool_and(is_ordered_dimension) and min(group_count) > 2"
    " and bool_and(is_favourable_indicator)"
    " and count(value) filter (where measure in ('rii', 'rci')) = 2"
)


def plant_inequality_measures(p: Planter) -> None:
    t, key = "mart_inequality_measures", INEQUALITY_SET
    non_ordered = p.sets(t, key, PUBLISHED_NON_ORDERED + " and min(country_code) <> 'GBR'")
    ordered = p.sets(t, key, PUBLISHED_ORDERED)

    def row(sets: Iterator[tuple] | tuple, measure: str) -> str:
        values = sets if isinstance(sets, tuple) else next(sets)
        return p.row(t, key, values, f"measure = '{measure}'")

    # grain and keys
    p.copy_row(t, row(non_ordered, "d"), "inequality_measure_key = 'planted-duplicate-grain'")
    s = next(non_ordered)
    p.update(t, row(s, "r"), f"inequality_measure_key = '{row(s, 'd')}'")
    p.update(t, row(non_ordered, "d"), "inequality_measure_key = null")
    p.update(t, row(non_ordered, "d"), "country_code = null")
    # codes
    p.copy_row(
        t,
        row(non_ordered, "d"),
        "inequality_measure_key = 'planted-measure', measure = 'zz_planted'",
    )
    assert p.update_set(t, key, next(non_ordered), "stratifier = 'zz_planted'") == 19
    p.update(t, row(non_ordered, "d"), "geography_level = 'district'")
    p.update(t, row(non_ordered, "d"), "source_model = 'fct_planted'")
    p.update(t, row(non_ordered, "d"), "measure_kind = 'planted'")
    p.update(t, row(non_ordered, "d"), "is_ordered_dimension = null")
    p.update(t, row(non_ordered, "d"), "is_favourable_indicator = null")
    p.update(t, row(non_ordered, "sii"), "group_count = 0")
    # the whole HEAT set
    p.delete(t, row(non_ordered, "mld"))
    # confidence intervals
    p.update(t, row(ordered, "d"), "lower_95 = value + 1")
    p.update(t, row(ordered, "sii"), "upper_95 = value - 1")
    p.update(t, row(non_ordered, "sii"), "lower_95 = 1, upper_95 = 2")
    # NULL with the reason, never a number where a measure does not apply
    p.update(t, row(non_ordered, "aci"), "not_applicable_reason = null")
    rii_not_applicable = p.one_set(
        t,
        key,
        "bool_and(is_ordered_dimension) and bool_or("
        "measure = 'rii' and not_applicable_reason like 'the fitted%')",
    )
    p.update(t, row(rii_not_applicable, "rii"), "value = 2")
    p.update(t, row(non_ordered, "rci"), "value = 0.1, not_applicable_reason = null")
    # disclosure: a set with a suppressed group publishes nothing
    suppressed = p.one_set(
        t, key, "bool_or(not_applicable_reason like 'a group has no published%')"
    )
    p.update(
        t,
        row(suppressed, "d"),
        "value = 10, not_applicable_reason = null,"
        " group_1_code = 'planted_1', group_2_code = 'planted_2'",
    )
    # group codes and ranges
    p.update(t, row(non_ordered, "r"), "group_2_code = null")
    p.update(t, row(ordered, "r"), "value = -0.5, lower_95 = -1")
    p.update(t, row(non_ordered, "d"), "value = -5, lower_95 = -10, upper_95 = 0")
    p.update(t, row(ordered, "rii"), "value = -0.2, lower_95 = -0.3, upper_95 = -0.1")
    p.update(t, row(ordered, "rci"), "value = 1.5, upper_95 = 2")
    p.update(t, row(non_ordered, "paf"), "value = -5")
    p.update(t, row(non_ordered, "ti"), "value = -1")
    # access key
    england = p.one_set(
        t,
        key,
        "not bool_or(is_ordered_dimension) and count(value) = 15 and min(country_code) = 'GBR'",
    )
    p.update(t, row(england, "d"), "arc_code = null")


SUPPRESS_ARC_CELL = (
    "is_suppressed = true, suppression_reason = 'disclosure control', numerator = null,"
    " value = null, lower_95 = null, upper_95 = null, rate_ratio = null,"
    " rate_ratio_lower_95 = null, rate_ratio_upper_95 = null, rate_difference = null,"
    " rate_difference_lower_95 = null, rate_difference_upper_95 = null"
)


def plant_service_use_by_arc(p: Planter) -> None:
    t, key = "mart_service_use_by_arc", ARC_SET
    clean = p.sets(
        t,
        key,
        "not bool_or(is_suppressed) and count(*) filter (where group_code in"
        " ('asian', 'black', 'mixed', 'white') and rate_ratio is not null) = 4",
    )

    def row(sets: Iterator[tuple] | tuple, group: str) -> str:
        values = sets if isinstance(sets, tuple) else next(sets)
        return p.row(t, key, values, f"group_code = '{group}'")

    # grain and keys
    p.copy_row(t, row(clean, "black"), "service_use_key = 'planted-duplicate-grain'")
    s = next(clean)
    p.update(t, row(s, "asian"), f"service_use_key = '{row(s, 'black')}'")
    p.update(t, row(clean, "mixed"), "service_use_key = null")
    # access key and codes
    p.update(t, row(clean, "black"), "arc_code = null")
    p.update(t, row(clean, "black"), "country_code = 'GHA'")
    p.update(t, row(clean, "black"), "geography_level = 'region'")
    p.update(t, row(clean, "black"), "stratifier = 'sex'")
    p.update(t, row(clean, "asian"), "is_suppressed = null")
    # rates, intervals and comparisons with White
    p.update(t, row(clean, "black"), "value = 150000, upper_95 = 200000")
    p.update(t, row(clean, "black"), "lower_95 = value + 1")
    p.update(t, row(clean, "black"), "upper_95 = value - 1")
    p.update(t, row(clean, "black"), "rate_ratio_lower_95 = rate_ratio + 1")
    p.update(t, row(clean, "black"), "rate_ratio_upper_95 = rate_ratio - 0.1")
    p.update(t, row(clean, "black"), "rate_difference_lower_95 = rate_difference + 1")
    p.update(t, row(clean, "black"), "rate_difference_upper_95 = rate_difference - 1")
    p.update(t, row(clean, "black"), "rate_ratio = -0.5, rate_ratio_lower_95 = -1")
    p.update(t, row(clean, "white"), "rate_ratio = 1.2")
    p.update(t, row(clean, "asian"), "value = null")
    # disclosure control
    p.update(t, row(clean, "black"), "numerator = 3")
    suppressed = p.one_set(t, key, "count(*) filter (where is_suppressed) >= 2")
    p.update(t, p.row(t, key, suppressed, "is_suppressed", first_by="group_code"), "numerator = 5")
    p.update(t, row(clean, "black"), "suppression_reason = 'planted'")
    p.delete(t, row(clean, "all"))
    p.update(t, row(clean, "asian"), SUPPRESS_ARC_CELL)


def plant_secondary_suppression(p: Planter) -> None:
    """In mart_know_do_gap and fct_outcomes, one cell suppressed as primary suppression does it
    (nothing shown, a reason) in a set that had none: only the secondary suppression rule can see
    that it is recoverable from the set's other cells."""
    key = ("intervention_code", "geography_code", "year", "stratifier")
    gap = p.one_set(
        "mart_know_do_gap",
        key,
        "not bool_or(is_suppressed) and bool_and(geography_level <> 'national')"
        " and min(stratifier) <> 'all' and count(reached) > 1",
    )
    p.update(
        "mart_know_do_gap",
        p.row("mart_know_do_gap", key, gap, "reached is not null", first_by="group_order"),
        "is_suppressed = true, suppression_reason = 'disclosure control', reached = null,"
        " coverage_percent = null, coverage_lower_95 = null, coverage_upper_95 = null,"
        " gap = null, reached_per_100k = null, reached_per_100k_lower_95 = null,"
        " reached_per_100k_upper_95 = null",
    )
    key = ("period_start", "geography_code", "intervention_code", "measure", "stratifier")
    outcome = p.one_set(
        "fct_outcomes",
        key,
        "not bool_or(is_suppressed) and bool_and(geography_level <> 'national')"
        " and min(stratifier) <> 'all' and count(numerator) > 1",
    )
    p.update(
        "fct_outcomes",
        p.row("fct_outcomes", key, outcome, "numerator is not null", first_by="group_order"),
        "is_suppressed = true, suppression_reason = 'disclosure control', numerator = null,"
        " value = null, lower_95 = null, upper_95 = null, lower_998 = null,"
        " upper_998 = null, difference_from_reference = null, difference_lower_95 = null,"
        " difference_upper_95 = null",
    )


@pytest.fixture(scope="module")
def planted(scratch):
    with connect(scratch.transformer_url) as conn, conn.transaction():
        planter = Planter(conn, PLANTED_SCHEMA)
        planter.copy()
        plant_inequality_measures(planter)
        plant_service_use_by_arc(planter)
        plant_secondary_suppression(planter)
    return _gate(scratch, PLANTED_SCHEMA)


@pytest.mark.parametrize("mart", EQUITY_MARTS)
def test_every_expectation_of_the_equity_suites_fails_on_its_planted_violation(planted, mart):
    result, outcomes = planted
    outcome = outcomes[mart]
    assert not outcome.success
    # each plant breaks one rule; all of the suite's rules but the row count are planted
    expected = set(suite_identities(mart)) - {"expect_table_row_count_to_be_between None"}
    assert failed(outcome) == expected, (
        f"not failing: {sorted(expected - failed(outcome))}\n"
        f"failing unplanted: {sorted(failed(outcome) - expected)}\n{result.summary()}"
    )
    # a failure is one the gate could evaluate, never an error in the suite's SQL, and names the
    # planted rows only (a duplicate: 2 rows; a missing 'All' row: the set's 6 groups; a renamed
    # dimension: its 19 measures), not every row of the table
    assert "could not be evaluated" not in result.summary()
    for failure in outcome.failures:
        assert failure.unexpected_count in (1, 2, 6, 19), failure.line()


@pytest.mark.parametrize("mart", SECONDARY_SUPPRESSION_MARTS)
def test_a_recoverable_suppressed_cell_fails_secondary_suppression(planted, mart):
    result, outcomes = planted
    (secondary,) = [i for i in suite_identities(mart) if i.startswith("secondary suppression")]
    assert failed(outcomes[mart]) == {secondary}, result.summary()
    (failure,) = outcomes[mart].failures
    assert failure.unexpected_count == 1


def test_an_empty_candidate_fails_its_row_count(scratch):
    with connect(scratch.transformer_url) as conn, conn.transaction():
        Planter(conn, EMPTY_SCHEMA).copy(empty=True)
    result, outcomes = _gate(scratch, EMPTY_SCHEMA)
    for mart in EQUITY_MARTS:
        assert failed(outcomes[mart]) == {"expect_table_row_count_to_be_between None"}, (
            result.summary()
        )
