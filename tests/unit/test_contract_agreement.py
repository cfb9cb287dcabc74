"""One source of truth for a template's schema: the contract (feeds/contracts/*.yml).

The raw table's DDL is checked against the contracts in test_contracts.py (and live in
tests/integration/test_template_load.py). Here the two other places that restate a contract must
agree with it: the dbt source of the raw table, and the raw GX suite that audits it (its type check
names every typed column with the contract's SQL type, its numeric bounds are the contract's, a
flat code list's set is the code list's). Change a contract and this fails until all agree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from knowdo.contracts import RESERVED_COLUMNS, SQL_TYPES, load_contracts

REPO = Path(__file__).resolve().parents[2]
CONTRACTS = {c.raw_table: c for c in load_contracts().values()}
SUITES = REPO / "expectations" / "suites" / "raw"
TYPE_CHECK = re.compile(r"pg_typeof\((\w+)\) <> '([\w \[\]]+)'::regtype")


def dbt_sources() -> dict[str, dict]:
    tables = {}
    for path in (REPO / "dbt_project" / "models").rglob("_*__sources.yml"):
        for source in yaml.safe_load(path.read_text(encoding="utf-8")).get("sources", []):
            for table in source.get("tables", []):
                tables[f"{source.get('schema', source['name'])}.{table['name']}"] = table
    return tables


def suite(raw_table: str) -> list[dict]:
    path = SUITES / f"{raw_table.split('.', 1)[1]}.json"
    return json.loads(path.read_text(encoding="utf-8"))["expectations"]


@pytest.mark.parametrize("raw_table", sorted(CONTRACTS))
def test_the_dbt_source_declares_the_raw_table_with_only_contract_columns(raw_table):
    table = dbt_sources().get(raw_table)
    assert table is not None, f"{raw_table}: no dbt source declares it"
    known = set(CONTRACTS[raw_table].column_names) | set(RESERVED_COLUMNS)
    listed = [c["name"] for c in table.get("columns", [])]
    assert set(listed) <= known, (
        f"{raw_table}: dbt source lists {set(listed) - known}, not in the contract"
    )
    assert CONTRACTS[raw_table].name.split("-")[0] in table.get("description", "") or CONTRACTS[
        raw_table
    ].name in table.get("description", ""), raw_table


@pytest.mark.parametrize("raw_table", sorted(CONTRACTS))
def test_the_raw_suite_checks_every_typed_column_with_the_contract_type(raw_table):
    contract = CONTRACTS[raw_table]
    checked = {}
    for expectation in suite(raw_table):
        query = expectation.get("kwargs", {}).get("unexpected_rows_query", "")
        checked.update(dict(TYPE_CHECK.findall(query)))
    typed = {c.name: SQL_TYPES[c.type] for c in contract.columns if SQL_TYPES[c.type] != "text"}
    expected = {
        name: {"bigint": "bigint", "numeric": "numeric", "date": "date", "integer": "integer"}[sql]
        for name, sql in typed.items()
    }
    assert {k: v for k, v in checked.items() if k in typed} == expected, raw_table
    assert set(checked) <= set(contract.column_names) | set(RESERVED_COLUMNS), raw_table


@pytest.mark.parametrize("raw_table", sorted(CONTRACTS))
def test_the_raw_suite_bounds_and_sets_are_the_contracts(raw_table):
    contract = CONTRACTS[raw_table]
    bounds, sets = {}, {}
    for expectation in suite(raw_table):
        kwargs = expectation.get("kwargs", {})
        if expectation["type"] == "expect_column_values_to_be_between":
            bounds[kwargs["column"]] = (kwargs.get("min_value"), kwargs.get("max_value"))
        elif expectation["type"] == "expect_column_values_to_be_in_set":
            sets[kwargs["column"]] = set(kwargs["value_set"])
    for column in contract.columns:
        if column.min is not None or column.max is not None:
            want = (
                None if column.min is None else float(column.min),
                None if column.max is None else float(column.max),
            )
            got = bounds.get(column.name)
            assert got is not None, (
                f"{raw_table}.{column.name}: the contract bounds it, the suite does not"
            )
            assert tuple(None if v is None else float(v) for v in got) == want, (
                f"{raw_table}.{column.name}: suite {got}, contract {want}"
            )
    for name, values in sets.items():
        allowed = contract.column(name).allowed
        assert allowed is not None, (
            f"{raw_table}.{name}: the suite restricts it, the contract does not"
        )
        assert allowed.within is None, f"{raw_table}.{name}: a keyed code list is checked by a join"
        assert values == set(allowed.codes), (
            f"{raw_table}.{name}: suite {values}, contract {allowed.source}"
        )
    assert set(bounds) <= set(contract.column_names), raw_table
