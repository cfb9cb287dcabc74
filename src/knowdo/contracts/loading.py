"""Reading and validating contract files (feeds/contracts/<template>.v<major>.yml, codelists.yml).

The files are validated by hand rather than with pydantic (which is only an indirect dependency
here) so that every error is one line naming the file and the field, e.g.
"ngo-outcomes.v1.yml: columns[3] 'period': unknown type 'months' (known: code, date, ...)".
"""

from __future__ import annotations

import csv
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from knowdo.config import REPO_ROOT, Settings
from knowdo.contracts.model import (
    CODELISTS_FILE,
    NUMERIC_TYPES,
    RESERVED_COLUMNS,
    SEEDS_LABEL,
    TIME_TYPES,
    TYPES,
    UNITS,
    Allowed,
    Column,
    Contract,
    ContractError,
)
from knowdo.contracts.rules import _rule

# The checkout's contracts; a deployment points elsewhere with KNOWDO_HOME
# (Settings.contracts_dir, beside the feed registry like Settings.feeds_file).
CONTRACTS_DIR = REPO_ROOT / "feeds" / "contracts"
_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_COLUMN = re.compile(r"^[a-z][a-z0-9_]*$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_CONTRACT_KEYS = {
    "name",
    "version",
    "description",
    "status",
    "grain",
    "period_column",
    "columns",
    "rules",
}
STATUSES = ("active", "draft")
_COLUMN_KEYS = {
    "name",
    "type",
    "description",
    "required",
    "unit",
    "allowed",
    "pattern",
    "min",
    "max",
    "max_length",
    "suppressible",
    "not_future",
    "personal_data",
}


# --- loading --------------------------------------------------------------------------------


def _read_yaml(path: Path) -> Any:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # a safe loader
    except FileNotFoundError:
        raise ContractError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ContractError(f"{path.name}: not valid YAML: {' '.join(str(exc).split())}") from None


def _code_set(codes: Any, where: str) -> frozenset[str]:
    if not isinstance(codes, dict | list) or not codes:
        raise ContractError(f"{where}: expected a non-empty mapping of code: label (or a list)")
    for code in codes:
        if not isinstance(code, str):
            raise ContractError(
                f"{where}: code {code!r} must be quoted text (YAML read it as "
                f"{type(code).__name__})"
            )
    return frozenset(codes)


def load_codelists(path: Path | None = None) -> dict[str, Allowed]:
    """The shared code lists (feeds/contracts/codelists.yml), by name."""
    path = path or Settings.from_env().contracts_dir / CODELISTS_FILE
    doc = _read_yaml(path)
    lists = doc.get("codelists") if isinstance(doc, dict) else None
    if not isinstance(lists, dict) or not lists:
        raise ContractError(f"{path.name}: missing required field 'codelists'")
    result: dict[str, Allowed] = {}
    for name, entry in lists.items():
        where = f"{path.name}: codelists.{name}"
        if not isinstance(entry, dict) or ("codes" in entry) == ("codes_by" in entry):
            raise ContractError(f"{where}: needs exactly one of 'codes' or 'codes_by'")
        source = f"code list {name}"
        if "codes" in entry:
            result[name] = Allowed(codes=_code_set(entry["codes"], f"{where}.codes"), source=source)
        else:
            by = entry["codes_by"]
            if not isinstance(by, dict) or not by:
                raise ContractError(f"{where}.codes_by: expected a mapping of key: codes")
            result[name] = Allowed(
                codes=frozenset().union(
                    *(_code_set(v, f"{where}.codes_by.{k}") for k, v in by.items())
                ),
                codes_by={str(k): _code_set(v, f"{where}.codes_by.{k}") for k, v in by.items()},
                source=source,
            )
    return result


