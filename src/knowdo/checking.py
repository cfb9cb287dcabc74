"""`knowdo check`: parse and validate a file without loading it, for data submitters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from knowdo.formats import FORMATS, FileRejected, ParseContext, Rejection, Row
from knowdo.landing import sha256_of


def detect_format(path: Path) -> str:
    """Guess the format from the first bytes of the file."""
    with path.open("rb") as fh:
        head = fh.read(4096)
    text = head.decode("utf-8-sig", errors="replace")
    matches = [name for name, spec in sorted(FORMATS.items()) if spec.sniff and spec.sniff(text)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(sorted(FORMATS))
    if matches:
        raise FileRejected(f"could be any of {', '.join(matches)}: pass --format")
    raise FileRejected(f"format not recognised: pass --format (known: {known})")


def check_file(path: Path, fmt: str, ctx: ParseContext | None = None, max_errors: int = 100) -> dict[str, Any]:
    spec = FORMATS[fmt]
    rows_valid = 0
    rejected_rows: set[int] = set()
    errors: list[dict[str, Any]] = []
    errors_total = 0
    last_row = 0
    for item in spec.parse(path, ctx or ParseContext()):
        last_row = max(last_row, item.row)
        if isinstance(item, Row):
            rows_valid += 1
        elif isinstance(item, Rejection):
            rejected_rows.add(item.row)
            errors_total += 1
            if len(errors) < max_errors:
                errors.append({"row": item.row, "field": item.field, "value": item.value, "reason": item.reason})
    return {
        "file": str(path),
        "format": fmt,
        "sha256": sha256_of(path),
        "rows_read": last_row,
        "rows_valid": rows_valid,
        "rows_rejected": len(rejected_rows),
        "errors": errors,
        "errors_total": errors_total,
        "errors_truncated": errors_total > len(errors),
    }
