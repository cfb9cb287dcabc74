"""Benchmark: an incremental dbt run of the service-use chain after one new month vs a full refresh.

Generates a large DHIS2 feed (many facilities in the 40 sample regions, one CSV per month, as a
ministry submits them), loads it with the population sample into a scratch database
(`knowdo_bench_transform`, never the warehouse), then, interleaved `--repeats` times:

  full refresh   `dbt run --select +fct_service_use --full-refresh` over every month loaded
  new month      one more month's file ingested (not timed)
  incremental    `dbt run --select +fct_service_use`: rebuilds only the new month
  unchanged      the same run again with nothing new: the fixed work of every run

Reported per run: wall time of the dbt command, dbt's own elapsed time (without the process's
start-up) and the sum of the models' execution times (run_results.json); dbt's start-up cost is
also measured alone, as the wall time of a run of one trivial model. After every incremental run
the chain's mart is compared with the next full refresh (EXCEPT ALL both ways): the benchmark
fails if they differ. Finally the publish step (knowdo.publish) is timed for fct_service_use.

    .venv/bin/python bench/transform/run.py [--facilities 90000] [--months 60] [--repeats 2]

Last line: `incremental_vs_full=<ratio> rows=<n>`, the ratio of the median wall times (the other
ratios are printed above it), rows = rows in fct_service_use.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
from scratch import (  # a sibling module of the benchmarks
    BenchError,
    init_scratch_db,
    pg_address,
    role_credentials,
    role_url,
)

FEED_ID = "bench_transform_dhis2"
DATA_ELEMENT = "KdMhOpdVis1"  # -> mh_outpatient_contacts
COMBOS = {
    f"KdCoc{sex}0000{i}": {"sex": sex, "age_band": band}
    for sex in ("F", "M")
    for i, band in enumerate(("0-14", "15-24", "25-49", "50+"))
}
HEADER = (
    "dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment,flwup"
)
# the months end with the population sample's last year (2021-2025): the new months have
# denominators, and a longer history (--months) reaches back before 2021, as a real one would
LAST_MONTH = (2025, 12)
CHAIN = "+fct_service_use"
MART = "marts_candidate.fct_service_use"


@dataclass
class DbtRun:
    kind: str
    months: int
    wall_s: float
    dbt_s: float  # dbt's own elapsed time (run_results.json): the run without process start-up
    model_s: float
    models: dict[str, float] = field(default_factory=dict)


# --- feed -----------------------------------------------------------------------------------------
def months(count: int, last: tuple[int, int] = LAST_MONTH) -> list[str]:
    """`count` consecutive months (YYYYMM) ending with `last`, oldest first."""
    year, month = last
    out = []
    for _ in range(count):
        out.append(f"{year}{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def regions() -> list[str]:
    with (REPO / "dbt_project/seeds/ref_geography.csv").open(encoding="utf-8") as f:
        return [r["geography_code"] for r in csv.DictReader(f) if r["geography_level"] == "region"]


def facility(index: int) -> str:
    return f"KdFcBt{index:05d}"


def write_registry(path: Path, facilities: int) -> None:
    """The bench feed (every facility mapped to a sample region) plus the real population feed."""
    real = yaml.safe_load((REPO / "feeds/registry.yml").read_text(encoding="utf-8"))
    population = next(f for f in real["feeds"] if f["id"] == "population_denominators")
    places = regions()
    bench = {
        "id": FEED_ID,
        "publisher": {"name": "Transform benchmark (synthetic ministry)", "kind": "ministry"},
        "domain": "service_use",
        "format": "dhis2-csv",
        "source": {"folder": "bench", "glob": "*.csv"},
        "schedule": "@monthly",
        "mapping": {
            "data_elements": {DATA_ELEMENT: "mh_outpatient_contacts"},
            "org_units": {facility(i): places[i % len(places)] for i in range(facilities)},
            "category_option_combos": COMBOS,
        },
    }
    path.write_text(
        yaml.safe_dump({"feeds": [bench, population]}, sort_keys=False), encoding="utf-8"
    )


def write_month(path: Path, period: str, facilities: int) -> int:
    """One month's DHIS2 CSV: every facility x sex x age band; counts vary, a few under 5."""
    rows = 0
    seed = int(period)
    with path.open("w", encoding="utf-8", newline="", buffering=1 << 20) as f:
        f.write(HEADER + "\n")
        for i in range(facilities):
            unit = facility(i)
            for j, combo in enumerate(COMBOS):
                value = (seed * 31 + i * 7919 + j * 104729) % 97
                f.write(
                    f"{DATA_ELEMENT},{period},{unit},{combo},HllvX50cXC0,{value},bench,"
                    "2025-01-15T10:00:00.000,,false\n"
                )
                rows += 1
    return rows


