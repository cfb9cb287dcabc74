"""DHIS2 dataValueSets from the ministries of the 13 Being priority countries: JSON, except
Vietnam's ministry, which exports the Web API's CSV (`/api/dataValueSets.csv`).

Monthly mental-health outpatient contacts by region, sex and age band, five years, with plausible
inequalities (urban regions, women and working ages use services more; the rural young rarely).
The effects planted for the impact methods (knowdo.synth.implementation.PLANTED: outpatient
contacts rise by 20% in each region of Colombia's sample programme from the region's go-live) scale
the expected counts.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from pathlib import Path

from knowdo.synth.geography import AGE_BANDS, AGE_SHARES, BEING_COUNTRIES, SEXES, Country
from knowdo.synth.implementation import effect

YEARS = (2021, 2022, 2023, 2024, 2025)
DATA_ELEMENT = "KdMhOpdVis1"  # mental health outpatient contacts
AGE_RATE = {"0-14": 0.12, "15-24": 0.8, "25-49": 1.25, "50+": 1.0}
SEX_RATE = {"F": 1.15, "M": 0.85}
BASE_RATE_PER_100K = 160.0  # contacts per 100,000 population per month
CSV_COUNTRIES = {"VNM"}  # ministries that send DHIS2's CSV export instead of JSON
CSV_HEADER = (
    "dataelement",
    "period",
    "orgunit",
    "catoptcombo",
    "attroptcombo",
    "value",
    "storedby",
    "lastupdated",
    "comment",
    "flwup",
)
COCS = {f"KdCoc{sex}{i:05d}": (sex, band) for sex in SEXES for i, band in enumerate(AGE_BANDS)}


def org_unit_uid(region_code: str) -> str:
    """An 11-character DHIS2-style uid for a region (stable across runs)."""
    letters = "".join(ch for ch in region_code if ch.isalnum()).upper()
    return f"KdOu{letters[:2]}{letters[2:]:<5}".replace(" ", "0")[:11]


def poisson(rng: random.Random, lam: float) -> int:
    if lam > 50:  # normal approximation keeps generation fast for large cells
        return max(0, round(rng.gauss(lam, math.sqrt(lam))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def country_values(rng: random.Random, country: Country, year: int, scale: float) -> list[dict]:
    values = []
    for month in range(1, 13):
        season = 1.0 + 0.08 * math.sin((month - 3) / 12 * 2 * math.pi)
        trend = 1.0 + 0.04 * (year - YEARS[0]) + 0.003 * month
        for region in country.regions:
            planted = effect("mh_outpatient_contacts", region.code, None, year, month)
            for coc, (sex, band) in COCS.items():
                population = region.population_k * 1000 * scale * AGE_SHARES[band] / 2
                lam = (
                    population
                    * BASE_RATE_PER_100K
                    / 1e5
                    * region.access
                    * SEX_RATE[sex]
                    * AGE_RATE[band]
                    * season
                    * trend
                    * planted
                )
                if band == "0-14" and region.access < 0.6:
                    lam *= 0.02  # rural under-15s are seen rarely: small counts to suppress
                count = poisson(rng, lam)
                if count == 0:
                    continue  # DHIS2 omits zero values
                values.append(
                    {
                        "dataElement": DATA_ELEMENT,
                        "period": f"{year}{month:02d}",
                        "orgUnit": org_unit_uid(region.code),
                        "categoryOptionCombo": coc,
                        "attributeOptionCombo": "HllvX50cXC0",
                        "value": str(count),
                        "storedBy": "knowdo-synth",
                        "lastUpdated": (
                            f"{year + (month == 12)}-{month % 12 + 1:02d}-05T08:00:00.000"
                        ),
                    }
                )
    return values


def _document(complete_date: str, values: list[dict]) -> str:
    """A dataValueSet with one value per line: compact, yet diffable."""
    head = json.dumps({"dataSet": "KdMhDataSt1", "completeDate": complete_date})[:-1]
    body = ",\n".join(json.dumps(v, separators=(",", ":")) for v in values)
    return f'{head}, "dataValues": [\n{body}\n]}}\n'


def _csv_document(values: list[dict]) -> str:
    """The same values as DHIS2's CSV export writes them (one header, one record per value)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for v in values:
        writer.writerow(
            [
                v["dataElement"],
                v["period"],
                v["orgUnit"],
                v["categoryOptionCombo"],
                v["attributeOptionCombo"],
                v["value"],
                v["storedBy"],
                v["lastUpdated"],
                v.get("comment", ""),
                "false",
            ]
        )
    return buf.getvalue()


def file_format(country: Country) -> str:
    return "dhis2-csv" if country.iso3 in CSV_COUNTRIES else "dhis2-json"


def feed_id(country: Country) -> str:
    return f"{country.iso3.lower()}_moh_dhis2"


def folder(country: Country) -> str:
    return f"dhis2/{country.iso3.lower()}_moh"


def write(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    """One file per country and year; plus the realistic faults the pipeline must handle:
    a negative count (Ghana 2025), a late file (Senegal 2025, completed in April 2026), a corrected
    resend (Tanzania 2024 v2 fixes June), and a truncated file (Sierra Leone 2023)."""
    written = []
    for country in BEING_COUNTRIES:
        target = out_dir / folder(country)
        target.mkdir(parents=True, exist_ok=True)
        for year in YEARS:
            values = country_values(rng, country, year, scale)
            complete = f"{year + 1}-01-15"
            if country.iso3 == "GHA" and year == 2025:
                values.append(
                    {
                        **values[0],
                        "period": f"{year}06",
                        "categoryOptionCombo": "KdCocM00003",
                        "orgUnit": org_unit_uid("GH-UE"),
                        "value": "-4",
                        "comment": "typo",
                    }
                )
            if country.iso3 == "SEN" and year == 2025:
                complete = "2026-04-20"
            as_csv = country.iso3 in CSV_COUNTRIES
            path = (
                target
                / f"{country.iso3.lower()}_mh_service_use_{year}.{'csv' if as_csv else 'json'}"
            )
            text = _csv_document(values) if as_csv else _document(complete, values)
            if country.iso3 == "SLE" and year == 2023:
                text = text[: len(text) // 2]  # the upload was cut off
            path.write_text(text, encoding="utf-8")
            written.append(path)
            if country.iso3 == "TZA" and year == 2024:
                corrected = [
                    {**v, "value": str(round(int(v["value"]) * 1.1))}
                    if v["period"] == "202406"
                    else v
                    for v in values
                ]
                resend = target / f"{country.iso3.lower()}_mh_service_use_{year}_v2.json"
                resend.write_text(_document(complete, corrected), encoding="utf-8")
                written.append(resend)
    return written


def registry_entry(country: Country) -> dict:
    return {
        "id": feed_id(country),
        "publisher": {
            "name": f"{country.ministry} (sample ministry)",
            "kind": "ministry",
            "country_code": country.iso3,
        },
        "domain": "service_use",
        "format": file_format(country),
        "source": {
            "folder": folder(country),
            "glob": "*.csv" if country.iso3 in CSV_COUNTRIES else "*.json",
        },
        "schedule": "@yearly",
        "mapping": {
            "data_elements": {DATA_ELEMENT: "mh_outpatient_contacts"},
            "org_units": {org_unit_uid(r.code): r.code for r in country.regions},
            "category_option_combos": {
                coc: {"sex": s, "age_band": b} for coc, (s, b) in COCS.items()
            },
        },
    }
