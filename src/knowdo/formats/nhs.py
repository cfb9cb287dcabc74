"""NHS England statistical CSVs: NHS Talking Therapies (monthly and annual) and MHSDS monthly.

One raw row per measure value. The Talking Therapies annual file is wide (one column per measure,
one record per organisation x breakdown group), so each record is unpivoted into one row per measure
column; the monthly files are already long. Suppression markers (`*`, `-`, `N/A`, `NA`, `NULL`,
empty) become NULL with is_suppressed true, never zero; raw_value keeps the cell as published.

A value that cannot be true is rejected with its reason, judged from the measure's name: a
percentage or proportion outside 0-100, a count that is negative or not whole, any other measure
below zero unless its name says it is a change or difference.

The annual file carries no reporting period inside it. It comes from the feed's registry entry
(`options: {reporting_period: "2024-25"}` for a financial year, or "2024-04-01/2025-03-31"), else
from the financial year in the file's name (measures_annual_2024-25.csv) when the parse context
carries the received file name. Without either, the rows still load with NULL period columns, so
`knowdo check` works on a bare file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

from knowdo.cells import parse_date, parse_measure
from knowdo.formats._csv import read_header, records
from knowdo.formats.base import FileRejected, FormatSpec, ParseContext, Rejection, Row

TALKING_THERAPIES_COLUMNS = (
    "file_layout",
    "reporting_period_start",
    "reporting_period_end",
    "org_level",
    "org_code",
    "org_name",
    "secondary_org_code",
    "secondary_org_name",
    "breakdown",
    "breakdown_group",
    "breakdown_subgroup",
    "measure_id",
    "measure_name",
    "measure_value",
    "is_suppressed",
    "raw_value",
)

MHSDS_COLUMNS = (
    "reporting_period_start",
    "reporting_period_end",
    "status",
    "breakdown",
    "primary_level",
    "primary_level_description",
    "secondary_level",
    "secondary_level_description",
    "measure_id",
    "measure_name",
    "measure_value",
    "is_suppressed",
    "raw_value",
)

# raw column -> the header name the publisher writes (matched without regard to case)
_TT_MONTHLY = {
    "reporting_period_start": "REPORTING_PERIOD_START",
    "reporting_period_end": "REPORTING_PERIOD_END",
    "org_level": "GROUP_TYPE",
    "org_code": "ORG_CODE1",
    "org_name": "ORG_NAME1",
    "secondary_org_code": "ORG_CODE2",
    "secondary_org_name": "ORG_NAME2",
    "measure_id": "MEASURE_ID",
    "measure_name": "MEASURE_NAME",
}
_TT_MONTHLY_VALUE = ("MEASURE_VALUE_SUPPRESSED", "MEASURE_VALUE")  # newer files, older files
_TT_ANNUAL = {
    "org_level": "OrgType",
    "org_code": "OrgCode",
    "org_name": "OrgName",
    "breakdown": "VariableType",
    "breakdown_group": "VariableA",
    "breakdown_subgroup": "VariableB",
}
_MHSDS = {c: c.upper() for c in MHSDS_COLUMNS[:10]} | {"measure_value": "MEASURE_VALUE"}

_PERCENTAGE = re.compile(r"percent|proportion|%", re.IGNORECASE)
_COUNT = re.compile(r"(?<![a-z])count(?![a-z])|number of", re.IGNORECASE)
_SIGNED = re.compile(r"change|difference|diff_", re.IGNORECASE)
_FINANCIAL_YEAR = re.compile(r"^(\d{4})-(\d{2})$")
_FINANCIAL_YEAR_IN_NAME = re.compile(r"(?<!\d)(20\d{2})-(\d{2})(?!\d)")


def impossible_value(measure: str, value: Decimal) -> str | None:
    """Why `value` cannot be a value of the measure named `measure`, or None when it can be."""
    if _PERCENTAGE.search(measure):
        if not 0 <= value <= 100:
            return f"a percentage must lie between 0 and 100 ({measure})"
    elif _COUNT.search(measure):
        if value < 0:
            return f"negative count ({measure})"
        if value != value.to_integral_value():
            return f"a count must be a whole number ({measure})"
    elif value < 0 and not _SIGNED.search(measure):
        return f"negative value for a measure that cannot be below 0 ({measure})"
    return None


def _resolve(header: list[str], wanted: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """({raw column: header name as written}, [wanted names missing from the header])."""
    by_lower = {name.lower(): name for name in header}
    found = {
        col: by_lower[name.lower()] for col, name in wanted.items() if name.lower() in by_lower
    }
    return found, [name for col, name in wanted.items() if col not in found]


def _financial_year(start_year: int, end_year: str) -> tuple[date, date] | None:
    """1 April to 31 March of a financial year written 2024-25; None when it is not one."""
    if (start_year + 1) % 100 != int(end_year):
        return None
    return date(start_year, 4, 1), date(start_year + 1, 3, 31)


def _annual_period(ctx: ParseContext) -> tuple[date | None, date | None]:
    """The annual file's reporting period: declared by the feed, else named in the file name
    (measures_annual_2024-25.csv), else unknown."""
    declared = ctx.options.get("reporting_period")
    if not declared:
        # file_name: the name the file was received under, when the loader passes it on
        name = getattr(ctx, "file_name", None) or ""
        named = _FINANCIAL_YEAR_IN_NAME.search(name)
        return (named and _financial_year(int(named[1]), named[2])) or (None, None)
    text = str(declared).strip()
    if m := _FINANCIAL_YEAR.match(text):
        if not (bounds := _financial_year(int(m[1]), m[2])):
            raise FileRejected(f"the feed's reporting_period '{text}' is not a financial year")
        return bounds
    try:
        start, end = (parse_date(part) for part in text.split("/"))
    except ValueError:
        raise FileRejected(
            f"the feed's reporting_period '{text}' is neither a financial year (2024-25) "
            "nor start/end dates (2024-04-01/2025-03-31)"
        ) from None
    return start, end


def _extra_cells(number: int, record: dict) -> Rejection | None:
    if None in record:
        return Rejection(
            number,
            None,
            ",".join(record[None])[:200],
            f"{len(record[None])} more cell(s) than the header: an unquoted comma?",
        )
    return None


def _period(
    number: int, record: dict, names: dict[str, str], today: date
) -> tuple[date | None, date | None, list[Rejection]]:
    """The record's reporting period start and end, and what is wrong with them."""
    problems: list[Rejection] = []
    bounds: list[date | None] = []
    for col in ("reporting_period_start", "reporting_period_end"):
        text = record.get(names[col])
        try:
            bounds.append(parse_date(text))
        except ValueError as exc:
            problems.append(Rejection(number, names[col], text, str(exc)))
            bounds.append(None)
    start, end = bounds
    if start and end and end < start:
        problems.append(
            Rejection(
                number,
                names["reporting_period_end"],
                record.get(names["reporting_period_end"]),
                "the reporting period ends before it starts",
            )
        )
    if start and start > today:
        problems.append(
            Rejection(
                number,
                names["reporting_period_start"],
                record.get(names["reporting_period_start"]),
                f"reporting period starts in the future ({start})",
            )
        )
    return start, end, problems


