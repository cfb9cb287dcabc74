"""WHO Global Health Observatory CSV exports (Mental Health Atlas, GHED health expenditure, ...).

WHO publishes the same facts under three sets of column names, all read here:
  api     the GHO API's CSV (e.g. MH_6.csv, GHED_*.csv): SpatialDimension,
          SpatialDimensionValueCode, TimeDim, DisaggregatingDimension1ValueCode, NumericValue, Low,
          High, Value; GHED files add ParentLocationCode/ParentLocation
  odata   the OData API's field names written as CSV: SpatialDimType, SpatialDim, TimeDim, Dim1Type,
          Dim1, NumericValue, Low, High, Value
  portal  the GHO web portal's "export data" CSV: Location type, SpatialDimValueCode, Period,
          Dim1 type, Dim1ValueCode, FactValueNumeric, FactValueNumericLow/High, Value
  athena  the older GHO CSV (the retired Athena API, and the HDX copies of it): `GHO (CODE)`,
          `YEAR (CODE)`/`YEAR (DISPLAY)` (a year, or a range such as 2005-2009 read as its
          STARTYEAR..ENDYEAR with the end year as the period), one `<DIMENSION> (CODE)` column per
          dimension (`REGION`, `WORLDBANKINCOMEGROUP`, `COUNTRY`, `GLOBAL`, `SEX`, `AGEGROUP`,
          ..., or HDX's `DIMENSION (TYPE)`/`DIMENSION (CODE)`), `Numeric`, `Low`, `High`,
          `Display Value` (or `Value`), `Comments`

Aggregates are kept apart from countries, loaded at their own level: a row's spatial_type is
COUNTRY, REGION (WHO region), WORLDBANKINCOMEGROUP, GLOBAL, ...; only COUNTRY rows get a
country_code, so nothing downstream that reads countries (int_funding__health_expenditure and
every model joining on country_code) can take a region or income group for a country. In the
athena layout a country row also names its region: that is its parent_location_code; a row with
no location at all is the global figure (GLOBAL).

The OData API's own JSON (`{"value": [{IndicatorCode, SpatialDimType, SpatialDim, ...}]}`) is the
`who-gho-json` format: the odata field names, read the same way.

A row with no numeric value is kept, not rejected: GHO carries categorical indicators (Mental Health
Atlas policy items answer "Yes"/"No") whose text is the fact, so value_numeric is NULL and
value_text holds it. Where the text too is empty or a missing marker ("No data", "*", "-", ...) the
row is kept with is_suppressed true, so the gap is visible downstream and never read as zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from knowdo.cells import is_suppressed, parse_date, parse_number
from knowdo.formats._csv import read_header, records
from knowdo.formats.base import FileRejected, FormatSpec, ParseContext, Rejection, Row

COLUMNS = (
    "export_layout",
    "indicator_code",
    "indicator_name",
    "spatial_type",
    "spatial_code",
    "country_code",
    "parent_location_code",
    "period",
    "period_start",
    "period_end",
    "dim1_type",
    "dim1_code",
    "dim2_type",
    "dim2_code",
    "dim3_type",
    "dim3_code",
    "data_source_code",
    "value_numeric",
    "value_low",
    "value_high",
    "value_text",
    "is_suppressed",
    "comments",
    "date_modified",
)

# KnowDo field -> the column each layout names it (None: that layout does not have it)
_LAYOUTS: dict[str, dict[str, str | None]] = {
    "api": {
        "indicator_code": "IndicatorCode",
        "indicator_name": None,
        "spatial_type": "SpatialDimension",
        "spatial_code": "SpatialDimensionValueCode",
        "parent_location_code": "ParentLocationCode",
        "period": "TimeDim",
        "period_start": "TimeDimensionBegin",
        "period_end": "TimeDimensionEnd",
        "dim1_type": "DisaggregatingDimension1",
        "dim1_code": "DisaggregatingDimension1ValueCode",
        "dim2_type": "DisaggregatingDimension2",
        "dim2_code": "DisaggregatingDimension2ValueCode",
        "dim3_type": "DisaggregatingDimension3",
        "dim3_code": "DisaggregatingDimension3ValueCode",
        "data_source_code": "DataSourceDimensionValueCode",
        "value_numeric": "NumericValue",
        "value_low": "Low",
        "value_high": "High",
        "value_text": "Value",
        "comments": "Comments",
        "date_modified": "Date",
    },
    "odata": {
        "indicator_code": "IndicatorCode",
        "indicator_name": None,
        "spatial_type": "SpatialDimType",
        "spatial_code": "SpatialDim",
        "parent_location_code": "ParentLocationCode",
        "period": "TimeDim",
        "period_start": "TimeDimensionBegin",
        "period_end": "TimeDimensionEnd",
        "dim1_type": "Dim1Type",
        "dim1_code": "Dim1",
        "dim2_type": "Dim2Type",
        "dim2_code": "Dim2",
        "dim3_type": "Dim3Type",
        "dim3_code": "Dim3",
        "data_source_code": "DataSourceDim",
        "value_numeric": "NumericValue",
        "value_low": "Low",
        "value_high": "High",
        "value_text": "Value",
        "comments": "Comments",
        "date_modified": "Date",
    },
    "portal": {
        "indicator_code": "IndicatorCode",
        "indicator_name": "Indicator",
        "spatial_type": "Location type",
        "spatial_code": "SpatialDimValueCode",
        "parent_location_code": "ParentLocationCode",
        "period": "Period",
        "period_start": None,
        "period_end": None,
        "dim1_type": "Dim1 type",
        "dim1_code": "Dim1ValueCode",
        "dim2_type": "Dim2 type",
        "dim2_code": "Dim2ValueCode",
        "dim3_type": "Dim3 type",
        "dim3_code": "Dim3ValueCode",
        "data_source_code": "DataSourceDimValueCode",
        "value_numeric": "FactValueNumeric",
        "value_low": "FactValueNumericLow",
        "value_high": "FactValueNumericHigh",
        "value_text": "Value",
        "comments": "FactComments",
        "date_modified": "DateModified",
    },
}
# the columns whose presence tells the layouts apart (and that a row cannot do without)
_REQUIRED = (
    "indicator_code",
    "spatial_type",
    "spatial_code",
    "period",
    "value_numeric",
    "value_text",
)
# what one fact is about: the same key twice in a file is a publisher error
_KEY = (
    "indicator_code",
    "spatial_type",
    "spatial_code",
    "period",
    "dim1_code",
    "dim2_code",
    "dim3_code",
    "data_source_code",
)
_YEAR = re.compile(r"^\d{4}$")
_ISO3 = re.compile(r"^[A-Z]{3}$")
# GHO's own words for a missing fact, besides the shared suppression markers
_NO_DATA = frozenset({"no data", "not applicable", "not available"})


_ATHENA_SPATIAL = ("COUNTRY", "WORLDBANKINCOMEGROUP", "REGION", "GLOBAL")  # most specific first
_ATHENA_SKIP = {"GHO", "YEAR", "PUBLISHSTATE", "DATASOURCE", "DIMENSION", *_ATHENA_SPATIAL}
_RANGE = re.compile(r"^(\d{4})\s*-\s*(\d{4})$")


def _is_athena(header: list[str]) -> bool:
    cells = set(header)
    return (
        "GHO (CODE)" in cells
        and bool(cells & {"YEAR (CODE)", "YEAR (DISPLAY)"})
        and bool(cells & {"Numeric", "Display Value", "Value"})
    )


def _athena_columns(header: list[str]) -> dict[str, str | None]:
    """KnowDo field -> the athena column it is read from (spatial and dimension columns are
    chosen per row; these are the names rejections cite)."""
    cells = set(header)
    return {
        "indicator_code": "GHO (CODE)",
        "indicator_name": "GHO (DISPLAY)" if "GHO (DISPLAY)" in cells else None,
        "spatial_type": None,
        "spatial_code": "COUNTRY (CODE)",
        "parent_location_code": "REGION (CODE)",
        "period": "YEAR (CODE)" if "YEAR (CODE)" in cells else "YEAR (DISPLAY)",
        "period_start": None,
        "period_end": None,
        "dim1_type": None,
        "dim1_code": None,
        "dim2_type": None,
        "dim2_code": None,
        "dim3_type": None,
        "dim3_code": None,
        "data_source_code": "DATASOURCE (CODE)" if "DATASOURCE (CODE)" in cells else None,
        "value_numeric": "Numeric" if "Numeric" in cells else None,
        "value_low": "Low" if "Low" in cells else None,
        "value_high": "High" if "High" in cells else None,
        "value_text": "Display Value" if "Display Value" in cells else "Value",
        "comments": "Comments" if "Comments" in cells else None,
        "date_modified": None,
    }


def _athena_field(
    record: dict[str, str | None], header: list[str], columns: dict[str, str | None]
) -> dict[str, str | None]:
    """One athena record in the fields the other layouts give."""

    def cell(name: str | None) -> str | None:
        return _text(record.get(name)) if name else None

    field = {f: cell(col) for f, col in columns.items()}
    field["spatial_type"], field["spatial_code"] = "GLOBAL", "GLOBAL"
    for level in _ATHENA_SPATIAL:
        if code := cell(f"{level} (CODE)"):
            field["spatial_type"], field["spatial_code"] = level, code
            break
    # a country's region is its parent; a region's own row has none
    field["parent_location_code"] = (
        cell("REGION (CODE)") if field["spatial_type"] == "COUNTRY" else None
    )
    dims: list[tuple[str, str]] = []
    if (kind := cell("DIMENSION (TYPE)")) and (code := cell("DIMENSION (CODE)")):
        dims.append((kind, code))
    for name in header:
        if name.endswith(" (CODE)") and name[:-7] not in _ATHENA_SKIP and (code := cell(name)):
            dims.append((name[:-7], code))
    for i, (kind, code) in enumerate(dims[:3], start=1):
        field[f"dim{i}_type"], field[f"dim{i}_code"] = kind, code
    period = field["period"] or ""
    if m := _RANGE.match(period):
        field["period"] = m[2]
        field["period_start"], field["period_end"] = f"{m[1]}-01-01", f"{m[2]}-12-31"
    elif not period and (end := cell("ENDYEAR")):
        field["period"] = end
    return field


def _layout_of(header: list[str]) -> tuple[str, dict[str, str | None]]:
    cells = set(header)
    if _is_athena(header):
        return "athena", _athena_columns(header)
    for name, columns in _LAYOUTS.items():
        if all(columns[f] in cells for f in _REQUIRED):
            return name, columns
    raise FileRejected(
        "header mismatch: not a WHO GHO export (expected IndicatorCode with "
        "SpatialDimensionValueCode/TimeDim/NumericValue, SpatialDim/TimeDim/NumericValue, or "
        "SpatialDimValueCode/Period/FactValueNumeric, or the older GHO (CODE)/YEAR (DISPLAY)/"
        f"Numeric/Display Value); the header has {', '.join(header[:12])}"
        f"{' ...' if len(header) > 12 else ''}"
    )


def _missing(text: str | None) -> bool:
    return is_suppressed(text) or text.strip().lower() in _NO_DATA


def _text(text: str | None) -> str | None:
    """Cell text without surrounding spaces; None for an absent or blank cell."""
    if text is None:
        return None
    return text.strip() or None


def _fact(
    number: int,
    field: dict[str, str | None],
    columns: dict[str, str | None],
    layout: str,
    today: date,
) -> Row | list[Rejection]:
    """One record as a raw row, or the reasons it cannot be loaded."""
    problems: list[Rejection] = []

    def reject(knowdo_field: str, reason: str) -> None:
        problems.append(Rejection(number, columns[knowdo_field], field[knowdo_field], reason))

    if not field["indicator_code"]:
        reject("indicator_code", "indicator code is missing")
    spatial_type = (field["spatial_type"] or "").upper().replace(" ", "")
    if not field["spatial_code"]:
        reject("spatial_code", "location code is missing")
    elif spatial_type == "COUNTRY" and not _ISO3.match(field["spatial_code"]):
        reject("spatial_code", "a country code must be ISO 3166-1 alpha-3 (three capital letters)")

    year: int | None = None
    if not field["period"] or not _YEAR.match(field["period"]):
        reject("period", "period is not a year (YYYY)")
    else:
        year = int(field["period"])
        if year > today.year:
            reject("period", f"period {year} is in the future")

    period_bounds: list[date | None] = []
    for bound in ("period_start", "period_end"):
        try:
            period_bounds.append(parse_date(field[bound]) if field[bound] else None)
        except ValueError as exc:
            reject(bound, str(exc))
            period_bounds.append(None)
    if year is not None and not any(period_bounds):
        period_bounds = [date(year, 1, 1), date(year, 12, 31)]

    numbers: dict[str, Decimal | None] = {}
    for f in ("value_numeric", "value_low", "value_high"):
        try:
            numbers[f] = None if _missing(field[f]) else parse_number(field[f])
        except ValueError:
            reject(f, "not a number")
    low, high = numbers.get("value_low"), numbers.get("value_high")
    if low is not None and high is not None and low > high:
        reject("value_low", f"lower bound {low} is above the upper bound {high}")
    if problems:
        return problems

    value = numbers["value_numeric"]
    if value is None and not _missing(field["value_text"]):
        try:  # some exports leave the numeric column blank and write the number only as text
            value = parse_number(field["value_text"])
        except ValueError:
            pass  # a categorical fact ("Yes"): the text is the value
    return Row(
        row=number,
        # one indicator's resend supersedes only that indicator's earlier years in the feed
        period=f"{field['indicator_code']}:{year}",
        period_start=period_bounds[0],
        values=(
            layout,
            field["indicator_code"],
            field["indicator_name"],
            field["spatial_type"],
            field["spatial_code"],
            field["spatial_code"] if spatial_type == "COUNTRY" else None,
            field["parent_location_code"],
            year,
            *period_bounds,
            field["dim1_type"],
            field["dim1_code"],
            field["dim2_type"],
            field["dim2_code"],
            field["dim3_type"],
            field["dim3_code"],
            field["data_source_code"],
            value,
            low,
            high,
            field["value_text"],
            value is None and _missing(field["value_text"]),
            field["comments"],
            _timestamp(field["date_modified"]),
        ),
    )


def parse_csv(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    header = read_header(path, ctx, ctx.options.get("delimiter", ","))
    layout, columns = _layout_of(header) if header else ("api", _LAYOUTS["api"])
    required = (
        [c for c in (columns["indicator_code"], columns["period"]) if c]
        if layout == "athena"
        else [columns[f] for f in _REQUIRED]
    )
    seen: set[tuple] = set()
    for number, record in records(path, ctx, required=required):
        if None in record:
            yield Rejection(
                number,
                None,
                ",".join(record[None])[:200],
                f"{len(record[None])} more cell(s) than the header: an unquoted comma?",
            )
            continue
        if layout == "athena":
            field = _athena_field(record, header, columns)
        else:
            field = {f: _text(record.get(col)) if col else None for f, col in columns.items()}
        yield from _unique_fact(number, field, columns, layout, ctx, seen)


def _timestamp(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _sniff(head: str) -> bool:
    first = head.lstrip("\ufeff").splitlines()[0] if head.strip() else ""
    cells = [c.strip().strip('"') for c in first.split(",")]
    try:
        _layout_of(cells)
    except FileRejected:
        return False
    return True


def _unique_fact(
    number: int, field: dict, columns: dict, layout: str, ctx: ParseContext, seen: set[tuple]
) -> Iterator[Row | Rejection]:
    """One record's fact, or its rejections; a second fact with the same key is rejected."""
    fact = _fact(number, field, columns, layout, ctx.today)
    if isinstance(fact, list):
        yield from fact
        return
    key = tuple(field[f] for f in _KEY)
    if key in seen:
        yield Rejection(
            number,
            columns["indicator_code"],
            field["indicator_code"],
            "duplicate key: the same indicator, location, year and dimensions "
            "appear earlier in this file",
        )
        return
    seen.add(key)
    yield fact


