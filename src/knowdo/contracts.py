"""Data contracts of KnowDo's own CSV templates (feeds/contracts/<template>.v<major>.yml).

A contract names a template's columns with their type, unit, whether they are required, the codes
or range they allow, and cross-field rules; `parse_record` types one record and lists how it breaks it.

The contract files are validated by hand rather than with pydantic (which is only an indirect
dependency here) so that every error is one line naming the file and the field, e.g.
"ngo-outcomes.v1.yml: columns[3] 'period': unknown type 'months' (known: code, date, ...)".
Cross-field rules are small comparison expressions parsed with `ast` and walked by a tiny
evaluator that knows only columns, constants, comparisons, `and` and `or`: nothing is executed.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from knowdo.config import REPO_ROOT

# knowdo.formats._csv (number, date and suppression-marker reading) is imported inside the functions
# that use it: importing knowdo.formats builds the format registry, whose template formats import
# this module, so a top-level import would be circular when this module is imported first.

# Beside the feed registry: under KNOWDO_HOME (the checkout by default), like Settings.feeds_file.
CONTRACTS_DIR = Path(os.environ.get("KNOWDO_HOME") or REPO_ROOT) / "feeds" / "contracts"
CODELISTS_FILE = "codelists.yml"

TYPES = ("code", "date", "decimal", "integer", "month", "text", "year")
NUMERIC_TYPES = ("integer", "decimal")
TIME_TYPES = ("date", "month", "year")
UNITS = ("count", "persons", "USD", "local currency", "percent", "score")
# The raw table's column type for each contract type (src/knowdo/sql/030_template_raw.sql).
SQL_TYPES = {
    "code": "text",
    "text": "text",
    "integer": "bigint",
    "decimal": "numeric",
    "date": "date",
    "month": "date",
    "year": "integer",
}
# Columns the loader or the template parser add to every template's raw table.
RESERVED_COLUMNS = (
    "batch_id",
    "file_sha256",
    "row_number",
    "feed_id",
    "contract_version",
    "suppressed_columns",
)

_NAME = re.compile(r"^[a-z][a-z0-9-]*[a-z0-9]$")
_COLUMN = re.compile(r"^[a-z][a-z0-9_]*$")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_YEAR = re.compile(r"^\d{4}$")
# Digits before the point a number may have: bigint holds 18 for integers; 30 is far beyond any
# real amount in any currency.
_MAX_DIGITS = {"integer": 18, "decimal": 30}
_CONTRACT_KEYS = {"name", "version", "description", "grain", "period_column", "columns", "rules"}
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
}
_RULE_KEYS = {"check", "message", "when"}


class ContractError(ValueError):
    """A contract or code list file is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Problem:
    """Why one field (or a cross-field rule) of a record breaks the contract."""

    field: str
    value: str | None
    reason: str


@dataclass(frozen=True)
class Allowed:
    """The codes a code column allows: a fixed set, or a set per value of another column."""

    codes: frozenset[str] = frozenset()
    within: str | None = None  # the column whose value picks the set from codes_by
    codes_by: dict[str, frozenset[str]] = field(default_factory=dict)
    source: str = "the contract"  # for messages: "code list iso3_countries"

    def codes_for(self, record_values: dict[str, Any]) -> frozenset[str] | None:
        if self.within is None:
            return self.codes
        return self.codes_by.get(record_values.get(self.within))


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    description: str
    required: bool
    unit: str | None = None
    allowed: Allowed | None = None
    pattern: re.Pattern | None = None
    min: Decimal | None = None
    max: Decimal | None = None
    max_length: int | None = None
    suppressible: bool = False
    not_future: bool = False

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.type]

    @property
    def kind(self) -> str:
        """What a rule may compare this column with: numbers, dates or text."""
        if self.type in NUMERIC_TYPES or self.type == "year":
            return "number"
        return "date" if self.type in ("date", "month") else "text"


@dataclass(frozen=True)
class Rule:
    check: str
    message: str
    when: str | None
    columns: tuple[str, ...]  # the columns the check reads, for the rejection's field
    _check: tuple = field(repr=False, compare=False, default=())
    _when: tuple | None = field(repr=False, compare=False, default=None)


