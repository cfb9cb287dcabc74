"""NHS Talking Therapies annual measures (the published CSV layout) for the ICBs of England's ARC
areas, broken down by ethnicity and IMD decile: access and recovery with realistic gaps between
groups, counts under 5 suppressed as '*' and the rest rounded to 5 as NHS England publishes them."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from knowdo.synth.geography import ARC_AREAS, ETHNIC_GROUPS, IMD_DECILES

HEADER = (
    "OrgType",
    "OrgCode",
    "OrgName",
    "VariableType",
    "VariableA",
    "VariableB",
    "Count_ReferralsReceived",
    "Count_AccessingServices",
    "Count_FinishedCourseTreatment",
    "Count_AtCaseness",
    "Count_NotAtCaseness",
    "Count_Improvement",
    "Percentage_Improvement",
    "Count_Recovery",
    "Percentage_Recovery",
    "Count_ReliableRecovery",
    "Percentage_ReliableRecovery",
    "Mean_WaitAccessingServices",
)
YEARS = ("2020-21", "2021-22", "2022-23", "2023-24", "2024-25")


def _rounded(n: float) -> str:
    count = round(n)
    return "*" if count < 5 else str(5 * round(count / 5))


def _pct(part: float, whole: float) -> str:
    return "*" if round(part) < 5 or round(whole) < 5 else f"{100 * part / whole:.0f}"


def _measures(
    rng: random.Random, population: float, access: float, recovery_factor: float
) -> list[str]:
    referrals = population * 0.035 * access * rng.uniform(0.93, 1.07)
    accessing = referrals * 0.72
    finished = accessing * 0.55
    caseness = finished * 0.9
    improvement = finished * 0.66 * recovery_factor
    recovery = caseness * 0.5 * recovery_factor
    reliable = recovery * 0.9
    return [
        _rounded(referrals),
        _rounded(accessing),
        _rounded(finished),
        _rounded(caseness),
        _rounded(finished - caseness),
        _rounded(improvement),
        _pct(improvement, finished),
        _rounded(recovery),
        _pct(recovery, caseness),
        _rounded(reliable),
        _pct(reliable, caseness),
        f"{rng.uniform(18, 45):.1f}",
    ]


def write(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    folder = out_dir / "nhs_talking_therapies"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for y, year in enumerate(YEARS):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HEADER)
        for _arc, _arc_name, icb, icb_name, pop_k in ARC_AREAS:
            population = pop_k * 1000 * 0.8 * scale * (1 + 0.01 * y)  # adults 18+
            writer.writerow(
                [
                    "ICB",
                    icb,
                    icb_name,
                    "Total",
                    "Total",
                    "Total",
                    *_measures(rng, population, 1.0, 1.0),
                ]
            )
            for label, _code, share, access in ETHNIC_GROUPS:
                recovery = 1.0 if label == "White" else 0.88
                writer.writerow(
                    [
                        "ICB",
                        icb,
                        icb_name,
                        "Ethnicity",
                        label,
                        label,
                        *_measures(rng, population * share, access, recovery),
                    ]
                )
            for decile, _code, share, access in IMD_DECILES:
                recovery = 0.78 + 0.025 * int(decile)  # recovery rises with affluence
                writer.writerow(
                    [
                        "ICB",
                        icb,
                        icb_name,
                        "IMD Decile",
                        decile,
                        decile,
                        *_measures(rng, population * share, access, recovery),
                    ]
                )
        path = folder / f"measures_annual_{year}.csv"
        path.write_text(buf.getvalue(), encoding="utf-8")
        written.append(path)
    return written
