"""Data contracts of KnowDo's own CSV templates (feeds/contracts/<template>.v<major>.yml).

A contract names a template's columns with their type, unit, whether they are required, the codes
or range they allow, and cross-field rules; `parse_record` types one record and lists how it breaks
it. One module per responsibility:

- `model`: the contract as data (Contract, Column, Rule, Allowed, Problem, the type tables);
- `loading`: reading and validating the contract and code-list files;
- `rules`: compiling a cross-field rule's text and evaluating it over a record;
- `records`: typing one record by its contract (`parse_record`).

This package sits below `knowdo.formats` (the template formats use it) and imports nothing from it.
"""

from knowdo.contracts.loading import (
    CONTRACTS_DIR,
    load_codelists,
    load_contract,
    load_contracts,
    load_seed_codes,
)
from knowdo.contracts.model import (
    CODELISTS_FILE,
    NUMERIC_TYPES,
    RESERVED_COLUMNS,
    SEEDS_LABEL,
    SQL_TYPES,
    TIME_TYPES,
    TYPES,
    UNITS,
    Allowed,
    Column,
    Contract,
    ContractError,
    Problem,
    Rule,
)
from knowdo.contracts.records import ParsedRecord, parse_record

__all__ = [
    "CODELISTS_FILE",
    "CONTRACTS_DIR",
    "NUMERIC_TYPES",
    "RESERVED_COLUMNS",
    "SEEDS_LABEL",
    "SQL_TYPES",
    "TIME_TYPES",
    "TYPES",
    "UNITS",
    "Allowed",
    "Column",
    "Contract",
    "ContractError",
    "ParsedRecord",
    "Problem",
    "Rule",
    "load_codelists",
    "load_contract",
    "load_contracts",
    "load_seed_codes",
    "parse_record",
]