def _measure(
    number: int, field: str, measure: str, text: str | None
) -> tuple[Decimal | None, bool] | Rejection:
    """(value, suppressed) for one measure cell, or the Rejection saying why it cannot be loaded."""
    try:
        value, suppressed = parse_measure(text)
    except ValueError:
        return Rejection(number, field, text, "not a number and not a suppression marker")
    if value is not None and (reason := impossible_value(measure, value)):
        return Rejection(number, field, text, reason)
    return value, suppressed


def _period_key(start: date | None, end: date | None) -> str | None:
    return f"{start.isoformat()}/{end.isoformat()}" if start and end else None


def _clean(text: str | None) -> str | None:
    if text is None:
        return None
    return text.strip() or None


# --- NHS Talking Therapies -------------------------------------------------------------------


# NHS Talking Therapies annual tables KnowDo recognises but does not map: the marts use none of
# their figures (PROMs: mean scores and effect sizes by diagnosis and therapy type; therapy
# position: how many people had 1, 2, 3 or 4 therapies), so loading them would fill the warehouse
# with figures nothing reads. {table: columns that identify it}
_TT_UNMAPPED = {
    "PROMs (patient-reported outcome measures by diagnosis and therapy type)": (
        "OrganisationType",
        "Diagnosis",
        "TherapyType",
    ),
    "therapy position (people by number of therapies)": ("Therapy_Type", "Count_1Therapy"),
}
TALKING_THERAPIES_MAPPED = (
    "the monthly activity and performance file (REPORTING_PERIOD_START, GROUP_TYPE, ORG_CODE1, "
    "MEASURE_ID, MEASURE_NAME, MEASURE_VALUE_SUPPRESSED) and the annual main measures table "
    "(OrgType, OrgCode, OrgName, VariableType, VariableA, VariableB, then one column per measure)"
)


