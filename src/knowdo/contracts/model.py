"""A template's contract as data: its columns with type, unit, codes or range, and its rules.

Built by `knowdo.contracts.loading` from feeds/contracts/<template>.v<major>.yml; read by the
record parser (`knowdo.contracts.records`) and by the template formats (knowdo.formats.templates).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

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
CODELISTS_FILE = "codelists.yml"  # beside the contracts: named in rejection reasons
SEEDS_LABEL = "dbt_project/seeds"  # where a code list kept as a dbt seed lives, for messages


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
    # issue 16: the cell may hold personal data (a quote): a rejection never repeats its value
    personal_data: bool = False

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
    # issue 16: a draft is validated like any contract but not yet served as a format (no raw
    # table, no registered feed): `status: draft` in the file
    draft: bool = False

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
