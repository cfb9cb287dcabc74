"""Fuzzing every parser and `knowdo check` (issue 13): property-based, with hypothesis.

From a real-shaped seed file of each format, hypothesis mutates bytes (flips, cuts, repeats, and
splices in what breaks parsers: deep brackets, long numbers, quotes, NUL bytes, byte-order marks,
invalid UTF-8, entities). The property: a file is checked (rows valid or rejected) or fails with one
FileRejected sentence, never anything else; and it never needs the memory ceiling or the stall
bound (a small file that does is a bug), nor crashes the parser process.

`make test` runs a short, derandomized pass (the "ci" profile: the same examples every run);
`make fuzz` runs the long one (HYPOTHESIS_PROFILE=fuzz, random, remembering failures in
.local/hypothesis). A failure found becomes a file in tests/fixtures/bad with its manifest entry.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from knowdo.checking import check_file
from knowdo.config import Limits
from knowdo.formats import FORMATS, FileRejected, ParseContext
from knowdo.isolation import run_isolated

REPO = Path(__file__).resolve().parents[2]
FIX = REPO / "tests" / "fixtures"
SAMPLE = REPO / "sample_feeds"
SEEDS = {
    "dhis2-json": FIX / "dhis2_dataValueSetJ.json",
    "dhis2-csv": FIX / "dhis2_csv" / "dataValueSet.csv",
    "iati-xml": FIX / "iati" / "activities-2.01-mental-health.xml",
    "360giving-json": FIX / "threesixtygiving" / "awefw001p00000zgyHZAAY.json",
    "360giving-csv": FIX / "threesixtygiving" / "grants-knowdo-test.csv",
    "who-gho-csv": FIX / "who_gho" / "MH_6.csv",
    "who-gho-json": REPO / "sample_feeds" / "who_gho" / "MH_6.json",
    "nhs-talking-therapies-csv": FIX / "nhs" / "measures_annual_2024-25.csv",
    "mhsds-csv": FIX / "nhs" / "mhsds_monthly_2025-06.csv",
    "knowdo-ministry-budget-csv": FIX / "templates" / "ministry-budget_good.csv",
    "knowdo-ngo-outcomes-csv": FIX / "templates" / "ngo-outcomes_good.csv",
    "knowdo-ngo-service-use-csv": FIX / "templates" / "ngo-service-use_good.csv",
    "knowdo-population-csv": FIX / "templates" / "population_good.csv",
    "knowdo-prevalence-csv": FIX / "templates" / "prevalence_good.csv",
    # issue 15: the sample registry is the template's good example
    "knowdo-implementation-registry-csv": SAMPLE / "implementation" / "implementation_registry.csv",
}
SEED_BYTES = 16 * 1024  # the first 16 KB of each seed: enough structure, quick to parse
LIMITS = Limits(max_memory_mb=256, parse_stall_s=20)
NEVER = (
    "KNOWDO_PARSE_MEMORY_MB",
    "KNOWDO_PARSE_STALL_S",
    "the parser crashed",
    "was killed",
    "without a result",
)

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("KNOWDO_FUZZ_EXAMPLES", "25")),
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("KNOWDO_FUZZ_EXAMPLES", "2000")),
    deadline=None,
    database=DirectoryBasedExampleDatabase(str(REPO / ".local" / "hypothesis")),
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")

_SPLICES = [
    b"[" * 5000,
    b'{"a":' * 200,
    b"9" * 2000,
    b'"',
    b"\\",
    b"\x00",
    b"\xef\xbb\xbf",
    b"\xff\xfe",
    b"\xc3\x28",
    b"\r\n",
    b"\n\n\n",
    b",,,,,,",
    b'"""',
    b"&lol;",
    b'<!DOCTYPE x [<!ENTITY a "b">]>',
    b"<a>" * 300,
    b"]}",
    b"1e99999",
    b"-",
    b"\xe2\x80\xa8",
    b"NaN",
    b"Infinity",
    b"null",
    b"\t",
    b"=cmd|' /C calc'!A0",
]


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 6))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["splice", "flip", "cut", "repeat", "truncate", "random"]))
        if kind == "splice":
            data[where:where] = draw(st.sampled_from(_SPLICES))
        elif kind == "flip" and data:
            at = min(where, len(data) - 1)
            data[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[where : where + draw(st.integers(1, 200))]
        elif kind == "repeat":
            piece = bytes(data[where : where + draw(st.integers(1, 100))])
            data[where:where] = piece * draw(st.integers(2, 50))
        elif kind == "truncate":
            del data[where:]
        else:
            data[where:where] = draw(st.binary(max_size=64))
    return bytes(data)


def _seed(fmt: str) -> bytes:
    return SEEDS[fmt].read_bytes()[:SEED_BYTES]


def _check(path: Path, fmt: str) -> str:
    """'report' or the FileRejected sentence; any other exception propagates (a fuzz failure)."""
    try:
        report = run_isolated(
            check_file,
            path,
            fmt,
            ParseContext(file_name=path.name, limits=LIMITS),
            20,
            limits=LIMITS,
        )
    except FileRejected as exc:
        reason = str(exc)
        assert reason and "\n" not in reason.strip(), reason
        assert not any(marker in reason for marker in NEVER), reason
        return reason
    assert report["rows_read"] >= report["rows_rejected"] >= 0
    return "report"


def test_every_format_has_a_seed():
    assert set(SEEDS) == set(FORMATS)


@pytest.mark.parametrize("fmt", sorted(SEEDS))
def test_fuzz_parser(fmt, tmp_path_factory):
    path = tmp_path_factory.mktemp("fuzz") / f"input.{fmt.rsplit('-', 1)[-1]}"

    @settings(settings.get_profile(PROFILE))
    @given(data=mutated(_seed(fmt)))
    def run(data):
        path.write_bytes(data)
        _check(path, fmt)

    run()


def test_fuzz_knowdo_check_command(tmp_path_factory):
    """The command itself (format detection included): exit 0, 1 or 2 and never a traceback."""
    from knowdo.cli import main

    path = tmp_path_factory.mktemp("fuzz-cli") / "input"
    formats = sorted(SEEDS)

    @settings(settings.get_profile(PROFILE))
    @given(fmt=st.sampled_from(formats), detect=st.booleans(), data=st.data())
    def run(fmt, detect, data):
        path.write_bytes(data.draw(mutated(_seed(fmt))))
        args = ["check", str(path)] + ([] if detect else ["--format", fmt])
        result = CliRunner().invoke(main, args, env={"KNOWDO_PARSE_MEMORY_MB": "256"})
        assert result.exit_code in (0, 1, 2), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(
            result.exception
        )
        assert "Traceback" not in result.output

    run()