# --- database -------------------------------------------------------------------------------------
def empty_scratch(conn: psycopg.Connection) -> None:
    tables = [
        f"raw.{t}"
        for (t,) in conn.execute(
            "select tablename from pg_tables where schemaname = 'raw'"
        ).fetchall()
    ]
    conn.execute(
        f"truncate {', '.join(tables)}, ops.rejected_rows, ops.load_batches,"
        " ops.landed_files cascade"
    )


def ingest(conn, feed, path: Path, landing: Path) -> int:
    from knowdo.loading import ingest_file

    result = ingest_file(conn, feed, path, landing)
    # the landed copy is not needed here (the file is regenerated the same when missing): at the
    # larger scales two copies of every month would not fit on the disk
    shutil.rmtree(landing, ignore_errors=True)
    if result.status != "loaded":
        raise BenchError(f"{path.name} was not loaded: {result.error}")
    return result.rows_loaded


# --- dbt ------------------------------------------------------------------------------------------
def dbt_env(db: str, target: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        KNOWDO_WAREHOUSE_DB=db,
        DBT_TARGET_PATH=str(target),
        DBT_LOG_PATH=str(target / "logs"),
        DBT_PROFILES_DIR=str(REPO / "dbt_project"),
        DBT_SEND_ANONYMOUS_USAGE_STATS="False",
        DO_NOT_TRACK="1",
    )
    user, password = role_credentials("transformer")
    env.setdefault("KNOWDO_DBT_USER", user)
    env.setdefault("KNOWDO_DBT_PASSWORD", password)
    host, port = pg_address()
    env.setdefault("KNOWDO_PG_HOST", host)
    env.setdefault("KNOWDO_PG_PORT", port)
    return env


def dbt(env: dict[str, str], *args: str) -> tuple[float, float, dict[str, float]]:
    """Run dbt; (wall seconds, dbt's elapsed seconds, model -> execution seconds)."""
    executable = Path(os.environ.get("KNOWDO_DBT_VENV", REPO / ".venvs/dbt")) / "bin/dbt"
    start = time.perf_counter()
    done = subprocess.run(
        [str(executable), *args],
        cwd=REPO / "dbt_project",
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"dbt {' '.join(args)} failed: {done.stdout[-1500:]}")
    results = json.loads((Path(env["DBT_TARGET_PATH"]) / "run_results.json").read_text())
    models = {
        r["unique_id"].split(".")[-1]: r["execution_time"]
        for r in results["results"]
        if r["unique_id"].startswith("model.")
    }
    return wall, results["elapsed_time"], models


def timed_run(env: dict[str, str], kind: str, loaded_months: int) -> DbtRun:
    args = ["run", "--select", CHAIN] + (["--full-refresh"] if kind == "full" else [])
    wall, elapsed, models = dbt(env, *args)
    run = DbtRun(
        kind,
        loaded_months,
        round(wall, 2),
        round(elapsed, 2),
        round(sum(models.values()), 2),
        {k: round(v, 2) for k, v in sorted(models.items(), key=lambda kv: -kv[1])},
    )
    print(
        f"  {kind:<12} {loaded_months} months: wall {run.wall_s:7.2f} s, dbt {run.dbt_s:7.2f} s,"
        f" models {run.model_s:7.2f} s"
        f"  (slowest: {', '.join(f'{k} {v:.1f}' for k, v in list(run.models.items())[:3])})",
        flush=True,
    )
    return run


