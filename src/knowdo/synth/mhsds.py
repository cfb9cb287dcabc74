"""NHS Mental Health Services Data Set (MHSDS) monthly statistics in the published long CSV layout
(REPORTING_PERIOD_START ... MEASURE_VALUE) for the ICBs of England's ARC areas: the measures the
Patient and Carer Race Equality Framework (PCREF) looks at, by ethnic group.

Measures use MHSDS's own ids and names: MHS01 people in contact with services, MHS08 people subject
to the Mental Health Act, MHS09 people subject to detention, MHS10 people subject to a Community
Treatment Order (CTO) or conditional discharge, all at the end of the month. The ethnic disparities
are shaped like NHS England's Mental Health Act statistics (detention rates of Black people about
3.5 times those of White people, CTO rates about 7-8 times). As NHS England publishes them, ICB
counts under 5 are suppressed as `*` and the rest rounded to the nearest 5; England totals are
exact.

Thirty-six months, April 2022 - March 2025, one file per month as NHS England publishes them:
enough months either side of the sample implementation registry's go-lives (April 2023 for PCREF)
for an interrupted time series. The effects planted for the impact methods
(knowdo.synth.implementation.PLANTED: detentions of Black adults fall by 15% from PCREF's go-live
in its ICBs) are applied to the expected counts before rounding and suppression.
"""

from __future__ import annotations

import calendar
import csv
import io
import random
from pathlib import Path

from knowdo.synth.geography import ARC_AREAS, ETHNIC_GROUPS
from knowdo.synth.implementation import effect

