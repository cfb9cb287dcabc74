"""A deterministic DHIS2 dataValueSets CSV of any size, and the same rows in the raw table's shape.

Every key (orgUnit x period x dataElement x categoryOptionCombo) is unique and every id is in the
registry mapping written beside it, so `knowdo ingest` loads every row and rejects none. The second
file holds, row for row, what the loader COPYs into raw.dhis2_data_values (batch columns included):
`psql \\copy` of it is the physical limit the ingest is compared with.

Both files are written in one streaming pass: memory stays flat however many rows are asked for.
"""

from __future__ import annotations

import math
from calendar import monthrange
from collections.abc import Iterator
from pathlib import Path

import yaml

from knowdo.formats.dhis2 import COLUMNS as DHIS2_COLUMNS

FEED_ID = "bench_dhis2_csv"
SOURCE_HEADER = (
    "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,flwup"
)
# The loader's batch columns then the parser's columns, as in raw.dhis2_data_values.
RAW_COLUMNS = ("batch_id", "file_sha256", "row_number", "feed_id", *DHIS2_COLUMNS)
# A constant stand-in for the file's sha256 in the raw-shaped copy: same width, same bytes per row.
PLACEHOLDER_SHA256 = "0" * 64

DATA_ELEMENTS = {"KdMhOpdVis1": "mh_outpatient_contacts", "KdMhNewCas1": "mh_new_cases"}
CATEGORY_OPTION_COMBOS = {
    f"KdCoc{sex}0000{i}": {"sex": sex, "age_band": band}
    for sex in ("F", "M")
    for i, band in enumerate(("0-14", "15-24", "25-49", "50+"))
}
ATTRIBUTE_OPTION_COMBO = "HllvX50cXC0"  # DHIS2's default attribute option combo
STORED_BY = "bench"
LAST_UPDATED = "2025-01-15T10:00:00.000"
LAST_UPDATED_RAW = "2025-01-15 10:00:00"  # how the loader sends it (a naive timestamp)
# Ten years of monthly periods, all in the past so none is rejected as a future period.
PERIODS = tuple(f"{year}{month:02d}" for year in range(2015, 2025) for month in range(1, 13))
ROWS_PER_ORG_UNIT = len(PERIODS) * len(DATA_ELEMENTS) * len(CATEGORY_OPTION_COMBOS)


def org_unit_count(rows: int) -> int:
    """How many org units a feed of `rows` values needs (the last one may be partly filled)."""
    return max(1, math.ceil(rows / ROWS_PER_ORG_UNIT))


def org_unit_id(index: int) -> str:
    """An 11-character id like a DHIS2 uid."""
    return f"KdOuBn{index:05d}"


def geography_code(index: int) -> str:
    return f"BN-{index:05d}"


def value_of(row_number: int) -> int:
    """A deterministic, varied count (0..996), so the value column is not one repeated string."""
    return (row_number * 7919) % 997


# --format dhis2-json (issue 13): the same rows as a dataValueSets JSON, as the Web API writes it
JSON_HEAD = '{"dataSet":"KdBenchDs01","completeDate":"2025-01-20","dataValues":[\n'
EXTENSIONS = {"dhis2-csv": "csv", "dhis2-json": "json"}


def registry(rows: int, feed_id: str = FEED_ID, fmt: str = "dhis2-csv") -> dict:
    """The feed registry document for a feed of `rows` values: every org unit is mapped."""
    return {
        "feeds": [
            {
                "id": feed_id,
                "publisher": {"name": "Ingest benchmark (synthetic ministry)", "kind": "ministry"},
                "domain": "service_use",
                "format": fmt,
                "source": {"folder": "bench", "glob": f"*.{EXTENSIONS[fmt]}"},
                "schedule": "@monthly",
                "mapping": {
                    "data_elements": dict(DATA_ELEMENTS),
                    "org_units": {
                        org_unit_id(i): geography_code(i) for i in range(org_unit_count(rows))
                    },
                    "category_option_combos": {
                        k: dict(v) for k, v in CATEGORY_OPTION_COMBOS.items()
                    },
                },
            }
        ]
    }


def write_registry(path: Path, rows: int, feed_id: str = FEED_ID, fmt: str = "dhis2-csv") -> None:
    path.write_text(yaml.safe_dump(registry(rows, feed_id, fmt), sort_keys=False), encoding="utf-8")


def keys(rows: int) -> Iterator[tuple[int, int, str, str, str]]:
    """(row number, org unit index, period, data element, category option combo) in file order."""
    row = 0
    for ou in range(org_unit_count(rows)):
        for period in PERIODS:
            for element in DATA_ELEMENTS:
                for combo in CATEGORY_OPTION_COMBOS:
                    row += 1
                    if row > rows:
                        return
                    yield row, ou, period, element, combo


def write_feed(
    rows: int,
    source_path: Path,
    raw_copy_path: Path | None = None,
    feed_id: str = FEED_ID,
    fmt: str = "dhis2-csv",
) -> None:
    """Write the DHIS2 CSV or JSON (and, when asked, the raw-shaped CSV of the same rows) in one
    pass."""
    period_parts = {
        p: (
            f"{p[:4]}-{p[4:]}-01",
            "month",
            f"{p[:4]}-{p[4:]}-{monthrange(int(p[:4]), int(p[4:]))[1]:02d}",
        )
        for p in PERIODS
    }
    buffer = 1 << 20
    with source_path.open("w", encoding="utf-8", newline="", buffering=buffer) as source:
        raw = (
            raw_copy_path.open("w", encoding="utf-8", newline="", buffering=buffer)
            if raw_copy_path
            else None
        )
        try:
            json_feed = fmt == "dhis2-json"
            source.write(JSON_HEAD if json_feed else SOURCE_HEADER + "\n")
            if raw:
                raw.write(",".join(RAW_COLUMNS) + "\n")
            for row, ou, period, element, combo in keys(rows):
                unit = org_unit_id(ou)
                value = value_of(row)
                if json_feed:
                    source.write(
                        (",\n" if row > 1 else "")
                        + f'{{"dataElement":"{element}","period":"{period}",'
                        f'"orgUnit":"{unit}","categoryOptionCombo":"{combo}",'
                        f'"attributeOptionCombo":"{ATTRIBUTE_OPTION_COMBO}","value":"{value}",'
                        f'"storedBy":"{STORED_BY}","lastUpdated":"{LAST_UPDATED}","followup":false}}'
                    )
                else:
                    source.write(
                        f"{element},{period},{unit},{combo},{ATTRIBUTE_OPTION_COMBO},{value},"
                        f"{STORED_BY},{LAST_UPDATED},,false\n"
                    )
                if raw:
                    start, kind, end = period_parts[period]
                    strata = CATEGORY_OPTION_COMBOS[combo]
                    raw.write(
                        f"1,{PLACEHOLDER_SHA256},{row},{feed_id},{element},{period},{unit},"
                        f"{combo},{ATTRIBUTE_OPTION_COMBO},{value},false,{STORED_BY},"
                        f"{LAST_UPDATED_RAW},,{DATA_ELEMENTS[element]},{geography_code(ou)},"
                        f"{strata['sex']},{strata['age_band']},{start},{kind},{end}\n"
                    )
            if json_feed:
                source.write("\n]}\n")
        finally:
            if raw:
                raw.close()
