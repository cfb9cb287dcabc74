"""Funding feeds: IATI activity XML from donors and NGOs, 360Giving grants from UK funders, WHO GHO
health-expenditure exports. Organisation identifiers follow the org-id.guide conventions; the
organisations marked (sample) and all values are synthetic."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path
from xml.sax.saxutils import escape

from knowdo.synth.geography import BEING_COUNTRIES

IATI_PUBLISHERS = (  # (ref, name, org type, currency, file stem)
    (
        "GB-GOV-1",
        "UK Foreign, Commonwealth and Development Office (sample)",
        "10",
        "GBP",
        "gb_fcdo",
    ),
    ("US-GOV-1", "US Agency for International Development (sample)", "10", "USD", "us_usaid"),
    ("XM-DAC-928", "World Health Organization (sample)", "40", "USD", "who"),
    ("GB-CHC-1089464", "MindBridge International (sample NGO)", "21", "GBP", "mindbridge"),
)
SECTOR_MIXES = (  # DAC CRS purpose codes with percentages (vocabulary 1)
    (("12340", 100),),
    (("12340", 70), ("12220", 30)),
    (("12330", 60), ("12340", 40)),
    (("12382", 50), ("12340", 50)),
    (("12220", 100),),  # basic health care: not mental health
    (("12110", 80), ("12340", 20)),
)
YEARS = (2021, 2022, 2023, 2024, 2025)


def _activity(rng: random.Random, publisher, n: int) -> str:
    ref, name, org_type, currency, _ = publisher
    countries = rng.sample(BEING_COUNTRIES, k=rng.choice((1, 1, 2)))
    shares = [100] if len(countries) == 1 else [60, 40]
    sectors = rng.choice(SECTOR_MIXES)
    start = rng.choice(YEARS[:3])
    total = rng.randrange(200, 5000) * 1000
    implementer = rng.choice(
        ("GB-CHC-1089464", "XM-DAC-928", f"{countries[0].iso2}-NGO-{rng.randrange(1000, 9999)}")
    )
    lines = [
        (
            '  <iati-activity last-updated-datetime="2026-01-10T09:00:00Z" xml:lang="en"'
            f' default-currency="{currency}">'
        ),
        f"   <iati-identifier>{ref}-KD{n:04d}</iati-identifier>",
        (
            f'   <reporting-org ref="{ref}" type="{org_type}">'
            f"<narrative>{escape(name)}</narrative></reporting-org>"
        ),
        (
            "   <title><narrative>"
            f"Mental health services and implementation research {n}</narrative></title>"
        ),
        (
            f'   <participating-org ref="{ref}" role="1" type="{org_type}">'
            f"<narrative>{escape(name)}</narrative></participating-org>"
        ),
        (
            f'   <participating-org ref="{implementer}" role="4" type="21">'
            f"<narrative>Implementing partner {n}</narrative></participating-org>"
        ),
        '   <activity-status code="2" />',
        f'   <activity-date type="2" iso-date="{start}-01-01" />',
    ]
    for country, share in zip(countries, shares):
        pct = "" if (n % 17 == 0 and len(countries) == 1) else str(share)  # empty attributes occur
        lines.append(f'   <recipient-country code="{country.iso2}" percentage="{pct}" />')
    for code, pct in sectors:
        lines.append(f'   <sector vocabulary="1" code="{code}" percentage="{pct}" />')
    lines.append(
        '   <transaction><transaction-type code="2" />'
        f'<transaction-date iso-date="{start}-01-15" />'
        f'<value currency="{currency}" value-date="{start}-01-15">{total}</value></transaction>'
    )
    remaining = total
    for year in range(start, YEARS[-1] + 1):
        amount = min(remaining, round(total / (YEARS[-1] - start + 1) * rng.uniform(0.7, 1.2), -2))
        remaining -= amount
        if amount <= 0:
            break
        lines.append(
            '   <transaction><transaction-type code="3" />'
            f'<transaction-date iso-date="{year}-06-30" />'
            f'<value currency="{currency}" value-date="{year}-06-30">{amount:.0f}</value>'
            f'<receiver-org ref="{implementer}" /></transaction>'
        )
    lines.append("  </iati-activity>")
    return "\n".join(lines)


def write_iati(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    folder = out_dir / "iati"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    per_publisher = max(3, round(10 * scale))
    for i, publisher in enumerate(IATI_PUBLISHERS):
        activities = [_activity(rng, publisher, i * 1000 + n) for n in range(per_publisher)]
        text = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<iati-activities version="2.03" generated-datetime="2026-01-10T09:00:00Z">\n'
            + "\n".join(activities)
            + "\n</iati-activities>\n"
        )
        path = folder / f"{publisher[4]}_activities.xml"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


GIVING_FUNDERS = (
    ("GB-CHC-210183", "Wellcome Trust (sample)", "360G-wellcome-kd"),
    ("GB-GOV-10", "National Institute for Health and Care Research (sample)", "360G-nihr-kd"),
)
RECIPIENTS = (
    ("GB-EDU-133885", "University of Manchester (sample)", "GB"),
    ("GB-EDU-133903", "King's College London (sample)", "GB"),
    ("GB-CHC-1089464", "MindBridge International (sample NGO)", "GH"),
    ("GB-CHC-1108318", "Friendship Bench UK (sample NGO)", "PK"),
)


def _grant(rng: random.Random, funder, n: int, iso_dates: bool) -> dict:
    ref, name, prefix = funder
    recipient = rng.choice(RECIPIENTS)
    year = rng.choice((2021, 2022, 2023, 2024, 2025))
    day, month = rng.randrange(1, 28), rng.randrange(1, 13)
    date = f"{year}-{month:02d}-{day:02d}" if iso_dates else f"{day:02d}/{month:02d}/{year}"
    country = rng.choice([c.iso2 for c in BEING_COUNTRIES] + ["GB", "GB"])
    return {
        "id": f"{prefix}-{n:05d}",
        "title": f"Implementation research: scaling talking therapies {n}",
        "description": (
            "Evaluating delivery of an evidence-based psychological intervention\n"
            "in routine services."
        ),
        "currency": "GBP",
        "amountAwarded": rng.randrange(50, 2500) * 1000,
        "awardDate": date,
        "recipientOrganization": [{"id": recipient[0], "name": recipient[1]}],
        "fundingOrganization": [{"id": ref, "name": name}],
        "grantProgramme": [{"title": "Mental health implementation science"}],
        "beneficiaryLocation": [{"countryCode": country, "name": country}],
        "plannedDates": [{"startDate": f"{year}-09-01", "endDate": f"{year + 3}-08-31"}],
        "classifications": [
            {
                "vocabulary": "KnowDo area of need",
                "code": rng.choice(
                    (
                        "talking_therapies",
                        "inequalities",
                        "children_young_people",
                        "severe_mental_illness",
                    )
                ),
            }
        ],
    }


def write_360giving(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    folder = out_dir / "360giving"
    folder.mkdir(parents=True, exist_ok=True)
    n = max(5, round(15 * scale))
    wellcome = [_grant(rng, GIVING_FUNDERS[0], i, iso_dates=False) for i in range(n)]
    package = {"grants": wellcome, "license": "https://creativecommons.org/licenses/by/4.0/"}
    json_path = folder / "wellcome_grants.json"
    json_path.write_text(json.dumps(package, indent=1) + "\n", encoding="utf-8")
    nihr = [_grant(rng, GIVING_FUNDERS[1], i, iso_dates=True) for i in range(n)]
    buf = io.StringIO()
    columns = [
        "Identifier",
        "Title",
        "Description",
        "Currency",
        "Amount Awarded",
        "Award Date",
        "Recipient Org:Identifier",
        "Recipient Org:Name",
        "Funding Org:Identifier",
        "Funding Org:Name",
        "Grant Programme:Title",
        "Beneficiary Location:Country Code",
        "Planned Dates:Start Date",
        "Planned Dates:End Date",
    ]
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for g in nihr:
        writer.writerow(
            [
                g["id"],
                g["title"],
                g["description"],
                g["currency"],
                f"{g['amountAwarded']:,}",
                g["awardDate"],
                g["recipientOrganization"][0]["id"],
                g["recipientOrganization"][0]["name"],
                g["fundingOrganization"][0]["id"],
                g["fundingOrganization"][0]["name"],
                g["grantProgramme"][0]["title"],
                g["beneficiaryLocation"][0]["countryCode"],
                g["plannedDates"][0]["startDate"],
                g["plannedDates"][0]["endDate"],
            ]
        )
    csv_path = folder / "nihr_grants.csv"
    csv_path.write_bytes(b"\xef\xbb\xbf" + buf.getvalue().encode("utf-8"))  # Excel-style BOM
    return [json_path, csv_path]


GHO_HEADER = (
    "Id,IndicatorCode,SpatialDimension,SpatialDimensionValueCode,ParentLocationCode,ParentLocation,"
    "TimeDimension,TimeDim,DisaggregatingDimension1,DisaggregatingDimension1ValueCode,"
    "DisaggregatingDimension2,DisaggregatingDimension2ValueCode,DisaggregatingDimension3,"
    "DisaggregatingDimension3ValueCode,DataSourceDimension,DataSourceDimensionValueCode,Value,"
    "NumericValue,Low,High,Comments,Date,TimeDimensionValue,TimeDimensionBegin,TimeDimensionEnd"
)
WHO_REGION = {
    "GHA": "AFR",
    "TZA": "AFR",
    "SEN": "AFR",
    "SLE": "AFR",
    "ROU": "EUR",
    "COL": "AMR",
    "ECU": "AMR",
    "IND": "SEAR",
    "IDN": "SEAR",
    "MAR": "EMR",
    "EGY": "EMR",
    "PAK": "EMR",
    "VNM": "WPR",
}
REGION_NAME = {
    "AFR": "Africa",
    "EUR": "Europe",
    "AMR": "Americas",
    "SEAR": "South-East Asia",
    "EMR": "Eastern Mediterranean",
    "WPR": "Western Pacific",
}


def write_gho(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    """GHED_GGHE-DCHE_SHA2011 (domestic general government health expenditure, % of current health
    expenditure) and GHED_CHE_pc_US_SHA2011 (current health expenditure per capita, US$),
    2015-2022."""
    folder = out_dir / "who_gho"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for code, low, high in (
        ("GHED_GGHE-DCHE_SHA2011", 15, 80),
        ("GHED_CHE_pc_US_SHA2011", 30, 700),
    ):
        lines = [GHO_HEADER]
        row_id = 100000
        for country in BEING_COUNTRIES:
            base = rng.uniform(low, high)
            for year in range(2015, 2023):
                row_id += 1
                value = base * (1 + 0.02 * (year - 2015)) * rng.uniform(0.95, 1.05)
                region = WHO_REGION[country.iso3]
                lines.append(
                    f"{row_id},{code},COUNTRY,{country.iso3},{region},{REGION_NAME[region]},YEAR,{year},"
                    f",,,,,,,,{value:.2f},{value:.5f},,,,2024-12-10T14:55:59Z,{year},{year}-01-01,{year}-12-31"
                )
        path = folder / f"{code}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def write_gho_json(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    """MH_6 (Mental Health Atlas: psychiatrists working in mental health per 100,000) as the GHO
    OData API returns it (ghoapi.azureedge.net/api/MH_6): the 13 countries in the Atlas years 2016,
    2019 and 2020, plus the WHO regions' aggregate rows (loaded at their own level, no country)."""
    folder = out_dir / "who_gho"
    folder.mkdir(parents=True, exist_ok=True)
    facts, fact_id = [], 30000000

    def fact(spatial_type: str, spatial: str, parent: str | None, year: int, value: float) -> dict:
        nonlocal fact_id
        fact_id += 1
        return {
            "Id": fact_id,
            "IndicatorCode": "MH_6",
            "SpatialDimType": spatial_type,
            "SpatialDim": spatial,
            "ParentLocationCode": parent,
            "ParentLocation": REGION_NAME.get(parent or "", None),
            "TimeDimType": "YEAR",
            "TimeDim": year,
            "Dim1Type": None,
            "Dim1": None,
            "Dim2Type": None,
            "Dim2": None,
            "Dim3Type": None,
            "Dim3": None,
            "DataSourceDimType": None,
            "DataSourceDim": None,
            "Value": f"{value:.2f}",
            "NumericValue": round(value, 5),
            "Low": None,
            "High": None,
            "Comments": None,
            "Date": "2021-10-13T10:42:08.693+02:00",
            "TimeDimensionValue": str(year),
            "TimeDimensionBegin": f"{year}-01-01T00:00:00+01:00",
            "TimeDimensionEnd": f"{year}-12-31T00:00:00+01:00",
        }

    by_region: dict[tuple[str, int], list[float]] = {}
    for country in BEING_COUNTRIES:
        base = rng.uniform(0.05, 3.0)
        region = WHO_REGION[country.iso3]
        for year in (2016, 2019, 2020):
            value = base * (1 + 0.03 * (year - 2016)) * rng.uniform(0.9, 1.1)
            facts.append(fact("COUNTRY", country.iso3, region, year, value))
            by_region.setdefault((region, year), []).append(value)
    for (region, year), values in sorted(by_region.items()):
        facts.append(fact("REGION", region, None, year, sum(values) / len(values)))
    document = {"@odata.context": "https://ghoapi.azureedge.net/api/$metadata#MH_6", "value": facts}
    path = folder / "MH_6.json"
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return [path]
