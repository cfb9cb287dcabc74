"""Reading an analyst's CSV and checking the columns a method needs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd


class ColumnError(ValueError):
    """A column the method needs is missing, not numeric or holds values it cannot use."""


def read_table(path: Path) -> pd.DataFrame:
    """The CSV at `path` as a DataFrame (every column as read by pandas' type inference)."""
    try:
        return pd.read_csv(path)
    except FileNotFoundError:
        raise ColumnError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ColumnError(f"{path}: cannot read as CSV: {exc}") from None


def numeric_column(frame: pd.DataFrame, name: str, role: str, source: str = "data") -> pd.Series:
    """Column `name` as floats; ColumnError naming the first bad row when it is missing, empty or
    not numeric (row numbers count the header as row 1, as a spreadsheet shows them)."""
    if name not in frame.columns:
        known = ", ".join(map(str, frame.columns))
        raise ColumnError(f"{source}: {role} column {name!r} is missing (columns: {known})")
    raw = frame[name]
    values = pd.to_numeric(raw, errors="coerce")
    bad = values.isna() | ~values.apply(lambda v: pd.notna(v) and abs(v) != float("inf"))
    if bad.any():
        index = int(bad.to_numpy().nonzero()[0][0])
        shown = raw.iloc[index]
        why = "is empty" if pd.isna(shown) or str(shown).strip() == "" else f"is {shown!r}"
        raise ColumnError(
            f"{source}: {role} column {name!r} is not numeric: row {index + 2} {why} "
            f"({int(bad.sum())} such row(s))"
        )
    return values.astype(float)
