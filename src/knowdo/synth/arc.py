"""ARC-submitted reach of two NIHR Mental Health Implementation Network solutions, in KnowDo's
service-use template (feeds/contracts/ngo-service-use.v1.yml): parent-led CBT for child anxiety
(East of England, North West Coast) and Alcohol Assertive Outreach Treatment (Greater Manchester,
Yorkshire and Humber). People reached and sessions per month in the ARC's ICB, for everyone, by
sex and by ethnic group; minority groups are reached less than their share of residents, as
services report. Counts are sent exact: KnowDo's disclosure control suppresses what it publishes.
"""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from knowdo.synth.geography import ARC_AREAS, ETHNIC_GROUPS

HEADER = [
    "organisation_id",
    "country_code",
    "geography_code",
    "period",
    "intervention_code",
    "stratifier",
    "group_code",
    "people_reached",
    "sessions_delivered",
]
YEARS = (2024, 2025)
# (ARC code, intervention, people reached per month per 100,000 adults, share female,
#  sessions per person per month)
PROGRAMMES = (
    ("arc_east_of_england", "parent_led_cbt", 3.0, 0.52, (1.2, 2.0)),
    ("arc_north_west_coast", "parent_led_cbt", 2.2, 0.52, (1.2, 2.0)),
    ("arc_greater_manchester", "alcohol_assertive_outreach", 2.4, 0.34, (3.0, 5.5)),
    ("arc_yorkshire_humber", "alcohol_assertive_outreach", 1.8, 0.34, (3.0, 5.5)),
)
ICB_OF_ARC = {arc: (icb, pop_k) for arc, _name, icb, _icb_name, pop_k in ARC_AREAS}


def _split(total: int, weights: dict[str, float]) -> dict[str, int]:
    """Whole counts in proportion to the weights that add up to `total` exactly."""
    whole = sum(weights.values())
    counts = {k: round(total * w / whole) for k, w in weights.items()}
    largest = max(weights, key=weights.get)
    counts[largest] += total - sum(counts.values())
    return counts


def feed_id(arc_code: str, intervention: str) -> str:
    return f"{arc_code.removeprefix('arc_')}_arc_{intervention}"


def file_name(arc_code: str, intervention: str) -> str:
    return f"{arc_code}_{intervention}.csv"


def write(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    folder = out_dir / "arc"
    folder.mkdir(parents=True, exist_ok=True)
    ethnic_weights = {code: share * access for _label, code, share, access in ETHNIC_GROUPS}
    written = []
    for arc_code, intervention, per_100k, female_share, sessions in PROGRAMMES:
        icb, pop_k = ICB_OF_ARC[arc_code]
        adults = pop_k * 1000 * 0.8 * scale
        rows = []
        for y, year in enumerate(YEARS):
            for month in range(1, 13):
                growth = 1 + 0.15 * y + 0.01 * month  # programmes scaling up
                reached = max(5, round(adults * per_100k / 1e5 * growth * rng.uniform(0.85, 1.15)))
                female = round(reached * female_share * rng.uniform(0.9, 1.1))
                groups = [
                    ("all", "all", reached),
                    ("sex", "F", female),
                    ("sex", "M", reached - female),
                ]
                groups += [
                    ("ethnicity", code, n) for code, n in _split(reached, ethnic_weights).items()
                ]
                for stratifier, group, n in groups:
                    rows.append(
                        [
                            arc_code,
                            "GBR",
                            icb,
                            f"{year}-{month:02d}",
                            intervention,
                            stratifier,
                            group,
                            n,
                            round(n * rng.uniform(*sessions)),
                        ]
                    )
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
        path = folder / file_name(arc_code, intervention)
        path.write_text(buf.getvalue(), encoding="utf-8")
        written.append(path)
    return written


def registry_entry(arc_code: str, intervention: str, arc_name: str) -> dict:
    return {
        "id": feed_id(arc_code, intervention),
        "publisher": {
            "name": f"NIHR ARC {arc_name} (sample)",
            "kind": "arc",
            "country_code": "GBR",
        },
        "domain": "service_use",
        "format": "knowdo-ngo-service-use-csv",
        "source": {"folder": "arc", "glob": file_name(arc_code, intervention)},
        "schedule": "@monthly",
    }