def _number(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ContractError(f"{where}: expected a number, got {value!r}")
    return Decimal(str(value))


def _column(
    entry: Any, index: int, codelists: dict[str, Allowed], names: set[str], fname: str
) -> Column:
    where = f"{fname}: columns[{index}]"
    if not isinstance(entry, dict):
        raise ContractError(f"{where}: expected a mapping with name, type, required, description")
    name = entry.get("name")
    if not isinstance(name, str) or not _COLUMN.match(name):
        hint = (
            " (quote it: YAML reads on/off/yes/no as true/false)" if isinstance(name, bool) else ""
        )
        raise ContractError(
            f"{where}: 'name' must be a lower_snake_case column name, got {name!r}{hint}"
        )
    where = f"{where} '{name}'"
    if name in names:
        raise ContractError(f"{where}: column defined twice")
    if name in RESERVED_COLUMNS:
        raise ContractError(f"{where}: '{name}' is reserved for the loader")
    if unknown := sorted(set(entry) - _COLUMN_KEYS):
        raise ContractError(
            f"{where}: unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_COLUMN_KEYS))})"
        )
    ctype = entry.get("type")
    if ctype not in TYPES:
        raise ContractError(f"{where}: unknown type {ctype!r} (known: {', '.join(TYPES)})")
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ContractError(f"{where}: missing required field 'description'")
    required = entry.get("required")
    if not isinstance(required, bool):
        raise ContractError(f"{where}: 'required' must be true or false")

    def only_for(key: str, types: tuple[str, ...]) -> None:
        if key in entry and ctype not in types:
            raise ContractError(
                f"{where}: '{key}' applies only to {'/'.join(types)} columns, not {ctype}"
            )

    for key, types in (
        ("unit", NUMERIC_TYPES),
        ("allowed", ("code",)),
        ("pattern", ("code", "text")),
        ("min", NUMERIC_TYPES + ("year",)),
        ("max", NUMERIC_TYPES + ("year",)),
        ("max_length", ("code", "text")),
        ("suppressible", NUMERIC_TYPES),
        ("not_future", TIME_TYPES),
        ("personal_data", ("text",)),
    ):
        only_for(key, types)

    unit = entry.get("unit")
    if ctype in NUMERIC_TYPES and unit not in UNITS:
        raise ContractError(f"{where}: 'unit' must be one of {', '.join(UNITS)}, got {unit!r}")

    allowed = None
    if "allowed" in entry:
        allowed = _allowed(entry["allowed"], codelists, f"{where}.allowed")
    pattern = None
    if "pattern" in entry:
        try:
            pattern = re.compile(str(entry["pattern"]))
        except re.error as exc:
            raise ContractError(f"{where}.pattern: not a valid regular expression: {exc}") from None
    if ctype == "code" and allowed is None and pattern is None:
        raise ContractError(f"{where}: a code column needs 'allowed' or 'pattern'")

    low = _number(entry["min"], f"{where}.min") if "min" in entry else None
    high = _number(entry["max"], f"{where}.max") if "max" in entry else None
    if low is not None and high is not None and low > high:
        raise ContractError(f"{where}: min {low} is above max {high}")
    max_length = entry.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise ContractError(f"{where}.max_length: expected a positive whole number")
    for flag in ("suppressible", "not_future", "personal_data"):
        if not isinstance(entry.get(flag, False), bool):
            raise ContractError(f"{where}: '{flag}' must be true or false")
    return Column(
        name=name,
        type=ctype,
        description=" ".join(description.split()),
        required=required,
        unit=unit,
        allowed=allowed,
        pattern=pattern,
        min=low,
        max=high,
        max_length=max_length,
        suppressible=entry.get("suppressible", False),
        not_future=entry.get("not_future", False),
        personal_data=entry.get("personal_data", False),
    )


def load_seed_codes(seed: Any, column: Any, where: str, seeds_dir: Path | None = None) -> Allowed:
    """The codes of one column of a dbt seed (Settings.dbt_project_dir/seeds/<seed>.csv).

    Issue 16: a code list that dbt also needs (the lived-experience codebook) is kept once, as a
    seed, and the contract reads it from there, so the two never disagree.
    """
    if not isinstance(seed, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", seed):
        raise ContractError(
            f"{where}: 'seed' must name a dbt seed (lower_snake_case), got {seed!r}"
        )
    if not isinstance(column, str) or not column:
        raise ContractError(f"{where}: 'column' must name the seed's column of codes")
    seeds_dir = seeds_dir or Settings.from_env().dbt_project_dir / "seeds"
    path = seeds_dir / f"{seed}.csv"
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            if column not in (reader.fieldnames or []):
                raise ContractError(
                    f"{where}: seed {seed} ({SEEDS_LABEL}/{seed}.csv) has no column {column!r} "
                    f"(it has {', '.join(reader.fieldnames or [])})"
                )
            codes = [(row.get(column) or "").strip() for row in reader]
    except FileNotFoundError:
        raise ContractError(f"{where}: seed {seed}: no such file {path}") from None
    if not codes or "" in codes:
        raise ContractError(
            f"{where}: seed {seed} ({SEEDS_LABEL}/{seed}.csv): column {column} "
            "must hold a code on every row"
        )
    return Allowed(codes=frozenset(codes), source=f"seed {seed} ({SEEDS_LABEL}/{seed}.csv)")


def _allowed(spec: Any, codelists: dict[str, Allowed], where: str) -> Allowed:
    if isinstance(spec, list):
        return Allowed(codes=_code_set(spec, where))
    if isinstance(spec, dict) and "seed" in spec:
        if unknown := sorted(set(spec) - {"seed", "column"}):
            raise ContractError(
                f"{where}: unknown field(s) {', '.join(unknown)} (known with seed: seed, column)"
            )
        return load_seed_codes(spec["seed"], spec.get("column"), where)
    if not isinstance(spec, dict) or "codelist" not in spec:
        raise ContractError(
            f"{where}: expected a list of codes, {{codelist: <name>}} or "
            "{seed: <dbt seed>, column: <its column of codes>}"
        )
    if unknown := sorted(set(spec) - {"codelist", "within", "key"}):
        raise ContractError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: codelist, within, key)"
        )
    name = spec["codelist"]
    if name not in codelists:
        raise ContractError(
            f"{where}: unknown code list {name!r} (known: {', '.join(sorted(codelists))})"
        )
    found = codelists[name]
    keyed = bool(found.codes_by)
    if "key" in spec:
        # one key, or several whose codes the column takes together (population: the high-level
        # and the detailed ethnic groups)
        keys = (
            [str(k) for k in spec["key"]] if isinstance(spec["key"], list) else [str(spec["key"])]
        )
        if not keys:
            raise ContractError(f"{where}: 'key' names no key of code list {name}")
        for key in keys:
            if not keyed or key not in found.codes_by:
                raise ContractError(f"{where}: code list {name} has no key {key!r}")
        return Allowed(
            codes=frozenset().union(*(found.codes_by[key] for key in keys)),
            source=f"code list {name} ({', '.join(keys)})",
        )
    if "within" in spec:
        if not keyed:
            raise ContractError(
                f"{where}: 'within' needs a code list with codes_by; {name} has none"
            )
        return Allowed(
            codes=found.codes,
            within=str(spec["within"]),
            codes_by=found.codes_by,
            source=found.source,
        )
    if keyed:
        raise ContractError(
            f"{where}: code list {name} is keyed: say 'within: <column>' or 'key: <key>'"
        )
    return found


