"""Values for jsonb raw columns, shared by the parsers that keep nested source structure."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # psycopg is imported when a value is wrapped, not with the format registry
    from psycopg.types.json import Jsonb


def _json_number(value: Decimal) -> int | float:
    # exact for integers of any size; decimals keep 15 significant digits (ample for money)
    return int(value) if value == value.to_integral_value() else float(value)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return _json_number(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def jsonb(value: Any) -> Jsonb:
    """Wrap a value for a jsonb column: Decimals (ijson's and lxml parsers' numbers) become JSON
    numbers, not strings; dates become ISO text; non-ASCII text stays as written."""
    from psycopg.types.json import Jsonb

    return Jsonb(value, dumps=_dumps)


def _dumps(obj: Any) -> str:
    # a module-level function, not a lambda: rows cross a process boundary (knowdo.isolation)
    return json.dumps(obj, default=_default, ensure_ascii=False)
