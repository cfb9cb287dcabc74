"""A sample implementation registry (feeds/contracts/implementation-registry.v1.yml) and the effects
planted in the sample series it points to, so tests can check the impact methods recover them.

Projects: the three NIHR Mental Health Implementation Network solutions in their ARCs' ICBs (PCREF
in Greater Manchester and Yorkshire & Humber, go-live April 2023; parent-led CBT in East of England
and North West Coast; Alcohol Assertive Outreach Treatment in Greater Manchester and Yorkshire &
Humber) and two programmes in Being countries rolled out region by region at different dates
(Colombia's community mental health centres, Romania's mhGAP in primary care).

Planted effects (`PLANTED`, applied by the MHSDS and DHIS2 generators through `effect`), from the
month of each site's go-live on:
- PCREF: people detained (MHSDS MHS09, and so MHS08, which includes them) of the Black group fall
  by 15% in PCREF's ICBs; nothing in other groups or other ICBs;
- community mental health centres: outpatient contacts (DHIS2) rise by 20% in each Colombian
  region from its own go-live (staggered), nothing in the region that has not implemented it.
Nothing is planted for parent-led CBT, Alcohol Assertive Outreach or mhGAP: a method that finds
an effect there finds noise.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

HEADER = (
    "project_code",
    "project_name",
    "intervention_code",
    "country_code",
    "site_level",
    "site_code",
    "pilot_date",
    "go_live_date",
    "scale_up_date",
    "de_implementation_date",
    "comparison_sites",
    "outcome_indicator",
    "stratifier",
)
FILE = "implementation/implementation_registry.csv"


@dataclass(frozen=True)
class Site:
    code: str
    go_live: str  # YYYY-MM-DD
    pilot: str = ""
    scale_up: str = ""
    de_implementation: str = ""


@dataclass(frozen=True)
class Project:
    code: str
    name: str
    intervention: str
    country: str
    level: str
    sites: tuple[Site, ...]
    outcomes: tuple[tuple[str, str], ...]  # (indicator, stratifier)
    comparison: str = "all_same_level"


PROJECTS = (
    Project(
        "pcref",
        "Patient and Carer Race Equality Framework (NIHR MHIN)",
        "pcref",
        "GBR",
        "icb",
        (Site("QOP", "2023-04-01"), Site("QWO", "2023-04-01")),
        (
            ("mha_people_detained", "ethnicity"),
            ("mha_people_detained", "all"),
            ("mha_people_subject_to_act", "ethnicity"),
            ("mha_people_on_cto", "ethnicity"),
        ),
    ),
    Project(
        "parent_led_cbt",
        "Parent-led CBT for child anxiety (NIHR MHIN)",
        "parent_led_cbt",
        "GBR",
        "icb",
        (Site("QUE", "2023-10-01"), Site("QYG", "2024-01-01", pilot="2023-10-01")),
        (("mhsds_people_in_contact", "all"),),
    ),
    Project(
        "alcohol_assertive_outreach",
        "Alcohol Assertive Outreach Treatment (NIHR MHIN)",
        "alcohol_assertive_outreach",
        "GBR",
        "icb",
        (
            Site("QOP", "2023-07-01", pilot="2023-01-01", scale_up="2024-01-01"),
            Site("QWO", "2023-07-01", pilot="2023-01-01", scale_up="2024-01-01"),
        ),
        (("mhsds_people_in_contact", "all"), ("mhsds_people_in_contact", "ethnicity")),
        comparison="QT1;QKS;QHM;QMJ;QRV;QU9;QWE;QJK;QRL;QUY;QHL",
    ),
    Project(
        "col_community_mh_centres",
        "Colombia: community mental health centres (Being, sample)",
        "community_mental_health_centres",
        "COL",
        "region",
        (Site("CO-DC", "2022-07-01", pilot="2022-01-01"), Site("CO-ANT", "2023-07-01")),
        (("mh_outpatient_contacts", "all"), ("mh_outpatient_contacts", "sex")),
    ),
    Project(
        "rou_mhgap_primary_care",
        "Romania: mhGAP in primary care (Being, sample)",
        "mhgap_primary_care",
        "ROU",
        "region",
        (
            Site("RO-B", "2023-01-01", scale_up="2023-07-01"),
            Site("RO-CJ", "2024-01-01", de_implementation="2025-06-30"),
        ),
        (("mh_outpatient_contacts", "all"),),
    ),
)

# (project, indicator, group or None for every group, multiplier from each site's go-live month)
PLANTED = (
    ("pcref", "mha_people_detained", "black", 0.85),
    ("col_community_mh_centres", "mh_outpatient_contacts", None, 1.20),
)


def effect(indicator: str, site: str, group: str | None, year: int, month: int) -> float:
    """The multiplier planted on `indicator` at `site` for `group` in the month (1.0: none)."""
    factor = 1.0
    projects = {p.code: p for p in PROJECTS}
    for project_code, planted_indicator, planted_group, multiplier in PLANTED:
        if planted_indicator != indicator or planted_group not in (None, group):
            continue
        for s in projects[project_code].sites:
            live_year, live_month = int(s.go_live[:4]), int(s.go_live[5:7])
            if s.code == site and (year, month) >= (live_year, live_month):
                factor *= multiplier
    return factor


def write(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    """The registry file: the same at every seed and scale (it is the design, not data)."""
    path = out_dir / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HEADER)
    for p in PROJECTS:
        for s in p.sites:
            for indicator, stratifier in p.outcomes:
                writer.writerow(
                    [
                        p.code,
                        p.name,
                        p.intervention,
                        p.country,
                        p.level,
                        s.code,
                        s.pilot,
                        s.go_live,
                        s.scale_up,
                        s.de_implementation,
                        p.comparison,
                        indicator,
                        stratifier,
                    ]
                )
    path.write_text(buf.getvalue(), encoding="utf-8")
    return [path]
