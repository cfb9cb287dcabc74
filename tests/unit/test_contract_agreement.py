"""One source of truth for a template's schema: the contract (feeds/contracts/*.yml).

The raw table's DDL is checked against the contracts in test_contracts.py (and live in
tests/integration/test_template_load.py). Here the two other places that restate a contract must
agree with it: the dbt source of the raw table, and the raw GX suite that audits it (its type check
names every typed column with the contract's SQL type, its numeric bounds are the contract's, a
flat code list's set is the code list's), and the staging model that names the source's columns
for dbt (every contract column selected, cast to the contract's type). Change a contract and this
fails until all agree.
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


# --- issue 14: the dbt side column by column (the staging model is where dbt names them) -------
STAGING = REPO / "dbt_project" / "models" / "staging"
# one select item of a rename-only staging model: `col`, `col::type as x`, `nullif(col, '') as x`
SELECT_ITEM = re.compile(r"^(?:nullif\()?(\w+)(?:, '[^']*'\))?(?:::([\w ]+?))?(?:\s+as\s+\w+)?$")


def staging_columns(raw_table: str) -> dict[str, str | None]:
    """{source column: the type it is cast to, or None} of the one staging model over
    `raw_table`."""
    table = raw_table.split(".", 1)[1]
    models = [
        path
        for path in STAGING.rglob("*.sql")
        if re.search(rf"source\(\s*'raw'\s*,\s*'{table}'\s*\)", path.read_text(encoding="utf-8"))
    ]
    assert len(models) == 1, f"{raw_table}: staging models over it: {models}"
    sql = models[0].read_text(encoding="utf-8")
    body = re.search(r"renamed as \(\s*select(.*?)\n\s*from source", sql, re.DOTALL)
    assert body, f"{models[0].name}: no `renamed as (select ... from source` block"
    columns: dict[str, str | None] = {}
    for line in body[1].splitlines():
        item = line.split("--", 1)[0].strip().rstrip(",").strip()
        if not item:
            continue
        m = SELECT_ITEM.match(item)
        assert m, f"{models[0].name}: '{item}' is not a rename or cast of one source column"
        columns[m[1]] = m[2]
    return columns


@pytest.mark.parametrize("raw_table", sorted(CONTRACTS))
def test_the_staging_model_selects_every_contract_column_with_its_type(raw_table):
    """A contract column the staging model leaves out is silently dropped on its way to the marts;
    one it casts to another type than the raw table's changes its meaning."""
    contract = CONTRACTS[raw_table]
    selected = staging_columns(raw_table)
    missing = [c for c in contract.column_names if c not in selected]
    assert not missing, f"{raw_table}: the staging model does not select {missing}"
    unknown = set(selected) - set(contract.column_names) - set(RESERVED_COLUMNS)
    assert not unknown, f"{raw_table}: the staging model selects {unknown}, not in the contract"
    for column in contract.columns:
        cast = selected[column.name]
        assert cast is None or cast == SQL_TYPES[column.type], (
            f"{raw_table}.{column.name}: staging casts it to {cast}, the contract's type is "
            f"{column.type} ({SQL_TYPES[column.type]})"
        )


@pytest.mark.parametrize("raw_table", sorted(CONTRACTS))
def test_the_dbt_source_column_types_are_the_contracts(raw_table):
    """Where the dbt source gives a column's data_type, it is the raw table's (contract) type."""
    contract = CONTRACTS[raw_table]
    for column in dbt_sources()[raw_table].get("columns", []):
        if "data_type" in column and column["name"] in contract.column_names:
            want = SQL_TYPES[contract.column(column["name"]).type]
            assert column["data_type"] == want, f"{raw_table}.{column['name']}: {want} expected"
