"""The header of a DHIS2 dataValueSets CSV: which column holds which dataValue key.

Shared by the row parser (`dhis2_csv.parse_csv`) and the loader's vectorised path
(`_dhis2_csv_fast`), so that neither imports the other's module.
"""

from __future__ import annotations

from pathlib import Path

from knowdo.formats._csv import read_header
from knowdo.formats.base import FileRejected, ParseContext

# lower-cased CSV header name -> the dataValue key the JSON API (and map_value) uses
_JSON_KEY = {
    "dataelement": "dataElement",
    "de": "dataElement",
    "period": "period",
    "pe": "period",
    "orgunit": "orgUnit",
    "ou": "orgUnit",
    "catoptcombo": "categoryOptionCombo",
    "categoryoptioncombo": "categoryOptionCombo",
    "coc": "categoryOptionCombo",
    "attroptcombo": "attributeOptionCombo",
    "attributeoptioncombo": "attributeOptionCombo",
    "acoc": "attributeOptionCombo",
    "aoc": "attributeOptionCombo",
    "value": "value",
    "storedby": "storedBy",
    "created": "created",
    "lastupdated": "lastUpdated",
    "timestamp": "lastUpdated",  # older DHIS2 exports
    "comment": "comment",
    "flwup": "followup",
    "followup": "followup",
    "deleted": "deleted",
}
_REQUIRED = ("dataelement", "period", "orgunit", "value")
# DHIS2 itself reads dataValueSet CSV by position, whatever the header says (dhis2-core's own test
# files have `dataelelement`): the order it reads
_POSITIONS = (
    "dataElement",
    "period",
    "orgUnit",
    "categoryOptionCombo",
    "attributeOptionCombo",
    "value",
    "storedBy",
    "lastUpdated",
    "comment",
    "followup",
    "deleted",
)
_REQUIRED_KEYS = tuple(_JSON_KEY[c] for c in _REQUIRED)


def _header_names(path: Path, ctx: ParseContext) -> dict[str, str]:
    """{header name as written: JSON key}; FileRejected when a required column is missing."""
    header = read_header(path, ctx, ctx.options.get("delimiter", ","))
    if not header:
        return {}
    names = {name: _JSON_KEY[name.lower()] for name in header if name.lower() in _JSON_KEY}
    missing = [c for c in _REQUIRED if _JSON_KEY[c] not in names.values()]
    if missing and _positional(header):
        # DHIS2's column order with an unknown name among them: read by position, as DHIS2 does
        return {name: key for name, key in zip(header, _POSITIONS, strict=False)}
    if missing:
        raise FileRejected(
            f"header mismatch: missing column(s) {', '.join(missing)}; a DHIS2 dataValueSet CSV "
            f"starts dataelement,period,orgunit,catoptcombo,attroptcombo,value (or DATIM's "
            f"de,pe,ou,coc,acoc,value; the header has "
            f"{', '.join(header[:12])}{' ...' if len(header) > 12 else ''})"
        )
    return names


def _positional(header: list[str]) -> bool:
    """True when the header is DHIS2's column order (period, org unit and value where DHIS2 reads
    them, every name distinct) though some name is not one KnowDo knows."""
    lowered = [name.lower() for name in header]
    return (
        6 <= len(header) <= len(_POSITIONS)
        and len(set(lowered)) == len(lowered)
        and all(_JSON_KEY.get(lowered[i]) == _POSITIONS[i] for i in (1, 2, 5))
    )