def load_contract(path: Path, codelists: dict[str, Allowed] | None = None) -> Contract:
    """Read and validate one contract file; ContractError names the file and the field."""
    fname = path.name
    doc = _read_yaml(path)
    if not isinstance(doc, dict):
        raise ContractError(f"{fname}: expected a mapping with name, version, columns, ...")
    for key in ("name", "version", "description", "grain", "columns"):
        if doc.get(key) in (None, "", []):
            raise ContractError(f"{fname}: missing required field '{key}'")
    if unknown := sorted(set(doc) - _CONTRACT_KEYS):
        raise ContractError(
            f"{fname}: unknown field(s) {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_CONTRACT_KEYS))})"
        )
    name, version = doc["name"], str(doc["version"])
    if not isinstance(name, str) or not _NAME.match(name):
        raise ContractError(f"{fname}: 'name' must be lower-case words joined by '-', got {name!r}")
    if not _SEMVER.match(version):
        raise ContractError(
            f"{fname}: 'version' must be semantic (MAJOR.MINOR.PATCH), got {version!r}"
        )
    expected_file = f"{name}.v{version.split('.')[0]}.yml"
    if fname != expected_file:
        raise ContractError(
            f"{fname}: a contract named {name} at version {version} belongs in "
            f"{expected_file} (one file per major version)"
        )
    if not isinstance(doc["columns"], list):
        raise ContractError(f"{fname}: 'columns' must be a list")
    codelists = load_codelists(path.parent / CODELISTS_FILE) if codelists is None else codelists
    columns: dict[str, Column] = {}
    for i, entry in enumerate(doc["columns"]):
        column = _column(entry, i, codelists, set(columns), fname)
        columns[column.name] = column
    for column in columns.values():
        if column.allowed and column.allowed.within and column.allowed.within not in columns:
            raise ContractError(
                f"{fname}: column '{column.name}' allowed.within names unknown "
                f"column {column.allowed.within!r}"
            )
    grain = doc["grain"]
    if not isinstance(grain, list) or not all(isinstance(g, str) for g in grain):
        raise ContractError(f"{fname}: 'grain' must be a list of column names")
    for g in grain:
        if g not in columns:
            raise ContractError(f"{fname}: grain names unknown column {g!r}")
        if columns[g].suppressible:
            raise ContractError(f"{fname}: grain column {g!r} cannot be suppressible")
    period_column = doc.get("period_column")
    if period_column is not None:
        if period_column not in columns:
            raise ContractError(f"{fname}: period_column names unknown column {period_column!r}")
        if columns[period_column].type not in TIME_TYPES or not columns[period_column].required:
            raise ContractError(
                f"{fname}: period_column {period_column!r} must be a required "
                "date, month or year column"
            )
    status = doc.get("status", "active")
    if status not in STATUSES:
        raise ContractError(
            f"{fname}: 'status' must be one of {', '.join(STATUSES)}, got {status!r}"
        )
    rules = doc.get("rules") or []
    if not isinstance(rules, list):
        raise ContractError(f"{fname}: 'rules' must be a list")
    return Contract(
        name=name,
        version=version,
        description=" ".join(str(doc["description"]).split()),
        grain=tuple(grain),
        columns=tuple(columns.values()),
        rules=tuple(_rule(r, i, columns, fname) for i, r in enumerate(rules)),
        period_column=period_column,
        path=path,
        draft=status == "draft",
    )


def load_contracts(
    directory: Path | None = None, include_drafts: bool = False
) -> dict[str, Contract]:
    """Every contract in `directory` (default feeds/contracts), by format name.

    Drafts (`status: draft`) are read and validated too, but returned only with include_drafts:
    they are no format yet (no raw table, no sample file, no feed)."""
    directory = directory or Settings.from_env().contracts_dir
    codelists = load_codelists(directory / CODELISTS_FILE)
    contracts: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.v*.yml")):
        contract = load_contract(path, codelists)
        if contract.draft and not include_drafts:
            continue
        if contract.format_name in contracts:
            raise ContractError(f"{path.name}: template {contract.slug} is defined twice")
        contracts[contract.format_name] = contract
    return contracts
