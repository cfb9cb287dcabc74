"""DHIS2 CSV files with planted faults, shared by the tests that prove the loader's vectorised path
gives exactly the row parser's rows and rejections (tests/unit/formats/test_dhis2_csv_fast.py and
tests/integration/test_loading.py)."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

TODAY = date(2026, 1, 1)
HEADER = (
    "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,flwup"
)
ELEMENTS = {"f7n9E0hX8qk": "mh_outpatient_contacts", "Ix2HsbDMLea": "mh_admissions"}
ORG_UNITS = {f"Ou{i:09d}": f"GH-{i:03d}" for i in range(40)}
COMBOS = {
    "cocF": {"sex": "F", "age_band": "15-24"},
    "cocM": {"sex": "M", "age_band": "25-49"},
    "cocN": None,
}
MAPPING = {"data_elements": ELEMENTS, "org_units": ORG_UNITS, "category_option_combos": COMBOS}

# One record each (the cells after the key), every one a case the vectorised path must route
# through map_value or read exactly as Python's csv does.
ODD_RECORDS = [
    (
        'f7n9E0hX8qk,201201,Ou000000001,cocF,aoc,"1,204",admin,2012-01-17T10:21:05.000,'
        '"late, checked",false'
    ),
    "f7n9E0hX8qk,201202,Ou000000001,cocF,aoc,-3,,,,",  # negative
    "f7n9E0hX8qk,201203,Ou000000001,cocF,aoc,lots,,,,",  # not a number
    "f7n9E0hX8qk,201204,Ou000000001,cocF,aoc,+5,,,,",  # Decimal takes it
    "f7n9E0hX8qk,201205,Ou000000001,cocF,aoc,1e3,,,,",
    "f7n9E0hX8qk,201206,Ou000000001,cocF,aoc,.5,,,,",
    "f7n9E0hX8qk,201207,Ou000000001,cocF,aoc,1.,,,,",
    'f7n9E0hX8qk,201208,Ou000000001,cocF,aoc,"12,34,5",,,,',  # map_value drops every comma
    "f7n9E0hX8qk,201209,Ou000000001,cocF,aoc,٣,,,,",  # an Arabic-Indic digit
    "f7n9E0hX8qk,201210,Ou000000001,cocF,aoc,NaN,,,,",
    "f7n9E0hX8qk,201211,Ou000000001,cocF,aoc,,,,,",  # value missing
    "f7n9E0hX8qk,201212,Ou000000001,cocF,aoc,,,,,true",  # missing but not deleted (flwup)
    "UNKNOWNDE01,201301,Ou000000001,cocF,aoc,2,,,,",
    "f7n9E0hX8qk,201302,NoSuchOu999,cocF,aoc,2,,,,",
    "f7n9E0hX8qk,201303,Ou000000001,cocX,aoc,2,,,,",  # unknown combo
    "f7n9E0hX8qk,201304,Ou000000001,,aoc,2,,,,",  # combo missing
    "UNKNOWNDE01,209901,NoSuchOu999,cocX,aoc,-1,,,,",  # five reasons at once
    "f7n9E0hX8qk,209901,Ou000000001,cocF,aoc,2,,,,",  # future period
    "f7n9E0hX8qk,2024W01,Ou000000001,cocF,aoc,2,,,,",  # weekly: not supported
    "f7n9E0hX8qk,,Ou000000001,cocF,aoc,2,,,,",  # period missing
    ",,,,,,,,,",  # blank record: not numbered
    "   ,  , ,,,,,,,",  # blank too (only spaces)
    "f7n9E0hX8qk,2014Q3,Ou000000001,cocM,aoc,7,,2014-10-01,,",  # quarter, date-only stamp
    "f7n9E0hX8qk,2014,Ou000000001,cocN,aoc,7,,2014-13-01T00:00:00,,",  # year; no timestamp read
    "f7n9E0hX8qk,201401,Ou000000001,cocN,aoc,7,,2014-02-01T10:00:00+03:00,,",
    "f7n9E0hX8qk,201402,Ou000000001,cocN,aoc,7,,2014-02-01T10:00:00Z,,",
    " f7n9E0hX8qk , 201403 ,\u00a0Ou000000001\u00a0,\tcocF\t,aoc ,\x1c8\x1c,nurse ,,  ,",
    'f7n9E0hX8qk,201404,Ou000000001,cocF,,9,,,"two\nlines, ""quoted""",',  # NULL aoc
    "f7n9E0hX8qk,201404,Ou000000001,cocF,,10,,,,",  # its key again (NULL aoc)
    "f7n9E0hX8qk,201405,Ou000000001,cocF,aoc,0007.50,Ménière,,Clinique Ménière 診療所,",
    "f7n9E0hX8qk,201406,Ou000000001,cocF,aoc,11,,,=SUM(A1),TRUE",
    "f7n9E0hX8qk,201407,Ou000000001,cocF,aoc,,,,,YES",
    "f7n9E0hX8qk,201201,Ou000000001,cocF,aoc,5,,,,",  # the first record's key
]


def planted_faults_csv(
    path: Path, records: int = 3000, seed: int = 7, newline: str = "\n", bom: bool = False
) -> Path:
    """`records` generated records (mostly valid, some repeated keys far apart) with the odd ones
    spread among them, so faults fall in several of the loader's blocks."""
    rng = random.Random(seed)
    lines = [HEADER]
    odd = iter(ODD_RECORDS)
    spacing = max(1, records // (len(ODD_RECORDS) + 1))
    earlier: list[str] = []
    for i in range(records):
        if i % spacing == spacing - 1 and (line := next(odd, None)) is not None:
            lines.append(line)
            continue
        if earlier and rng.random() < 0.01:  # a repeated key, far from its first occurrence
            key = rng.choice(earlier)
            lines.append(f"{key},{rng.randint(0, 99)},,,,")
            continue
        if rng.random() < 0.01:
            lines.append("")  # an empty line
        element = rng.choice(list(ELEMENTS))
        period = f"{rng.randint(2015, 2024)}{rng.randint(1, 12):02d}"
        unit = rng.choice(list(ORG_UNITS))
        combo = rng.choice(list(COMBOS))
        key = f"{element},{period},{unit},{combo},aoc{i % 3}"
        earlier.append(key)
        stamp = f"2025-01-{rng.randint(1, 28):02d}T10:{rng.randint(0, 59):02d}:00.000"
        lines.append(f"{key},{rng.randint(0, 5000)},admin,{stamp},,false")
    lines.extend(odd)
    data = newline.join(lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data.encode("utf-8"))
    return path