@dataclass(frozen=True)
class Contract:
    name: str
    version: str
    description: str
    grain: tuple[str, ...]
    columns: tuple[Column, ...]
    rules: tuple[Rule, ...] = ()
    period_column: str | None = None
    path: Path | None = None

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @property
    def slug(self) -> str:
        """The template name with its major version when above 1 (ngo-outcomes, ngo-outcomes-v2)."""
        return self.name if self.major == 1 else f"{self.name}-v{self.major}"

    @property
    def format_name(self) -> str:
        return f"knowdo-{self.slug}-csv"

    @property
    def raw_table(self) -> str:
        return f"raw.template_{self.slug.replace('-', '_')}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def has_suppressible(self) -> bool:
        return any(c.suppressible for c in self.columns)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


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
    path = path or CONTRACTS_DIR / CODELISTS_FILE
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
    for flag in ("suppressible", "not_future"):
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
    )


def _allowed(spec: Any, codelists: dict[str, Allowed], where: str) -> Allowed:
    if isinstance(spec, list):
        return Allowed(codes=_code_set(spec, where))
    if not isinstance(spec, dict) or "codelist" not in spec:
        raise ContractError(f"{where}: expected a list of codes or {{codelist: <name>}}")
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


_OPS = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}


def _compile_expression(text: Any, columns: dict[str, Column], where: str) -> tuple:
    """A rule expression as a small tree of tuples; only comparisons, and, or."""
    if not isinstance(text, str) or not text.strip():
        raise ContractError(f"{where}: expected an expression such as 'a <= b'")
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        raise ContractError(f"{where}: {text!r} is not a valid expression") from None

    def operand(node: ast.AST) -> tuple:
        if isinstance(node, ast.Name):
            if node.id not in columns:
                raise ContractError(f"{where}: unknown column {node.id!r} in {text!r}")
            return ("column", node.id, columns[node.id].kind)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = operand(node.operand)
            if inner[0] == "constant" and inner[2] == "number":
                return ("constant", -inner[1], "number")
        if isinstance(node, ast.Constant) and not isinstance(node.value, bool):
            if isinstance(node.value, int | float):
                return ("constant", Decimal(str(node.value)), "number")
            if isinstance(node.value, str):
                return ("constant", node.value, "text")
        raise ContractError(
            f"{where}: only column names, numbers and 'text' may be compared in {text!r}"
        )

    def walk(node: ast.AST) -> tuple:
        if isinstance(node, ast.BoolOp):
            return ("and" if isinstance(node.op, ast.And) else "or", [walk(v) for v in node.values])
        if isinstance(node, ast.Compare):
            operands = [operand(node.left)] + [operand(c) for c in node.comparators]
            ops = []
            for op, left, right in zip(node.ops, operands, operands[1:]):
                if type(op) not in _OPS:
                    raise ContractError(
                        f"{where}: only <, <=, >, >=, ==, != may be used in {text!r}"
                    )
                if left[2] != right[2]:
                    raise ContractError(
                        f"{where}: cannot compare a {left[2]} with a {right[2]} in {text!r}"
                    )
                ops.append(_OPS[type(op)])
            return ("compare", operands, ops)
        raise ContractError(f"{where}: {text!r} must be comparisons joined by 'and' / 'or'")

    return walk(tree)


def _expression_columns(node: tuple) -> list[str]:
    if node[0] in ("and", "or"):
        return [c for child in node[1] for c in _expression_columns(child)]
    return [o[1] for o in node[1] if o[0] == "column"]


