#!/usr/bin/env python
"""Ingest benchmark: `knowdo ingest` against `psql \\copy` and pandas `to_sql`, in one run.

    .venv/bin/python bench/ingest/run.py --rows 1000000 10000000
    .venv/bin/python bench/ingest/run.py --rows 200000 --profile     # where the ingest time goes

For each size it writes a deterministic DHIS2 dataValueSets CSV (feedgen.py) and measures, on the
project's cluster in the scratch database `knowdo_bench` (never the warehouse):
  - `knowdo ingest FILE --feed ID` as a subprocess (the real landing, parse, COPY and duplicate
    check), with a temporary feed registry (KNOWDO_FEEDS_FILE) and landing zone;
  - `psql \\copy` of the same rows, already in the raw table's shape, into a table built
    `like raw.dhis2_data_values including all` (the physical limit: no parsing, no checks);
  - pandas `read_csv` + `to_sql(method=None, chunksize=10000)` of the same DHIS2 CSV.
Wall time and peak RSS are per process (os.wait4). Tables are emptied between runs. Runs of the
three methods are interleaved so the machine's noise hits them alike; read the ratios.
The last line is machine-readable (the largest size):
    ingest_vs_copy=<ratio> ingest_vs_pandas=<ratio> peak_rss_mb=<n>
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]
import feedgen  # sibling modules of this script, not an installed package
from scratch import BenchError, init_scratch_db, pg_address, role_url

COPY_TABLE = "raw.bench_psql_copy"
FORMAT = "dhis2-csv"  # --format: the file `knowdo ingest` reads (the \copy file is the same)
PANDAS_SCHEMA, PANDAS_TABLE = "raw", "bench_pandas"
# What one ingest leaves behind in the scratch database; emptied before every run.
INGEST_TABLES = (
    "raw.dhis2_data_values",
    "ops.rejected_rows",
    "ops.load_batches",
    "ops.landed_files",
)


@dataclass(frozen=True)
class Measured:
    seconds: float
    rss_mb: float
    cpu_s: float  # user + system CPU of the process itself (the server's work is not in it)
    returncode: int
    stdout: str
    stderr: str


@dataclass
class SizeResult:
    rows: int
    ingest_s: list[float] = field(default_factory=list)
    ingest_rss_mb: list[float] = field(default_factory=list)
    ingest_cpu_s: list[float] = field(default_factory=list)
    psql_s: list[float] = field(default_factory=list)
    psql_rss_mb: list[float] = field(default_factory=list)
    psql_cpu_s: list[float] = field(default_factory=list)
    pandas_s: list[float] = field(default_factory=list)
    pandas_rss_mb: list[float] = field(default_factory=list)
    pandas_cpu_s: list[float] = field(default_factory=list)
    pandas_extrapolated_from: int | None = None  # rows of the measured size it was scaled from
    # `knowdo ingest` with KNOWDO_COPY_FORMAT=csv (--with-csv-route): the former COPY route
    ingest_csv_s: list[float] = field(default_factory=list)
    ingest_csv_rss_mb: list[float] = field(default_factory=list)
    ingest_csv_cpu_s: list[float] = field(default_factory=list)
    # `knowdo check` of the same file against the same feed (--with-check; issue 13)
    check_s: list[float] = field(default_factory=list)
    check_rss_mb: list[float] = field(default_factory=list)
    check_cpu_s: list[float] = field(default_factory=list)

    def rate(self, seconds: list[float]) -> float:
        return self.rows / statistics.median(seconds)

    @property
    def ingest_rate(self) -> float:
        return self.rate(self.ingest_s)

    @property
    def psql_rate(self) -> float:
        return self.rate(self.psql_s)

    @property
    def pandas_rate(self) -> float | None:
        return self.rate(self.pandas_s) if self.pandas_s else None


# --- measuring one process ------------------------------------------------------------------------
GNU_TIME = "/usr/bin/time"


def run_measured(cmd: list[str], env: dict[str, str]) -> Measured:
    """Run `cmd` to completion; its wall time, its own peak RSS and CPU time.

    The RSS comes from GNU time (a small process that forks `cmd`): wait4 on a child forked from
    this Python would report this interpreter's RSS as a floor (a fork starts with the parent's
    pages), ~35 MB that `psql` never uses. Without GNU time, wait4 is the fallback."""
    with tempfile.TemporaryDirectory() as scratch:
        usage_file = Path(scratch) / "usage"
        out_file, err_file = Path(scratch) / "out", Path(scratch) / "err"
        timed = (
            [GNU_TIME, "-q", "-f", "%M %U %S", "-o", str(usage_file), *cmd]
            if Path(GNU_TIME).exists()
            else cmd
        )
        with out_file.open("w") as out, err_file.open("w") as err:
            start = time.perf_counter()
            proc = subprocess.Popen(timed, env=env, stdout=out, stderr=err, text=True)
            _, status, usage = os.wait4(proc.pid, 0)
            seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
        peak_kb, cpu_s = usage.ru_maxrss, usage.ru_utime + usage.ru_stime
        if timed is not cmd and usage_file.exists():
            # the last line is "<peak KB> <user s> <system s>" (GNU time may write a line before it)
            fields = usage_file.read_text().strip().splitlines()[-1].split()
            peak_kb, cpu_s = int(fields[0]), float(fields[1]) + float(fields[2])
        return Measured(
            seconds,
            peak_kb / 1024,
            cpu_s,
            proc.returncode,
            out_file.read_text(),
            err_file.read_text(),
        )


def median(values: list[float]) -> float:
    return statistics.median(values)


def last_line(result: SizeResult) -> str:
    """The machine-readable summary of one size (the script prints it for the largest)."""
    pandas = result.pandas_rate
    vs_pandas = f"{result.ingest_rate / pandas:.1f}" if pandas else "nan"
    # the format issue 3 specifies: ingest_vs_copy=<ratio> ingest_vs_pandas=<ratio> peak_rss_mb=<n>
    return (
        f"ingest_vs_copy={result.ingest_rate / result.psql_rate:.3f} ingest_vs_pandas={vs_pandas} "
        f"peak_rss_mb={max(result.ingest_rss_mb):.0f}"
    )


# --- the scratch database -------------------------------------------------------------------------
def connect(db: str) -> psycopg.Connection:
    try:
        conn = psycopg.connect(role_url(db, "loader"), autocommit=True)
    except psycopg.OperationalError as exc:
        raise BenchError(
            f"cannot reach PostgreSQL ({' '.join(str(exc).split())[:200]}); "
            "start it with `bash infra/local/stack.sh start-pg`"
        ) from None
    if conn.execute("select current_database()").fetchone()[0] != db:
        raise BenchError(f"connected to the wrong database (expected {db})")
    return conn


def empty_tables(conn: psycopg.Connection, landing_dir: Path) -> None:
    conn.execute(f"truncate {', '.join(INGEST_TABLES)} cascade")
    conn.execute(f"truncate {COPY_TABLE}")
    conn.execute(f"drop table if exists {PANDAS_SCHEMA}.{PANDAS_TABLE}")
    shutil.rmtree(landing_dir, ignore_errors=True)
    landing_dir.mkdir(parents=True)


# --- the three methods ----------------------------------------------------------------------------
def knowdo_env(db: str, registry: Path, landing: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KNOWDO_WAREHOUSE_DB=db,
        KNOWDO_WAREHOUSE_URL=role_url(db, "loader"),
        KNOWDO_FEEDS_FILE=str(registry),
        KNOWDO_LANDING_DIR=str(landing),
    )
    return env


def knowdo_cmd() -> list[str]:
    executable = REPO / ".venv/bin/knowdo"
    return [str(executable if executable.exists() else shutil.which("knowdo") or "knowdo")]


def measure_ingest(rows: int, source: Path, env: dict[str, str]) -> Measured:
    done = run_measured(
        [*knowdo_cmd(), "ingest", str(source), "--feed", feedgen.FEED_ID, "--json"], env
    )
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(f"knowdo ingest failed: {' '.join(done.stderr.split())[-300:]}") from None
    if outcome["status"] != "loaded" or outcome["rows_loaded"] != rows or outcome["rows_rejected"]:
        raise BenchError(f"knowdo ingest did not load every row: {outcome}")
    return done


def measure_check(rows: int, source: Path, env: dict[str, str]) -> Measured:
    """`knowdo check` of the same file against the same feed's mapping (what a submitter runs)."""
    done = run_measured(
        [*knowdo_cmd(), "check", str(source), "--format", FORMAT, "--feed", feedgen.FEED_ID]
        + ["--json"],
        env,
    )
    try:
        outcome = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise BenchError(f"knowdo check failed: {' '.join(done.stderr.split())[-300:]}") from None
    if outcome["rows_valid"] != rows or outcome["rows_rejected"]:
        raise BenchError(f"knowdo check did not find every row valid: {outcome}")
    return done


