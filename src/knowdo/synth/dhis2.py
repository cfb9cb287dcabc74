"""Deterministic sample feeds in the real formats (`knowdo synth`).

Same seed and scale, same bytes. The first family is a DHIS2 dataValueSets JSON feed from a sample
ministry (Ghana): monthly mental-health outpatient contacts by region, sex and age band, with
plausible inequalities (lower contact rates in the northern regions, among men and the young).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

# Illustrative populations (thousands) by region: shaped like Ghana's 2021 census projections.
GHA_REGIONS = {  # orgUnit uid: (geography code, population in thousands, access factor)
    "KdOuGhAA001": ("GH-AA", 5500, 1.35),
    "KdOuGhAH001": ("GH-AH", 5400, 1.10),
    "KdOuGhNP001": ("GH-NP", 2300, 0.55),
    "KdOuGhUE001": ("GH-UE", 1300, 0.45),
}
AGE_SHARES = {"0-14": 0.37, "15-24": 0.19, "25-49": 0.31, "50+": 0.13}
AGE_RATE = {"0-14": 0.12, "15-24": 0.8, "25-49": 1.25, "50+": 1.0}  # relative contact rate
SEX_RATE = {"F": 1.15, "M": 0.85}
BASE_RATE_PER_100K = 160.0  # contacts per 100,000 population per month

DATA_ELEMENT = "KdMhOpdVis1"  # mental health outpatient contacts
COCS = {  # categoryOptionCombo uid: (sex, age band)
    f"KdCoc{sex}{i:05d}": (sex, band) for sex in ("F", "M") for i, band in enumerate(AGE_SHARES)
}
YEARS = (2024, 2025)


def _poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # normal approximation keeps generation fast for large cells
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def dhis2_values(rng: random.Random, year: int, scale: float) -> list[dict]:
    values = []
    for month in range(1, 13):
        season = 1.0 + 0.08 * math.sin((month - 3) / 12 * 2 * math.pi)
        trend = 1.0 + 0.04 * (year - YEARS[0]) + 0.003 * month
        for ou, (_, pop_k, access) in GHA_REGIONS.items():
            for coc, (sex, band) in COCS.items():
                population = pop_k * 1000 * scale * AGE_SHARES[band] / 2
                lam = population * BASE_RATE_PER_100K / 1e5 * access * SEX_RATE[sex] * AGE_RATE[band] * season * trend
                # Rural under-14s are seen rarely: small counts that disclosure control must suppress.
                if band == "0-14" and access < 0.6:
                    lam = lam * 0.02
                count = _poisson(rng, lam)
                if count == 0:
                    continue  # DHIS2 omits zero values
                values.append({
                    "dataElement": DATA_ELEMENT,
                    "period": f"{year}{month:02d}",
                    "orgUnit": ou,
                    "categoryOptionCombo": coc,
                    "attributeOptionCombo": "HllvX50cXC0",
                    "value": str(count),
                    "storedBy": "knowdo-synth",
                    "lastUpdated": f"{year + (month == 12)}-{month % 12 + 1:02d}-05T08:00:00.000",
                })
    return values


def write_sample_feeds(out_dir: Path, seed: int = 42, scale: float = 1.0) -> list[Path]:
    rng = random.Random(seed)
    written = []
    folder = out_dir / "dhis2" / "gha_moh"
    folder.mkdir(parents=True, exist_ok=True)
    for year in YEARS:
        values = dhis2_values(rng, year, scale)
        if year == YEARS[-1]:
            # A realistic data-entry slip: a negative count, which the feed's contract rejects.
            values.append({**values[0], "period": f"{year}06", "categoryOptionCombo": "KdCocM00003",
                           "orgUnit": "KdOuGhUE001", "value": "-4", "comment": "typo"})
        doc = {"dataSet": "KdMhDataSt1", "completeDate": f"{year + 1}-01-15", "dataValues": values}
        path = folder / f"gha_mh_service_use_{year}.json"
        path.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        written.append(path)
    return written


def registry_mapping() -> dict:
    """The registry mapping these files need (kept in feeds/registry.yml; tested against this)."""
    return {
        "data_elements": {DATA_ELEMENT: "mh_outpatient_contacts"},
        "org_units": {ou: code for ou, (code, _, _) in GHA_REGIONS.items()},
        "category_option_combos": {coc: {"sex": s, "age_band": b} for coc, (s, b) in COCS.items()},
    }