def _rule(entry: Any, index: int, columns: dict[str, Column], fname: str) -> Rule:
    where = f"{fname}: rules[{index}]"
    if not isinstance(entry, dict):
        raise ContractError(f"{where}: expected a mapping with check and message")
    if unknown := sorted(set(entry) - _RULE_KEYS):
        raise ContractError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: check, message, when)"
        )
    message = entry.get("message")
    if not isinstance(message, str) or not message.strip():
        raise ContractError(f"{where}: missing required field 'message'")
    check = _compile_expression(entry.get("check"), columns, f"{where}.check")
    when = None
    if "when" in entry:
        when = _compile_expression(entry["when"], columns, f"{where}.when")
    return Rule(
        check=entry["check"].strip(),
        message=" ".join(message.split()),
        when=entry.get("when"),
        columns=tuple(dict.fromkeys(_expression_columns(check))),
        _check=check,
        _when=when,
    )


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
    )


def load_contracts(directory: Path | None = None) -> dict[str, Contract]:
    """Every contract in `directory` (default feeds/contracts), by format name."""
    directory = directory or CONTRACTS_DIR
    codelists = load_codelists(directory / CODELISTS_FILE)
    contracts: dict[str, Contract] = {}
    for path in sorted(directory.glob("*.v*.yml")):
        contract = load_contract(path, codelists)
        if contract.format_name in contracts:
            raise ContractError(f"{path.name}: template {contract.slug} is defined twice")
        contracts[contract.format_name] = contract
    return contracts


# --- validating records ---------------------------------------------------------------------


@dataclass
class ParsedRecord:
    """A record's values typed as the contract says, the columns sent suppressed, the problems."""

    values: dict[str, Any]
    suppressed: list[str]
    problems: list[Problem]


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)


def _typed(column: Column, text: str, today: date) -> Any:
    """The value of one non-empty cell; ValueError with a plain reason when it is not valid."""
    from knowdo.formats._csv import parse_date, parse_number

    if "\x00" in text:  # PostgreSQL text cannot hold it; the row, not the load, must fail
        raise ValueError("contains a NUL character (binary data in a text file)")
    if column.type in ("text", "code") and column.max_length and len(text) > column.max_length:
        raise ValueError(f"the text is longer than {column.max_length} characters")
    if column.type == "text":
        if column.pattern and not column.pattern.fullmatch(text):
            raise ValueError(f"'{text}' does not have the expected form ({column.description})")
        return text
    value = text.strip()
    if column.type == "code":
        return value  # codes are checked by _check_code once the whole record is typed
    if column.type in NUMERIC_TYPES:
        try:
            number = parse_number(value)
        except ValueError:
            hint = (
                " (write numbers without units or symbols)" if re.search(r"[%$£€]", value) else ""
            )
            raise ValueError(f"'{text}' is not a number{hint}") from None
        if number and number.adjusted() >= _MAX_DIGITS[column.type]:
            raise ValueError(f"'{text}' is implausibly large")  # and would not fit the column
        if column.type == "integer":
            if number != number.to_integral_value():
                raise ValueError(f"'{text}' is not a whole number")
            number = number.to_integral_value()
        _check_range(column, number, text)
        return int(number) if column.type == "integer" else number
    if column.type == "year":
        if not _YEAR.match(value):
            raise ValueError(f"'{text}' is not a year (expected YYYY, e.g. 2024)")
        year = int(value)
        _check_range(column, Decimal(year), text)
        if column.not_future and year > today.year:
            raise ValueError(f"{year} is in the future (received {today.isoformat()})")
        return year
    if column.type == "month":
        m = _MONTH.match(value)
        if not m:
            raise ValueError(f"'{text}' is not a month (expected YYYY-MM, e.g. 2024-03)")
        start = date(int(m[1]), int(m[2]), 1)
    else:
        start = parse_date(value)
    if column.not_future and start > today:
        raise ValueError(f"'{value}' is in the future (received {today.isoformat()})")
    return start


def _check_range(column: Column, number: Decimal, text: str) -> None:
    if column.min is not None and number < column.min:
        extra = (
            " (a count cannot be negative)" if column.unit == "count" and column.min == 0 else ""
        )
        raise ValueError(f"{text.strip()} is below the minimum of {_fmt(column.min)}{extra}")
    if column.max is not None and number > column.max:
        raise ValueError(f"{text.strip()} is above the maximum of {_fmt(column.max)}")