def psql_cmd() -> str:
    for candidate in (shutil.which("psql"), "/usr/lib/postgresql/15/bin/psql"):
        if candidate and Path(candidate).exists():
            return candidate
    raise BenchError("psql not found (install the postgresql-client package)")


def measure_psql_copy(rows: int, raw_copy: Path, db: str) -> Measured:
    path = str(raw_copy).replace("'", "''")
    columns = ", ".join(feedgen.RAW_COLUMNS)
    command = f"\\copy {COPY_TABLE} ({columns}) from '{path}' with (format csv, header true)"
    done = run_measured(
        [psql_cmd(), "-X", "-v", "ON_ERROR_STOP=1", "-d", role_url(db, "loader"), "-c", command],
        dict(os.environ),
    )
    if done.returncode != 0 or done.stdout.strip() != f"COPY {rows}":
        raise BenchError(
            f"psql \\copy failed: {' '.join((done.stderr or done.stdout).split())[:300]}"
        )
    return done


def measure_pandas(rows: int, source: Path, db: str) -> Measured:
    done = run_measured(
        [
            sys.executable,
            str(HERE / "pandas_load.py"),
            str(source),
            role_url(db, "loader", "postgresql+psycopg2"),
            PANDAS_SCHEMA,
            PANDAS_TABLE,
        ],
        dict(os.environ),
    )
    if done.returncode != 0 or done.stdout.strip() != str(rows):
        raise BenchError(f"pandas to_sql failed: {' '.join(done.stderr.split())[-300:]}")
    return done