def _unmapped_table(header: list[str]) -> str | None:
    lowered = {name.lower() for name in header}
    for table, columns in _TT_UNMAPPED.items():
        if all(c.lower() in lowered for c in columns) and "variabletype" not in lowered:
            return table
    return None


def parse_talking_therapies(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    header = read_header(path, ctx, ctx.options.get("delimiter", ","))
    monthly, monthly_missing = _resolve(header, _TT_MONTHLY)
    annual, annual_missing = _resolve(header, _TT_ANNUAL)
    if header and (table := _unmapped_table(header)):
        raise FileRejected(
            f"this is the NHS Talking Therapies annual {table} table, which KnowDo does not map "
            f"(its marts use none of its figures); KnowDo maps {TALKING_THERAPIES_MAPPED}"
        )
    if header and not monthly_missing:
        value_column = next((name for name in header if name.upper() in _TT_MONTHLY_VALUE), None)
        if value_column is None:
            raise FileRejected(
                "header mismatch: missing column MEASURE_VALUE_SUPPRESSED "
                "(or MEASURE_VALUE) in a Talking Therapies monthly file"
            )
        yield from _talking_therapies_monthly(path, ctx, monthly, value_column)
    elif header and not annual_missing:
        yield from _talking_therapies_annual(path, ctx, annual, header)
    elif header:
        closest = monthly_missing if len(monthly_missing) <= len(annual_missing) else annual_missing
        raise FileRejected(
            f"header mismatch: not a Talking Therapies table KnowDo maps (missing "
            f"{', '.join(closest)}); the header has {', '.join(header[:12])}"
            f"{' ...' if len(header) > 12 else ''}. KnowDo maps {TALKING_THERAPIES_MAPPED}"
        )
    else:
        list(records(path, ctx, required=()))  # raises the precise reason (empty, encoding, ...)


def _talking_therapies_monthly(
    path: Path, ctx: ParseContext, names: dict[str, str], value_column: str
) -> Iterator[Row | Rejection]:
    for number, record in records(path, ctx, required=()):
        if extra := _extra_cells(number, record):
            yield extra
            continue
        start, end, problems = _period(number, record, names, ctx.today)
        measure_id = _clean(record.get(names["measure_id"]))
        measure_name = _clean(record.get(names["measure_name"]))
        if not measure_id and not measure_name:
            problems.append(
                Rejection(
                    number,
                    names["measure_id"],
                    None,
                    "measure is missing (no MEASURE_ID or MEASURE_NAME)",
                )
            )
        raw_value = record.get(value_column)
        measured = _measure(number, value_column, measure_name or measure_id or "", raw_value)
        if isinstance(measured, Rejection):
            problems.append(measured)
        if problems:
            yield from problems
            continue
        value, suppressed = measured
        yield Row(
            row=number,
            period=_period_key(start, end),
            period_start=start,
            values=(
                "monthly",
                start,
                end,
                *(
                    _clean(record.get(names[c]))
                    for c in (
                        "org_level",
                        "org_code",
                        "org_name",
                        "secondary_org_code",
                        "secondary_org_name",
                    )
                ),
                None,
                None,
                None,
                measure_id,
                measure_name,
                value,
                suppressed,
                raw_value,
            ),
        )


def _talking_therapies_annual(
    path: Path, ctx: ParseContext, names: dict[str, str], header: list[str]
) -> Iterator[Row | Rejection]:
    start, end = _annual_period(ctx)
    identifying = {name.lower() for name in names.values()}
    measures = [name for name in header if name and name.lower() not in identifying]
    if not measures:
        raise FileRejected("no measure columns after OrgType..VariableB: nothing to load")
    for number, record in records(path, ctx, required=()):
        if extra := _extra_cells(number, record):
            yield extra
            continue
        measured = [(m, _measure(number, m, m, record.get(m))) for m in measures]
        problems = [r for _, r in measured if isinstance(r, Rejection)]
        if problems:  # one bad cell rejects the record: a half-loaded breakdown row misleads
            yield from problems
            continue
        ids = tuple(_clean(record.get(names[c])) for c in ("org_level", "org_code", "org_name"))
        breakdown = tuple(
            _clean(record.get(names[c]))
            for c in ("breakdown", "breakdown_group", "breakdown_subgroup")
        )
        for measure_name, (value, suppressed) in measured:
            yield Row(
                row=number,
                period=_period_key(start, end),
                period_start=start,
                values=(
                    "annual",
                    start,
                    end,
                    *ids,
                    None,
                    None,
                    *breakdown,
                    None,
                    measure_name,
                    value,
                    suppressed,
                    record.get(measure_name),
                ),
            )


# --- MHSDS monthly -----------------------------------------------------------------------------


def parse_mhsds(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    header = read_header(path, ctx, ctx.options.get("delimiter", ","))
    names, missing = _resolve(header, _MHSDS)
    if header and missing:
        raise FileRejected(
            f"header mismatch: missing column(s) {', '.join(missing)}; the header has "
            f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''}"
        )
    for number, record in records(path, ctx, required=()):
        if extra := _extra_cells(number, record):
            yield extra
            continue
        start, end, problems = _period(number, record, names, ctx.today)
        measure_id = _clean(record.get(names["measure_id"]))
        measure_name = _clean(record.get(names["measure_name"]))
        if not measure_id:
            problems.append(Rejection(number, names["measure_id"], None, "MEASURE_ID is missing"))
        raw_value = record.get(names["measure_value"])
        measured = _measure(
            number, names["measure_value"], measure_name or measure_id or "", raw_value
        )
        if isinstance(measured, Rejection):
            problems.append(measured)
        if problems:
            yield from problems
            continue
        value, suppressed = measured
        yield Row(
            row=number,
            period=_period_key(start, end),
            period_start=start,
            values=(
                start,
                end,
                *(_clean(record.get(names[c])) for c in MHSDS_COLUMNS[2:8]),
                measure_id,
                measure_name,
                value,
                suppressed,
                raw_value,
            ),
        )


def _sniff_columns(head: str, wanted: Iterable[str]) -> bool:
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    cells = {c.strip().strip('"').lower() for c in first.split(",")}
    return all(w.lower() in cells for w in wanted)


NHS_TALKING_THERAPIES_CSV = FormatSpec(
    name="nhs-talking-therapies-csv",
    raw_table="raw.nhs_talking_therapies_measures",
    columns=TALKING_THERAPIES_COLUMNS,
    parse=parse_talking_therapies,
    description=(
        "NHS Talking Therapies monthly (long) or annual (wide, VariableType breakdowns) CSV"
    ),
    # the annual tables KnowDo does not map are recognised too, so `knowdo check` names them
    sniff=lambda head: (
        _sniff_columns(head, ("GROUP_TYPE", "ORG_CODE1", "MEASURE_ID"))
        or _sniff_columns(head, ("OrgType", "OrgCode", "VariableType"))
        or any(_sniff_columns(head, c) for c in _TT_UNMAPPED.values())
    ),
)

MHSDS_CSV = FormatSpec(
    name="mhsds-csv",
    raw_table="raw.mhsds_measures",
    columns=MHSDS_COLUMNS,
    parse=parse_mhsds,
    description="NHS Mental Health Services Data Set (MHSDS) monthly CSV",
    sniff=lambda head: _sniff_columns(
        head, ("BREAKDOWN", "PRIMARY_LEVEL", "MEASURE_ID", "MEASURE_VALUE")
    ),
)

FORMAT_SPECS = [NHS_TALKING_THERAPIES_CSV, MHSDS_CSV]