def _check_code(column: Column, value: str, values: dict[str, Any]) -> str | None:
    if column.pattern and not column.pattern.fullmatch(value):
        return f"'{value}' does not have the expected form ({column.description})"
    if column.allowed is None:
        return None
    codes = column.allowed.codes_for(values)
    if codes is None:
        return None  # the column it depends on is invalid or empty: reported there
    if value in codes:
        return None
    near = [c for c in codes if c.lower() == value.lower()]
    if near:
        return f"'{value}' is not an allowed code: codes are case-sensitive, write '{near[0]}'"
    if column.allowed.within:
        where = f"a group of {column.allowed.within} '{values.get(column.allowed.within)}'"
    elif column.allowed.source.startswith("code list"):
        where = f"in {column.allowed.source} (feeds/contracts/{CODELISTS_FILE})"
    else:
        where = "an allowed code"
    listing = f" (allowed: {', '.join(sorted(codes, key=_natural))})" if len(codes) <= 12 else ""
    return f"'{value}' is not {where}{listing}"


def _natural(code: str) -> tuple:
    """Sort key putting '2' before '10' in messages."""
    return tuple(
        (0, int(part), "") if part.isdigit() else (1, 0, part)
        for part in re.split(r"(\d+)", code)
        if part
    )


def parse_record(
    contract: Contract, record: dict[Any, str | None], today: date | None = None
) -> ParsedRecord:
    """Type every column of `record` ({column: cell text}); collect every problem, not the first."""
    from knowdo.formats._csv import SUPPRESSION_MARKERS, is_suppressed

    today = today or date.today()
    values: dict[str, Any] = {}
    suppressed: list[str] = []
    problems: list[Problem] = []
    for column in contract.columns:
        text = record.get(column.name)
        blank = text is None or not text.strip()
        if column.suppressible and is_suppressed(text):
            values[column.name] = None
            suppressed.append(column.name)
            continue
        if blank or (not column.required and text.strip() in SUPPRESSION_MARKERS):
            values[column.name] = None
            if column.required:
                problems.append(Problem(column.name, text, f"{column.name} is required but empty"))
            continue
        if column.required and text.strip() in SUPPRESSION_MARKERS - {""}:
            values[column.name] = None
            problems.append(
                Problem(
                    column.name,
                    text,
                    f"{column.name} is required: "
                    f"'{text.strip()}' (not available) is not allowed here",
                )
            )
            continue
        try:
            values[column.name] = _typed(column, text, today)
        except ValueError as exc:
            values[column.name] = None
            problems.append(Problem(column.name, text, str(exc)))
    for column in contract.columns:
        value = values.get(column.name)
        if (
            column.type == "code"
            and value is not None
            and (reason := _check_code(column, value, values))
        ):
            problems.append(Problem(column.name, value, reason))
    if not problems:
        for rule in contract.rules:
            if rule._when is not None and _evaluate(rule._when, values) is not True:
                continue
            if _evaluate(rule._check, values) is False:
                shown = ", ".join(f"{c}={_show(values.get(c))}" for c in rule.columns)
                problems.append(Problem(",".join(rule.columns), shown, rule.message))
    return ParsedRecord(values, suppressed, problems)


def _show(value: Any) -> str:
    if isinstance(value, Decimal):
        return _fmt(value)
    return "" if value is None else str(value)


def _compare(op: str, left: Any, right: Any) -> bool:
    return {
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
        "==": left == right,
        "!=": left != right,
    }[op]


def _evaluate(node: tuple, values: dict[str, Any]) -> bool | None:
    """True, False, or None when a value it needs is missing (suppressed or empty): a comparison
    with a missing value is not checked, like SQL's unknown."""
    kind = node[0]
    if kind == "compare":
        results = []
        for op, left, right in zip(node[2], node[1], node[1][1:]):
            a = values.get(left[1]) if left[0] == "column" else left[1]
            b = values.get(right[1]) if right[0] == "column" else right[1]
            results.append(None if a is None or b is None else _compare(op, a, b))
        return _and(results)
    results = [_evaluate(child, values) for child in node[1]]
    if kind == "and":
        return _and(results)
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _and(results: list[bool | None]) -> bool | None:
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True
