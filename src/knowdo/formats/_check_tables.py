"""`knowdo check` through a format's vectorised loader path (issue 13, speed: check within 1.5x of
the ingest; the row parser took ~4x as long as the DHIS2 loader on the same file).

`load_tables` gives exactly the rows, rejections and out-of-scope values of the row parser (tested
per format); what the loader does in SQL, the repeated-key check, is done here as the row parser
does it for `knowdo check`: the first row of a key is valid, each later one a rejection naming it.
The filter of the loader (`_arrow.KeyFilter`, fixed memory) proves a file has no repeated key; a
file that may have one, or that the vectorised path cannot read, is left to the row parser (None),
so the report is the row parser's in every case.
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

from knowdo.formats import FastPathUnavailable, FormatSpec, ParseContext, Rejection


@dataclass
class Tally:
    rows_valid: int = 0
    rows_out_of_scope: int = 0
    last_row: int = 0
    unmapped: Counter = field(default_factory=Counter)
    rejected_rows: set[int] = field(default_factory=set)
    errors: list[Rejection] = field(default_factory=list)  # the first `max_errors`, in row order
    errors_total: int = 0


_LIBRARIES = ("numpy", "pyarrow", "pyarrow.compute", "pyarrow.csv", "pyarrow.json")


def preload() -> None:
    """Import the vectorised path's libraries in the process that forks the parse's child (as the
    loader does): numpy's OpenBLAS allocates its buffers at import and ends the process when the
    child's memory ceiling refuses them, so the child must never import them itself."""
    import importlib

    for name in _LIBRARIES:
        importlib.import_module(name)
    import knowdo.formats._arrow  # noqa: F401


def tally(spec: FormatSpec, path: Path, ctx: ParseContext, max_errors: int) -> Tally | None:
    """What `check_file` counts from the row parser, from the vectorised path; None when the
    row parser must say it (the file needs it, or may hold a repeated key)."""
    if not spec.load_tables or not spec.key_columns:
        return None
    if not all(name in sys.modules for name in _LIBRARIES):
        return None  # not preloaded before the fork (see `preload`): the row parser
    from knowdo.formats._bounds import compressed_kind

    if compressed_kind(path):
        return None  # the row parser's bounds say why it is not read
    import pyarrow.compute as pc

    from knowdo.formats._arrow import KeyFilter

    result = Tally()
    # the loader's context: the vectorised path leaves repeated keys to its caller
    ctx = replace(ctx, defer_duplicate_check=True)
    try:
        with KeyFilter(spec.key_columns) as keys:
            for chunk in spec.load_tables(path, ctx):
                table = chunk.table
                keys.add(table)
                result.rows_valid += table.num_rows
                if table.num_rows:
                    top = pc.max(table.column("row_number")).as_py()
                    result.last_row = max(result.last_row, top)
                for outside in chunk.out_of_scope:
                    result.rows_out_of_scope += 1
                    result.unmapped.update(outside.ids)
                    result.last_row = max(result.last_row, outside.row)
                for rejection in chunk.rejections:
                    result.rejected_rows.add(rejection.row)
                    result.last_row = max(result.last_row, rejection.row)
                result.errors_total += len(chunk.rejections)
                if len(result.errors) < max_errors:
                    # blocks come in file order; within one, rejections are in row order
                    result.errors = list(
                        heapq.merge(result.errors, chunk.rejections, key=lambda r: r.row)
                    )[:max_errors]
            repeated = keys.repeated_keys()
    except FastPathUnavailable:
        return None
    if repeated is None or repeated:
        return None  # a key that may repeat: the row parser names the rows
    return result
