"""Deterministic sample feeds in the real formats (`knowdo synth --seed N --scale S --out DIR`).

Same seed and scale, same bytes. What is written, and the faults planted in it, is listed in
sample_feeds/README.md; `make up` ingests the bundled scale-1 set, benchmarks use larger scales.
"""

from __future__ import annotations

import random
from pathlib import Path

from knowdo.synth import arc, dhis2, funding, implementation, mhsds, nhs, templates

FAMILIES = (
    ("dhis2", dhis2.write),
    ("iati", funding.write_iati),
    ("360giving", funding.write_360giving),
    ("who_gho", funding.write_gho),
    ("nhs_talking_therapies", nhs.write),
    ("population", templates.write_population),
    ("prevalence", templates.write_prevalence),
    ("budgets", templates.write_budgets),
    ("ngo", templates.write_ngo),
    # appended, never inserted: a family's generator is seeded by its position
    ("mhsds", mhsds.write),
    ("arc", arc.write),
    ("who_gho_json", funding.write_gho_json),
    ("implementation", implementation.write),  # issue 15: the implementation registry
)


def write_sample_feeds(out_dir: Path, seed: int = 42, scale: float = 1.0) -> list[Path]:
    written: list[Path] = []
    for offset, (_name, write) in enumerate(FAMILIES):
        # one generator per family, so adding a family does not change the others' bytes
        written += write(out_dir, random.Random(seed * 1000 + offset), scale)
    return written
