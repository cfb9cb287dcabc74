"""DHIS2 dataValueSets JSON documents for the fast-path and check tests (seeded, with odd values
planted every 13th entry and a missing attributeOptionCombo every 101st)."""

import json
import random
from pathlib import Path

from tests.helpers.dhis2_csv_faults import ORG_UNITS

ODD_VALUES = [
    {"value": "1,204", "storedBy": "admin", "lastUpdated": "2012-01-17T10:21:05.000"},
    {"value": "-3"},
    {"value": "lots"},
    {"value": "+5"},
    {"value": "1e3"},
    {"value": ".5"},
    {"value": " 7 "},
    {"value": "12,34,5"},
    {"value": "٣"},
    {"value": "NaN"},
    {"value": ""},
    {"value": "", "deleted": True},
    {"value": None, "deleted": False},
    {"deleted": True},
    {"value": "   "},
    {"dataElement": "UNKNOWNDE01"},
    {"orgUnit": "NoSuchOu999"},
    {"categoryOptionCombo": "cocX"},
    {"categoryOptionCombo": ""},
    {"categoryOptionCombo": None},
    {"dataElement": "UNKNOWNDE01", "orgUnit": "NoSuchOu999", "period": "209901", "value": "-1"},
    {"dataElement": " f7n9E0hX8qk "},
    {"orgUnit": "Ou 00000001"},
    {"dataElement": ""},
    {"dataElement": None},
    {"period": "209901"},
    {"period": "2024W01"},
    {"period": "2015Oct"},
    {"period": ""},
    {"period": "2014Q3", "lastUpdated": "2014-10-01"},
    {"period": "2014", "lastUpdated": "2014-13-01T00:00:00"},
    {"lastUpdated": "", "created": "2014-02-01T10:00:00+03:00"},
    {"lastUpdated": "2014-02-01T10:00:00Z"},
    {"created": ""},
    {"attributeOptionCombo": ""},
    {"attributeOptionCombo": None},
    {"comment": 'two\nlines, "quoted" [brackets] {braces}, commas'},
    {"comment": "Clinique Ménière 診療所", "storedBy": "Ménière"},
    {"value": "0007.50"},
    {"followup": True, "extra": {"nested": [1, 2, {"x": "]"}]}},
]


def values(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    units = list(ORG_UNITS)
    for i in range(count):
        item = {
            "dataElement": rng.choice(["f7n9E0hX8qk", "Ix2HsbDMLea"]),
            "period": f"{rng.randint(2010, 2024)}{rng.randint(1, 12):02d}",
            "orgUnit": rng.choice(units),
            "categoryOptionCombo": rng.choice(["cocF", "cocM", "cocN"]),
            "attributeOptionCombo": "aoc",
            "value": str(rng.randint(0, 5000)),
            "storedBy": "admin",
            "lastUpdated": "2020-01-02T03:04:05.000",
            "followup": False,
        }
        if i % 13 == 5:
            item.update(ODD_VALUES[(i // 13) % len(ODD_VALUES)])
            item = {k: v for k, v in item.items()}
        if i % 101 == 7:
            del item["attributeOptionCombo"]
        out.append(item)
    return out


def write(path: Path, document: dict, indent=None, bom: bool = False) -> Path:
    text = json.dumps(document, indent=indent, ensure_ascii=False)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path
