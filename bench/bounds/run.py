#!/usr/bin/env python
"""Bounds benchmark (issue 13): what the parse bounds and the memory ceiling cost, and what
abusive files cost before and after, in one run.

    .venv/bin/python bench/bounds/run.py --rows 1000000

1. `knowdo ingest` of a deterministic DHIS2 CSV (the vectorised fast path) with the parse in a
   child under the memory ceiling (KNOWDO_PARSE_ISOLATION=on, the default) and in-process (off),
   interleaved; the ratio on/off is the ceiling's overhead.
2. `knowdo check` of the same CSV (the row path) on and off, likewise.
3. `knowdo check` of abusive files (deep JSON, a 5 MB number, a 10 MB CSV field), with the bounds
   (default settings) and with the JSON bounds lifted (so only the memory ceiling stands): wall
   time, peak RSS of the process tree, exit status and the first words of the reason. The "before"
   (no bound, no ceiling) is not run: it took 22 GB and 52-200 s until the kernel killed it
   (issue 13), which would take the machine from everyone else on it.
Scratch database `knowdo_bench` (never the warehouse). The last line is machine-readable (one
line, shown here on two):
    ceiling_overhead_ingest=<ratio> ceiling_overhead_check=<ratio>
    abusive_max_s=<s> abusive_max_rss_mb=<n>
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "ingest"), str(HERE.parent)]
import run as ingest_bench  # bench/ingest/run.py: the scratch database, files and measuring
from scratch import BenchError, init_scratch_db


def abusive_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name: (file, format), made at run time (nothing large is committed)."""
    files = {
        "deep-json-400kb": ("deep.json", "dhis2-json", b"[" * 400_000),
        "number-5mb": (
            "number.json",
            "dhis2-json",
            b'{"dataValues": [{"value": ' + b"9" * 5_000_000 + b"}]}",
        ),
        "csv-field-10mb": (
            "field.csv",
            "dhis2-csv",
            b"dataelement,period,orgunit,catoptcombo,attroptcombo,value,comment\n"
            b"a,202401,b,c,d,1," + b"x" * 10_000_000 + b"\n",
        ),
    }
    made = {}
    for name, (file_name, fmt, data) in files.items():
        path = folder / file_name
        path.write_bytes(data)
        made[name] = (path, fmt)
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", default="knowdo_bench")
    parser.add_argument("--work-dir", type=Path, default=ingest_bench.REPO / ".local/bench/bounds")
    args = parser.parse_args(argv)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    knowdo = ingest_bench.knowdo_cmd()
    times: dict[str, list[float]] = {
        k: [] for k in ("ingest_on", "ingest_off", "check_on", "check_off")
    }
    rss: dict[str, list[float]] = {k: [] for k in times}
    try:
        init_scratch_db(args.db)
        source, _raw, registry = ingest_bench.feed_files(args.work_dir, args.rows)
        landing = args.work_dir / "landing"
        env = ingest_bench.knowdo_env(args.db, registry, landing)
        with ingest_bench.connect(args.db) as conn:
            conn.execute(
                f"create table if not exists {ingest_bench.COPY_TABLE}"
                " (like raw.dhis2_data_values including all)"
            )
            for attempt in range(args.repeats):
                for mode in ("on", "off") if attempt % 2 == 0 else ("off", "on"):
                    ingest_bench.empty_tables(conn, landing)
                    done = ingest_bench.measure_ingest(
                        args.rows, source, {**env, "KNOWDO_PARSE_ISOLATION": mode}
                    )
                    times[f"ingest_{mode}"].append(done.seconds)
                    rss[f"ingest_{mode}"].append(done.rss_mb)
                    done = ingest_bench.run_measured(
                        [*knowdo, "check", str(source), "--format", "dhis2-csv", "--json"],
                        {**env, "KNOWDO_PARSE_ISOLATION": mode},
                    )
                    if done.returncode not in (0, 1):
                        raise BenchError(f"knowdo check failed: {done.stderr[-300:]}")
                    times[f"check_{mode}"].append(done.seconds)
                    rss[f"check_{mode}"].append(done.rss_mb)
                print(
                    f"run {attempt + 1}/{args.repeats}: "
                    + ", ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()),
                    file=sys.stderr,
                )
            ingest_bench.empty_tables(conn, landing)
    except BenchError as exc:
        print(f"bench/bounds: {exc}", file=sys.stderr)
        return 2
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.rows:,} DHIS2 CSV rows, medians of {args.repeats}:")
    print("  path                 ceiling on   ceiling off   on/off   peak RSS on / off")
    for path in ("ingest", "check"):
        print(
            f"  {path:<20} {med[path + '_on']:9.2f} s {med[path + '_off']:11.2f} s"
            f" {med[path + '_on'] / med[path + '_off']:8.3f}   "
            f"{max(rss[path + '_on']):.0f} / {max(rss[path + '_off']):.0f} MB"
        )

    print("abusive files (knowdo check):")
    worst_s = worst_mb = 0.0
    with tempfile.TemporaryDirectory(dir=args.work_dir) as scratch:
        lifted = {
            "KNOWDO_MAX_JSON_DEPTH": "100000000",
            "KNOWDO_MAX_JSON_NUMBER_CHARS": "100000000",
            "KNOWDO_MAX_FIELD_CHARS": "100000000",
        }
        for name, (path, fmt) in abusive_files(Path(scratch)).items():
            for label, extra in (("bounds", {}), ("ceiling only", lifted)):
                done = ingest_bench.run_measured(
                    [*knowdo, "check", str(path), "--format", fmt, "--json"], {**env, **extra}
                )
                said = (done.stderr.strip() or done.stdout.strip()).replace("\n", " ")
                if done.stdout.strip().startswith("{"):
                    report = json.loads(done.stdout)
                    said = "; ".join(e["reason"] for e in report["errors"][:1]) or "accepted"
                worst_s, worst_mb = max(worst_s, done.seconds), max(worst_mb, done.rss_mb)
                print(
                    f"  {name:<16} {label:<13} {done.seconds:6.2f} s {done.rss_mb:7.0f} MB "
                    f"exit {done.returncode}: {said[:150]}"
                )
    print(
        f"ceiling_overhead_ingest={med['ingest_on'] / med['ingest_off']:.3f} "
        f"ceiling_overhead_check={med['check_on'] / med['check_off']:.3f} "
        f"abusive_max_s={worst_s:.1f} abusive_max_rss_mb={worst_mb:.0f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