def snapshot_mart(conn) -> None:
    conn.execute(f"drop table if exists {MART}__incremental")
    conn.execute(f"create table {MART}__incremental as select * from {MART}")


def compare_with_snapshot(conn) -> None:
    for a, b in ((MART, f"{MART}__incremental"), (f"{MART}__incremental", MART)):
        extra = conn.execute(
            f"select count(*) from (select * from {a} except all select * from {b}) as d"
        ).fetchone()[0]
        if extra:
            raise BenchError(
                f"the incremental build differs from the full refresh: {extra} rows of"
                f" {a} are not in {b}"
            )
    conn.execute(f"drop table {MART}__incremental")


def time_publish(db: str) -> tuple[float, int]:
    os.environ["KNOWDO_TRANSFORMER_URL"] = role_url(db, "transformer")
    os.environ["KNOWDO_WAREHOUSE_DB"] = db
    from knowdo.config import Settings
    from knowdo.publish import publish

    start = time.perf_counter()
    counts = publish(["fct_service_use"], Settings.from_env())
    return round(time.perf_counter() - start, 2), counts["fct_service_use"]


# --- main -----------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    local = Path(os.environ.get("KNOWDO_LOCAL_DIR") or REPO / ".local")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--facilities", type=int, default=90000, help="DHIS2 org units (8 values a month each)"
    )
    p.add_argument(
        "--months", type=int, default=60, help="months loaded before the first new month"
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=None,
        help=(
            "full/incremental pairs (each adds a month; default 2); with --dag: runs per mode"
            " (default 1)"
        ),
    )
    p.add_argument(
        "--dag",
        action="store_true",
        help=(
            "instead: the transform DAG through the scheduler, watcher vs local mode"
            " (transform_dag.py)"
        ),
    )
    p.add_argument(
        "--modes",
        default="local,watcher",
        help=(
            "with --dag: the modes to run, comma-separated (default local,watcher; the ratio"
            " needs both)"
        ),
    )
    p.add_argument("--db", default="knowdo_bench_transform", help="scratch database")
    p.add_argument("--work-dir", type=Path, default=local / "bench" / "transform")
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.dag else 2
    if "bench" not in args.db:
        p.error(
            f"--db {args.db}: the benchmark empties the raw tables of its database, so its name"
            " must contain `bench`"
        )
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.dag:
            # bench/transform/transform_dag.py (issue 14)
            from transform_dag import main as bench_dag

            return bench_dag(args.repeats, tuple(args.modes.split(",")))
        return bench(args)
    except BenchError as exc:
        print(f"bench/transform: {exc}", file=sys.stderr)
        return 1


