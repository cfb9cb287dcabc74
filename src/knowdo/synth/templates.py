"""KnowDo CSV templates (feeds/contracts): population denominators, need/prevalence estimates,
ministry mental-health budgets, and NGO service use and PROMs outcomes."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from knowdo.synth.geography import (
    AGE_BANDS,
    AGE_SHARES,
    ARC_AREAS,
    BEING_COUNTRIES,
    ETHNIC_GROUPS,
    ETHNIC_GROUPS_DETAILED,
    IMD_DECILES,
    SEXES,
    USD_RATE,
)

YEARS = (2021, 2022, 2023, 2024, 2025)
ADULT_BANDS = ("15-24", "25-49", "50+")
SOURCE = "KnowDo synthetic sample (shaped like UN WPP / ONS estimates)"
# England's ICBs also by ONS 2021 detailed ethnic group (population contract 1.1.0), a third set
# beside the high-level and IMD sets, so PCREF rates can be compared with White British. The
# warehouse keeps that set apart (int_population__cells: breakdown `ethnicity_detailed`); read as a
# high-level set it would count every resident twice.
ICB_DETAILED_ETHNICITY = True


def _write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _growth(year: int) -> float:
    return 1.02 ** (year - 2024)


def write_population(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    header = [
        "geography_code",
        "year",
        "sex",
        "age_band",
        "ethnicity",
        "imd_decile",
        "population",
        "source",
    ]
    written = []
    for country in BEING_COUNTRIES:
        rows = []
        places = [(r.code, r.population_k) for r in country.regions] + [
            (country.iso3, country.national_population_k)
        ]
        for code, pop_k in places:
            for year in YEARS:
                for sex in SEXES:
                    for band in AGE_BANDS:
                        n = round(pop_k * 1000 * scale * AGE_SHARES[band] / 2 * _growth(year))
                        rows.append([code, year, sex, band, "", "", n, SOURCE])
        written.append(
            _write_csv(
                out_dir / "population" / f"{country.iso3.lower()}_population.csv", header, rows
            )
        )
    rows = []
    adult_share = {b: AGE_SHARES[b] / sum(AGE_SHARES[a] for a in ADULT_BANDS) for b in ADULT_BANDS}
    for _arc, _name, icb, _icb_name, pop_k in ARC_AREAS:
        adults = pop_k * 1000 * 0.8 * scale
        for year in YEARS:
            for sex in SEXES:
                for band in ADULT_BANDS:
                    base = adults * adult_share[band] / 2 * (1 + 0.005 * (year - 2024))
                    for _label, code, share, _access in ETHNIC_GROUPS:
                        rows.append([icb, year, sex, band, code, "", round(base * share), SOURCE])
                        if ICB_DETAILED_ETHNICITY:
                            rows += [
                                [icb, year, sex, band, detailed, "", n, SOURCE]
                                for detailed, n in detailed_ethnic_split(code, round(base * share))
                            ]
                    for _label, code, share, _access in IMD_DECILES:
                        rows.append([icb, year, sex, band, "", code, round(base * share), SOURCE])
    written.append(_write_csv(out_dir / "population" / "england_icb_population.csv", header, rows))
    return written


def detailed_ethnic_split(group: str, people: int) -> list[tuple[str, int]]:
    """The people of an ONS 2021 high-level ethnic group split over its detailed groups in
    England's census proportions, in whole persons that add up exactly to `people` (largest
    remainder), so the detailed set and the high-level set describe the same residents."""
    shares = [(code, pct) for code, parent, pct in ETHNIC_GROUPS_DETAILED if parent == group]
    total = sum(pct for _code, pct in shares)
    exact = [(code, people * pct / total) for code, pct in shares]
    counts = {code: int(value) for code, value in exact}
    by_remainder = sorted(exact, key=lambda item: item[1] - int(item[1]), reverse=True)
    for code, _value in by_remainder[: people - sum(counts.values())]:
        counts[code] += 1
    # a group with no residents is left out (the contract's population minimum is 1)
    return [(code, counts[code]) for code, _pct in shares if counts[code] > 0]


CONDITIONS = {"depression": (4.0, 1.35), "anxiety": (4.2, 1.5)}  # % all ages, female:male ratio
AGE_PREVALENCE = {"0-14": 0.35, "15-24": 1.2, "25-49": 1.3, "50+": 1.15}


def write_prevalence(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    header = [
        "geography_code",
        "year",
        "condition",
        "sex",
        "age_band",
        "prevalence_percent",
        "lower_percent",
        "upper_percent",
        "source",
    ]
    rows = []

    def row(code, year, condition, sex, band, pct):
        width = pct * rng.uniform(0.12, 0.2)
        rows.append(
            [
                code,
                year,
                condition,
                sex,
                band,
                f"{pct:.2f}",
                f"{pct - width:.2f}",
                f"{pct + width:.2f}",
                "KnowDo synthetic sample (GBD-style estimates)",
            ]
        )

    for country in BEING_COUNTRIES:
        level = rng.uniform(0.85, 1.2)
        for year in YEARS:
            for condition, (base, ratio) in CONDITIONS.items():
                pct = base * level * (1 + 0.005 * (year - 2021))
                row(country.iso3, year, condition, "all", "all", pct)
                row(country.iso3, year, condition, "F", "all", pct * 2 * ratio / (1 + ratio))
                row(country.iso3, year, condition, "M", "all", pct * 2 / (1 + ratio))
                for band in AGE_BANDS:
                    row(country.iso3, year, condition, "all", band, pct * AGE_PREVALENCE[band])
    for _arc, _name, icb, _icb_name, _pop in ARC_AREAS:
        for year in YEARS:
            row(icb, year, "any_common_mental_disorder", "all", "all", rng.uniform(15, 21))
    return [_write_csv(out_dir / "prevalence" / "prevalence_estimates.csv", header, rows)]


BUDGET_LINES = (  # (line, area of need, share of the mental-health budget)
    ("MH-01 Psychiatric hospitals", "severe_mental_illness", 0.55),
    ("MH-02 Community mental health services", "systems_strengthening", 0.20),
    ("MH-03 Child and adolescent mental health", "children_young_people", 0.08),
    ("MH-04 Psychological therapies in primary care", "talking_therapies", 0.07),
    ("MH-05 Suicide prevention", "suicide_self_harm", 0.04),
    ("MH-06 Mental health authority (administration)", "general", 0.06),
)


def write_budgets(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    """Mental-health budget lines per ministry: about 0.5-4% of health spending, far below the 10%
    floor the Being Initiative recommends, slowly rising; spent a little under allocated."""
    header = [
        "country_code",
        "fiscal_year",
        "budget_line",
        "area_of_need",
        "amount",
        "currency",
        "amount_type",
        "source_document",
    ]
    written = []
    for country in BEING_COUNTRIES:
        rows = []
        per_capita_usd = rng.uniform(0.05, 2.5)
        for year in YEARS:
            total_usd = (
                per_capita_usd * country.national_population_k * 1000 * (1 + 0.08 * (year - 2021))
            )
            for line, area, share in BUDGET_LINES:
                allocated = total_usd * share * USD_RATE[country.currency]
                spent = allocated * rng.uniform(0.82, 0.98)
                doc = f"{year} health budget estimates, {country.ministry} (sample)"
                rows.append(
                    [
                        country.iso3,
                        year,
                        line,
                        area,
                        f"{allocated:,.0f}",
                        country.currency,
                        "allocated",
                        doc,
                    ]
                )
                if year < YEARS[-1]:  # the last year's outturn is not known yet
                    rows.append(
                        [
                            country.iso3,
                            year,
                            line,
                            area,
                            f"{spent:,.0f}",
                            country.currency,
                            "spent",
                            doc,
                        ]
                    )
        written.append(
            _write_csv(out_dir / "budgets" / f"{country.iso3.lower()}_mh_budget.csv", header, rows)
        )
    return written


NGOS = (  # (org id, name, country, regions, intervention)
    (
        "KD-NGO-0042",
        "MindBridge Ghana (sample)",
        "GHA",
        ("GH-AA", "GH-NP"),
        "problem_management_plus",
    ),
    (
        "KD-NGO-0077",
        "Friendship Bench Pakistan (sample)",
        "PAK",
        ("PK-PB", "PK-SD"),
        "friendship_bench",
    ),
)


def write_ngo(out_dir: Path, rng: random.Random, scale: float) -> list[Path]:
    use_header = [
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
    out_header = [
        "organisation_id",
        "country_code",
        "period",
        "intervention_code",
        "instrument",
        "stratifier",
        "group_code",
        "people_assessed",
        "mean_score_before",
        "mean_score_after",
        "people_reliably_improved",
        "people_recovered",
    ]
    written = []
    for org, _name, country, regions, intervention in NGOS:
        use_rows, out_rows = [], []
        for year in (2023, 2024, 2025):
            for month in range(1, 13):
                period = f"{year}-{month:02d}"
                total_assessed = 0
                for region in regions:
                    reached = max(
                        5, round(rng.uniform(150, 400) * scale * (1 + 0.1 * (year - 2023)))
                    )
                    female = round(reached * rng.uniform(0.58, 0.68))
                    groups = [
                        ("all", "all", reached),
                        ("sex", "F", female),
                        ("sex", "M", reached - female),
                    ]
                    shares = {"0-14": 0.03, "15-24": 0.27, "25-49": 0.52, "50+": 0.18}
                    counts = {b: round(reached * s) for b, s in shares.items()}
                    counts["25-49"] += reached - sum(counts.values())
                    groups += [("age_band", b, n) for b, n in counts.items()]
                    for stratifier, group, n in groups:
                        use_rows.append(
                            [
                                org,
                                country,
                                region,
                                period,
                                intervention,
                                stratifier,
                                group,
                                n,
                                round(n * rng.uniform(3.5, 5.5)),
                            ]
                        )
                    total_assessed += round(reached * 0.6)
                for instrument, before, maxscore in (("PHQ-9", 15.5, 27), ("GAD-7", 12.5, 21)):
                    female = round(total_assessed * 0.62)
                    for stratifier, group, n, gap in (
                        ("all", "all", total_assessed, 0.0),
                        ("sex", "F", female, 0.3),
                        ("sex", "M", total_assessed - female, -0.4),
                    ):
                        b = min(maxscore, before + gap + rng.uniform(-0.5, 0.5))
                        a = b * rng.uniform(0.5, 0.62)
                        improved = round(n * rng.uniform(0.52, 0.62))
                        recovered = round(improved * rng.uniform(0.7, 0.85))
                        out_rows.append(
                            [
                                org,
                                country,
                                period,
                                intervention,
                                instrument,
                                stratifier,
                                group,
                                n,
                                f"{b:.1f}",
                                f"{a:.1f}",
                                improved,
                                recovered,
                            ]
                        )
        stem = org.lower().replace("-", "_")
        written.append(
            _write_csv(out_dir / "ngo" / f"{stem}_service_use.csv", use_header, use_rows)
        )
        written.append(_write_csv(out_dir / "ngo" / f"{stem}_outcomes.csv", out_header, out_rows))
    return written