# --- files ----------------------------------------------------------------------------------------
def feed_files(work_dir: Path, rows: int) -> tuple[Path, Path, Path]:
    """The DHIS2 CSV, its raw-shaped copy and the registry for `rows`, written once and reused."""
    source = work_dir / f"dhis2_{rows}.{feedgen.EXTENSIONS[FORMAT]}"
    raw_copy = work_dir / f"dhis2_{rows}.raw.csv"
    registry = work_dir / f"registry_{rows}.yml"
    # written last: a half-written pair is redone (per format: the raw copy is the same rows)
    complete = work_dir / f"dhis2_{rows}.{feedgen.EXTENSIONS[FORMAT]}.complete"
    if not complete.exists():
        start = time.perf_counter()
        feedgen.write_feed(rows, source, raw_copy, fmt=FORMAT)
        feedgen.write_registry(registry, rows, fmt=FORMAT)
        complete.touch()
        size_mb = source.stat().st_size / 2**20
        print(
            f"wrote {source.name} ({rows:,} rows, {size_mb:,.0f} MB) and its raw-shaped copy "
            f"in {time.perf_counter() - start:.0f} s",
            file=sys.stderr,
        )
    return source, raw_copy, registry


def remove_feed_files(work_dir: Path, rows: int) -> None:
    for name in (
        f"dhis2_{rows}.complete",
        f"dhis2_{rows}.csv.complete",
        f"dhis2_{rows}.json.complete",
        f"dhis2_{rows}.csv",
        f"dhis2_{rows}.json",
        f"dhis2_{rows}.raw.csv",
        f"registry_{rows}.yml",
    ):
        (work_dir / name).unlink(missing_ok=True)


# --- the benchmark --------------------------------------------------------------------------------
def bench_size(
    conn,
    rows: int,
    repeats: int,
    pandas_on: bool,
    work_dir: Path,
    db: str,
    csv_route: bool = False,
    with_check: bool = False,
) -> SizeResult:
    source, raw_copy, registry = feed_files(work_dir, rows)
    landing = work_dir / "landing"
    env = knowdo_env(db, registry, landing)
    result = SizeResult(rows)
    for attempt in range(1, repeats + 1):
        empty_tables(conn, landing)
        done = measure_ingest(rows, source, env)
        result.ingest_s.append(done.seconds)
        result.ingest_rss_mb.append(done.rss_mb)
        result.ingest_cpu_s.append(done.cpu_s)
        if csv_route:
            empty_tables(conn, landing)
            done = measure_ingest(rows, source, {**env, "KNOWDO_COPY_FORMAT": "csv"})
            result.ingest_csv_s.append(done.seconds)
            result.ingest_csv_rss_mb.append(done.rss_mb)
            result.ingest_csv_cpu_s.append(done.cpu_s)
        empty_tables(conn, landing)
        done = measure_psql_copy(rows, raw_copy, db)
        result.psql_s.append(done.seconds)
        result.psql_rss_mb.append(done.rss_mb)
        result.psql_cpu_s.append(done.cpu_s)
        if with_check:
            done = measure_check(rows, source, env)
            result.check_s.append(done.seconds)
            result.check_rss_mb.append(done.rss_mb)
            result.check_cpu_s.append(done.cpu_s)
        if pandas_on and attempt == 1:  # ~30x slower than the others: once is enough for a ratio
            empty_tables(conn, landing)
            done = measure_pandas(rows, source, db)
            result.pandas_s.append(done.seconds)
            result.pandas_rss_mb.append(done.rss_mb)
            result.pandas_cpu_s.append(done.cpu_s)
        print(
            f"{rows:,} rows, run {attempt}/{repeats}: ingest {result.ingest_s[-1]:.1f} s, "
            + (f"ingest (csv route) {result.ingest_csv_s[-1]:.1f} s, " if csv_route else "")
            + f"psql \\copy {result.psql_s[-1]:.1f} s"
            + (f", check {result.check_s[-1]:.1f} s" if with_check else "")
            + (f", pandas {result.pandas_s[-1]:.1f} s" if pandas_on and attempt == 1 else ""),
            file=sys.stderr,
        )
    empty_tables(conn, landing)
    return result


