"""`knowdo check`: parse and validate a file without loading it, for data submitters."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from knowdo.formats import FORMATS, FileRejected, OutOfScope, ParseContext, Rejection, Row
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


# formats whose feeds map the publisher's ids (a file may hold more than the feed takes)
MAPPED_FORMATS = ("dhis2-json", "dhis2-csv")


def check_file(
    path: Path, fmt: str, ctx: ParseContext | None = None, max_errors: int = 100
) -> dict[str, Any]:
    """What the loader would do with the file: rows valid (would load), rejected (and why) and,
    for formats mapped per feed (DHIS2), out of scope, with the unmapped ids and their row counts
    (`coverage`; without a feed's mapping every well-formed row is out of scope)."""
    spec = FORMATS[fmt]
    ctx = ctx or ParseContext()
    rows_valid = 0
    rows_out_of_scope = 0
    unmapped: Counter = Counter()
    rejected_rows: set[int] = set()
    errors: list[dict[str, Any]] = []
    errors_total = 0
    last_row = 0
    # issue 13, speed: the format's vectorised path when it has one (the same counts; None:
    # the row parser below)
    from knowdo.formats._check_tables import tally

    fast = tally(spec, path, ctx, max_errors) if spec.load_tables else None
    if fast is not None:
        rows_valid, rows_out_of_scope, last_row = (
            fast.rows_valid,
            fast.rows_out_of_scope,
            fast.last_row,
        )
        unmapped, rejected_rows, errors_total = fast.unmapped, fast.rejected_rows, fast.errors_total
        errors = [
            {"row": r.row, "field": r.field, "value": r.value, "reason": r.reason}
            for r in fast.errors
        ]
    for item in spec.parse(path, ctx) if fast is None else ():
        last_row = max(last_row, item.row)
        if isinstance(item, Row):
            rows_valid += 1
        elif isinstance(item, OutOfScope):
            rows_out_of_scope += 1
            unmapped.update(item.ids)
        elif isinstance(item, Rejection):
            rejected_rows.add(item.row)
            errors_total += 1
            if len(errors) < max_errors:
                errors.append(
                    {
                        "row": item.row,
                        "field": item.field,
                        "value": item.value,
                        "reason": item.reason,
                    }
                )
    report: dict[str, Any] = {
        "file": str(path),
        "format": fmt,
        "sha256": sha256_of(path),
        "rows_read": last_row,
        "rows_valid": rows_valid,
        "rows_rejected": len(rejected_rows),
        "rows_out_of_scope": rows_out_of_scope,
        "errors": errors,
        "errors_total": errors_total,
        "errors_truncated": errors_total > len(errors),
    }
    if fmt in MAPPED_FORMATS:
        report["coverage"] = {
            "feed": ctx.feed_id if ctx.mapping else None,
            "rows_in_scope": rows_valid + len(rejected_rows),
            "rows_out_of_scope": rows_out_of_scope,
            "unmapped_ids": [
                {"kind": kind, "id": source_id, "rows": count}
                for (kind, source_id), count in sorted(
                    unmapped.items(), key=lambda e: (-e[1], e[0])
                )
            ],
        }
    return report