def bench(args: argparse.Namespace) -> int:
    from knowdo.registry import load_registry, sync_to_warehouse

    work: Path = args.work_dir
    shutil.rmtree(work / "landing", ignore_errors=True)
    (work / "feeds").mkdir(parents=True, exist_ok=True)
    registry_path = work / f"registry_{args.facilities}.yml"
    write_registry(registry_path, args.facilities)
    feeds = load_registry(registry_path)
    periods = months(args.months + args.repeats)

    start = time.perf_counter()
    init_scratch_db(args.db)
    loader = psycopg.connect(role_url(args.db, "loader"), autocommit=True)
    transformer = psycopg.connect(role_url(args.db, "transformer"), autocommit=True)
    empty_scratch(loader)
    sync_to_warehouse(loader, feeds)
    print(f"scratch database {args.db} ready in {time.perf_counter() - start:.0f} s", flush=True)

    start = time.perf_counter()
    for population in sorted((REPO / "sample_feeds/population").glob("*.csv")):
        if population.name != "england_icb_population.csv":
            ingest(loader, feeds["population_denominators"], population, work / "landing")

    def month_file(period: str) -> Path:
        path = work / "feeds" / f"bench_{args.facilities}_{period}.csv"
        if not path.exists():
            write_month(path, period, args.facilities)
        return path

    raw_rows = 0
    for done, period in enumerate(periods[: args.months], start=1):
        raw_rows += ingest(loader, feeds[FEED_ID], month_file(period), work / "landing")
        if done % 10 == 0 or done == args.months:
            print(
                f"  {done}/{args.months} months loaded ({raw_rows:,} values,"
                f" {time.perf_counter() - start:.0f} s)",
                flush=True,
            )
    print(
        f"loaded {raw_rows:,} DHIS2 values ({args.facilities:,} facilities x 8 x {args.months}"
        f" months) in {time.perf_counter() - start:.0f} s",
        flush=True,
    )

    env = dbt_env(args.db, work / "target")
    dbt(env, "seed")
    dbt(env, "run-operation", "create_stats_functions")  # once, as the transform DAG does
    dbt(env, "run", "--select", "+int_service_use__load_state")  # warm-up: partial parse, views
    fixed = [
        round(dbt(env, "run", "--select", "int_service_use__load_state")[0], 2) for _ in range(2)
    ]
    print(
        f"dbt fixed cost (start-up, parse, connection; one trivial model):"
        f" {statistics.median(fixed):.1f} s",
        flush=True,
    )

    runs: list[DbtRun] = []
    loaded = args.months
    for i in range(args.repeats):
        runs.append(timed_run(env, "full", loaded))
        if i:
            compare_with_snapshot(transformer)  # the previous incremental run == this full refresh
        month_rows = ingest(loader, feeds[FEED_ID], month_file(periods[loaded]), work / "landing")
        raw_rows += month_rows
        loaded += 1
        runs.append(timed_run(env, "incremental", loaded))
        snapshot_mart(transformer)
        # nothing new: the same run's fixed work (dbt, the views and small tables rebuilt every
        # run, the load-state checks), so incremental - unchanged = the cost of the new month
        runs.append(timed_run(env, "unchanged", loaded))
    runs.append(timed_run(env, "full", loaded))
    compare_with_snapshot(transformer)
    rows = transformer.execute(f"select count(*) from {MART}").fetchone()[0]
    publish_s, published = time_publish(args.db)
    print(f"publish (copy of fct_service_use into marts, {published:,} rows): {publish_s:.2f} s")

    def median(kind: str, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in runs if r.kind == kind)

    ratios = {
        attr: median("incremental", attr) / median("full", attr)
        for attr in ("wall_s", "dbt_s", "model_s")
    }
    new_month = {
        attr: (median("incremental", attr) - median("unchanged", attr))
        / (median("full", attr) - median("unchanged", attr))
        for attr in ("wall_s", "dbt_s")
    }
    save(args, runs, fixed, raw_rows, rows, ratios, new_month, publish_s)
    print(
        f"median wall: full {median('full', 'wall_s'):.1f} s, incremental"
        f" {median('incremental', 'wall_s'):.1f} s,"
        f" unchanged {median('unchanged', 'wall_s'):.1f} s; {raw_rows:,} raw values"
    )
    print(
        f"incremental/full: dbt elapsed {ratios['dbt_s']:.4f}, model time {ratios['model_s']:.4f};"
        f" the new month alone ((incremental - unchanged) / (full - unchanged)):"
        f" wall {new_month['wall_s']:.4f}"
    )
    print(f"incremental_vs_full={ratios['wall_s']:.4f} rows={rows}")
    loader.close()
    transformer.close()
    return 0


def save(args, runs, fixed, raw_rows, rows, ratios, new_month, publish_s) -> None:
    out = REPO / "bench/results" / f"transform-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}",
                "facilities": args.facilities,
                "base_months": args.months,
                "raw_values": raw_rows,
                "fct_service_use_rows": rows,
                "dbt_fixed_cost_s": fixed,
                "publish_s": publish_s,
                "runs": [asdict(r) for r in runs],
                "incremental_vs_full_wall": round(ratios["wall_s"], 4),
                "incremental_vs_full_dbt_elapsed": round(ratios["dbt_s"], 4),
                "incremental_vs_full_model_time": round(ratios["model_s"], 4),
                "new_month_vs_full_wall": round(new_month["wall_s"], 4),
                "new_month_vs_full_dbt_elapsed": round(new_month["dbt_s"], 4),
            },
            indent=2,
        ),
        encoding="utf-8",
    )
    print(f"results: {out.relative_to(REPO)}")


if __name__ == "__main__":
    sys.exit(main())