def extrapolate_pandas(result: SizeResult, measured: SizeResult) -> None:
    """pandas at a size not run: the rows/s of the largest measured size (to_sql is linear in rows;
    its RSS is not scaled: it holds the whole frame, so it grows with the file)."""
    seconds = result.rows / measured.pandas_rate
    result.pandas_s = [seconds]
    result.pandas_extrapolated_from = measured.rows


def print_table(results: list[SizeResult]) -> None:
    versus = "vs psql \\copy"
    header = (
        f"{'rows':>12}  {'method':<22} {'runs':>4} {'median s':>9} {'rows/s':>11} "
        f"{'peak RSS MB':>11} {'client CPU s':>12} {versus:>13}"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        lines = [
            ("knowdo ingest", r.ingest_s, r.ingest_rss_mb, r.ingest_cpu_s),
            ("psql \\copy", r.psql_s, r.psql_rss_mb, r.psql_cpu_s),
        ]
        if r.ingest_csv_s:
            lines.insert(
                1, ("knowdo ingest (csv)", r.ingest_csv_s, r.ingest_csv_rss_mb, r.ingest_csv_cpu_s)
            )
        if r.check_s:
            lines.append(("knowdo check", r.check_s, r.check_rss_mb, r.check_cpu_s))
        if r.pandas_s:
            label = (
                "pandas to_sql" if r.pandas_extrapolated_from is None else "pandas (extrapolated)"
            )
            lines.append((label, r.pandas_s, r.pandas_rss_mb, r.pandas_cpu_s))
        for label, seconds, rss, cpu in lines:
            rate = r.rate(seconds)
            rss_text = f"{max(rss):,.0f}" if rss else "n/a"
            cpu_text = f"{median(cpu):,.1f}" if cpu else "n/a"
            runs = len(seconds) if not label.endswith("(extrapolated)") else 0
            print(
                f"{r.rows:>12,}  {label:<22} {runs:>4} {median(seconds):>9.1f} {rate:>11,.0f} "
                f"{rss_text:>11} {cpu_text:>12} {rate / r.psql_rate:>13.3f}"
            )
        if r.check_s:
            print(
                f"{'':>12}  knowdo check / knowdo ingest time: "
                f"{median(r.check_s) / median(r.ingest_s):.2f}"
            )
        if r.pandas_extrapolated_from:
            print(
                f"{'':>12}  pandas at {r.rows:,} rows NOT measured: extrapolated linearly from "
                f"its {r.pandas_extrapolated_from:,}-row run"
            )
    print()


def profile_ingest(rows: int, work_dir: Path, db: str, conn, top: int) -> None:
    """One ingest under cProfile; the functions that take the time, by cumulative and own time."""
    import pstats

    source, _, registry = feed_files(work_dir, rows)
    landing = work_dir / "landing"
    empty_tables(conn, landing)
    output = work_dir / f"ingest_{rows}.prof"
    done = run_measured(
        [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            str(output),
            *knowdo_cmd(),
            "ingest",
            str(source),
            "--feed",
            feedgen.FEED_ID,
            "--json",
        ],
        knowdo_env(db, registry, landing),
    )
    empty_tables(conn, landing)
    if not output.exists():
        raise BenchError(f"profiling failed: {' '.join(done.stderr.split())[-300:]}")
    print(
        f"cProfile of `knowdo ingest` on {rows:,} rows: {done.seconds:.1f} s wall under the "
        f"profiler, peak RSS {done.rss_mb:,.0f} MB; profile saved to {output}"
    )
    stats = pstats.Stats(str(output))
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def machine() -> str:
    memory_kb = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal:")
    )
    return (
        f"{os.cpu_count()} cores, {memory_kb / 2**20:.1f} GiB RAM, Python {sys.version.split()[0]}"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    local = Path(os.environ.get("KNOWDO_LOCAL_DIR") or REPO / ".local")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows",
        type=int,
        nargs="+",
        default=[1_000_000],
        help="feed sizes in rows (default 1000000)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="runs per size up to --repeat-max-rows; medians are reported (default 3)",
    )
    parser.add_argument(
        "--repeat-max-rows",
        type=int,
        default=1_000_000,
        help="larger sizes run once (default 1000000)",
    )
    parser.add_argument(
        "--pandas-max-rows",
        type=int,
        default=1_000_000,
        help="larger sizes extrapolate pandas from the largest size run (default "
        "1000000; pandas needs ~90 s and ~1 GB per million rows)",
    )
    parser.add_argument("--no-pandas", action="store_true", help="skip the pandas baseline")
    parser.add_argument(
        "--db", default="knowdo_bench", help="scratch database (default knowdo_bench)"
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=local / "bench" / "ingest",
        help="where the generated feeds go (default .local/bench/ingest)",
    )
    parser.add_argument(
        "--keep-files", action="store_true", help="keep the generated feeds for the next run"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead of benchmarking, profile one ingest of the smallest size",
    )
    parser.add_argument(
        "--with-csv-route",
        action="store_true",
        help="also time `knowdo ingest` with KNOWDO_COPY_FORMAT=csv (the former"
        " COPY route), interleaved with the others",
    )
    parser.add_argument(
        "--format",
        choices=sorted(feedgen.EXTENSIONS),
        default="dhis2-csv",
        help="the file `knowdo ingest` reads (default dhis2-csv); pandas runs for dhis2-csv only",
    )
    parser.add_argument(
        "--with-check",
        action="store_true",
        help="also time `knowdo check --feed` on the same file, interleaved with the others",
    )
    parser.add_argument("--top", type=int, default=25, help="functions listed by --profile")
    args = parser.parse_args(argv)
    if args.db in ("warehouse", os.environ.get("KNOWDO_WAREHOUSE_DB", "warehouse")):
        parser.error(
            f"--db {args.db} is the warehouse: the benchmark empties tables of its database"
        )
    if min(args.rows) < 1 or args.repeats < 1:
        parser.error("--rows and --repeats must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    global FORMAT
    args = parse_args(argv)
    FORMAT = args.format
    if FORMAT != "dhis2-csv":  # pandas' baseline reads the CSV (pandas_load.py)
        args.no_pandas = True
    sizes = sorted(set(args.rows))
    args.work_dir.mkdir(parents=True, exist_ok=True)
    try:
        init_scratch_db(args.db)
        with connect(args.db) as conn:
            conn.execute(f"drop table if exists {COPY_TABLE}")
            conn.execute(f"create table {COPY_TABLE} (like raw.dhis2_data_values including all)")
            try:
                if args.profile:
                    profile_ingest(sizes[0], args.work_dir, args.db, conn, args.top)
                    return 0
                results: list[SizeResult] = []
                for rows in sizes:
                    repeats = args.repeats if rows <= args.repeat_max_rows else 1
                    pandas_on = not args.no_pandas and rows <= args.pandas_max_rows
                    results.append(
                        bench_size(
                            conn,
                            rows,
                            repeats,
                            pandas_on,
                            args.work_dir,
                            args.db,
                            args.with_csv_route,
                            args.with_check,
                        )
                    )
                    if not args.keep_files:
                        remove_feed_files(args.work_dir, rows)
                measured = [r for r in results if r.pandas_s]
                for r in results:
                    if not r.pandas_s and measured and not args.no_pandas:
                        extrapolate_pandas(r, measured[-1])
            finally:
                conn.execute(f"drop table if exists {COPY_TABLE}")
                conn.execute(f"drop table if exists {PANDAS_SCHEMA}.{PANDAS_TABLE}")
    except BenchError as exc:
        print(f"bench/ingest: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(args.work_dir / "landing", ignore_errors=True)

    save_results(results)
    print(
        f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}; format {FORMAT}; "
        f"database {args.db} on {':'.join(pg_address())}"
    )
    print_table(results)
    print(last_line(results[-1]))
    return 0


def save_results(results: list[SizeResult]) -> None:
    folder = REPO / "bench" / "results"
    folder.mkdir(exist_ok=True)
    path = folder / f"ingest-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(
        json.dumps({"machine": machine(), "sizes": [asdict(r) for r in results]}, indent=2),
        encoding="utf-8",
    )
    print(f"results saved to {path.relative_to(REPO)}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