HEADER = (
    "REPORTING_PERIOD_START",
    "REPORTING_PERIOD_END",
    "STATUS",
    "BREAKDOWN",
    "PRIMARY_LEVEL",
    "PRIMARY_LEVEL_DESCRIPTION",
    "SECONDARY_LEVEL",
    "SECONDARY_LEVEL_DESCRIPTION",
    "MEASURE_ID",
    "MEASURE_NAME",
    "MEASURE_VALUE",
)
ICB_BREAKDOWN = "ICB - GP Practice or Residence"
ETHNICITY_BREAKDOWN = f"{ICB_BREAKDOWN}; Ethnicity (Higher Level)"
NOT_STATED = "Not Stated/Not Known"
# (id, name, rate per 100,000 adults of the White group, rate relative to White by NHS label)
MEASURES = (
    (
        "MHS01",
        "People in contact with services at the end of the reporting period",
        2200.0,
        {
            "White": 1.0,
            "Asian or Asian British": 0.65,
            "Black or Black British": 1.25,
            "Mixed": 1.3,
            "Other Ethnic Groups": 0.9,
        },
    ),
    (
        "MHS09",
        "People subject to detention at the end of the reporting period",
        38.0,
        {
            "White": 1.0,
            "Asian or Asian British": 1.25,
            "Black or Black British": 3.6,
            "Mixed": 2.0,
            "Other Ethnic Groups": 2.4,
        },
    ),
    (
        "MHS10",
        "People subject to CTO or conditional discharge at the end of the reporting period",
        9.0,
        {
            "White": 1.0,
            "Asian or Asian British": 1.6,
            "Black or Black British": 7.5,
            "Mixed": 2.6,
            "Other Ethnic Groups": 3.0,
        },
    ),
)
SUBJECT_TO_ACT = (
    "MHS08",
    "People subject to the Mental Health Act at the end of the reporting period",
)
SHORT_TERM_ORDERS_PER_100K = 1.5  # part of MHS08 that has no measure of its own here
NOT_STATED_SHARE = 0.05  # records with no ethnicity, as a share of the known-ethnicity count
MONTHS = tuple((2022 + (m - 1) // 12, (m - 1) % 12 + 1) for m in range(4, 40))  # Apr 2022-Mar 2025
# the KnowDo indicator of each measure, for the planted effects (dbt seed ref_indicators)
INDICATORS = {
    "MHS01": "mhsds_people_in_contact",
    "MHS08": "mha_people_subject_to_act",
    "MHS09": "mha_people_detained",
    "MHS10": "mha_people_on_cto",
}


def _published(count: float) -> str:
    """NHS England's rule below national level: under 5 suppressed, the rest rounded to 5."""
    n = round(count)
    return "*" if n < 5 else str(5 * round(n / 5))


def _group_counts(
    rng: random.Random, adults: float, place_level: float, icb: str, year: int, month: int
) -> dict[str, dict[str, float]]:
    """{measure id: {NHS ethnic label: expected count}} for one ICB and month."""
    counts: dict[str, dict[str, float]] = {}
    for measure_id, _name, white_rate, relative in MEASURES:
        per_group = {
            label: adults
            * share
            * white_rate
            * relative[label]
            * place_level
            / 1e5
            * rng.uniform(0.95, 1.05)
            * effect(INDICATORS[measure_id], icb, code, year, month)
            for label, code, share, _access in ETHNIC_GROUPS
        }
        per_group[NOT_STATED] = sum(per_group.values()) * NOT_STATED_SHARE * rng.uniform(0.8, 1.2)
        counts[measure_id] = per_group
    # subject to the Act = detained + on a CTO + on a short-term order
    short_term = {
        label: adults * share * SHORT_TERM_ORDERS_PER_100K / 1e5
        for label, _code, share, _access in ETHNIC_GROUPS
    }
    counts[SUBJECT_TO_ACT[0]] = {
        label: counts["MHS09"][label] + counts["MHS10"][label] + short_term.get(label, 0.0)
        for label in counts["MHS09"]
    }
    return counts


def write(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    folder = out_dir / "mhsds"
    folder.mkdir(parents=True, exist_ok=True)
    names = {m[0]: m[1] for m in MEASURES} | {SUBJECT_TO_ACT[0]: SUBJECT_TO_ACT[1]}
    order = ("MHS01", "MHS08", "MHS09", "MHS10")
    place_levels = {icb: rng.uniform(0.85, 1.15) for _arc, _n, icb, _i, _p in ARC_AREAS}
    written = []
    for year, month in MONTHS:
        last_day = calendar.monthrange(year, month)[1]
        start, end = f"01/{month:02d}/{year}", f"{last_day}/{month:02d}/{year}"
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(HEADER)
        england = dict.fromkeys(order, 0.0)
        for _arc, _arc_name, icb, icb_name, pop_k in ARC_AREAS:
            adults = pop_k * 1000 * 0.8 * scale  # the population feed's adults of the ICB
            counts = _group_counts(rng, adults, place_levels[icb], icb, year, month)
            for measure_id in order:
                total = sum(counts[measure_id].values())
                england[measure_id] += total
                writer.writerow(
                    [
                        start,
                        end,
                        "Final",
                        ICB_BREAKDOWN,
                        icb,
                        icb_name,
                        "NONE",
                        "NONE",
                        measure_id,
                        names[measure_id],
                        _published(total),
                    ]
                )
                for label, count in counts[measure_id].items():
                    writer.writerow(
                        [
                            start,
                            end,
                            "Final",
                            ETHNICITY_BREAKDOWN,
                            icb,
                            icb_name,
                            label,
                            label,
                            measure_id,
                            names[measure_id],
                            _published(count),
                        ]
                    )
        for measure_id in order:
            writer.writerow(
                [
                    start,
                    end,
                    "Final",
                    "England",
                    "England",
                    "England",
                    "NONE",
                    "NONE",
                    measure_id,
                    names[measure_id],
                    str(round(england[measure_id])),
                ]
            )
        path = folder / f"mhsds_monthly_{year}-{month:02d}.csv"
        path.write_text(buf.getvalue(), encoding="utf-8")
        written.append(path)
    return written