def parse_odata_json(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    """The GHO OData API's JSON (`{"@odata.context": ..., "value": [{IndicatorCode, SpatialDimType,
    SpatialDim, TimeDim, Dim1Type, Dim1, NumericValue, Low, High, Value, ...}]}`), streamed, read
    with the `odata` field names exactly as the CSV of the same fields."""
    import ijson

    from knowdo.formats._bounds import guarded_json

    columns = _LAYOUTS["odata"]
    seen: set[tuple] = set()
    found_values = False
    # behind the guard (depth, number and string length) so pathological JSON never reaches ijson
    with guarded_json(path, ctx.limits) as fh:
        try:
            for number, item in enumerate(ijson.items(fh, "value.item", use_float=False), start=1):
                found_values = True
                if not isinstance(item, dict):
                    yield Rejection(number, None, str(item)[:200], "value entry is not an object")
                    continue
                field = {
                    f: _text(None if item.get(col) is None else str(item.get(col))) if col else None
                    for f, col in columns.items()
                }
                yield from _unique_fact(number, field, columns, "odata", ctx, seen)
        except ijson.common.IncompleteJSONError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "malformed"
            raise FileRejected(f"not valid JSON (truncated or malformed): {first}") from None
        except UnicodeDecodeError:
            raise FileRejected("not UTF-8 text: GHO OData JSON must be UTF-8") from None
    if not found_values:
        raise FileRejected("no 'value' array of facts: this is not a GHO OData export")


WHO_GHO_JSON = FormatSpec(
    name="who-gho-json",
    raw_table="raw.who_gho_values",
    columns=COLUMNS,
    parse=parse_odata_json,
    description="WHO Global Health Observatory OData API JSON (ghoapi.azureedge.net/api/<code>)",
    sniff=lambda head: (
        head.lstrip().startswith("{")
        and '"value"' in head
        and ("@odata.context" in head or '"IndicatorCode"' in head)
    ),
)

WHO_GHO_CSV = FormatSpec(
    name="who-gho-csv",
    raw_table="raw.who_gho_values",
    columns=COLUMNS,
    parse=parse_csv,
    description="WHO Global Health Observatory CSV export (API, OData or portal layout)",
    sniff=_sniff,
)

FORMAT_SPECS = [WHO_GHO_CSV, WHO_GHO_JSON]
