"""Benchmark: the transform DAG through the scheduler, cosmos' watcher mode vs one dbt per model.

Issue 14: the transform DAG on the bundled sample must take <= 60 s through the scheduler. This runs
`knowdo_transform` on the running local stack (the warehouse as `make up` left it: the sample feeds
loaded) in both of the DAG's dbt execution modes, in the same run, interleaved `--repeats` times:

  local    KNOWDO_DBT_EXECUTION_MODE=local: one task per dbt node, each starting its own dbt
  watcher  KNOWDO_DBT_EXECUTION_MODE=watcher (the default): one `dbt build` in the producer task,
           one sensor task per node

For each mode Airflow's processes are restarted with the setting (`infra/local/stack.sh
restart-airflow`; PostgreSQL and Superset are left alone), the benchmark waits until the parsed DAG
has that mode's tasks, triggers a run through the REST API and waits for it. Measured: the wall
time from the trigger until the run is finished (what an operator waits), and the run's own
duration (Airflow's start_date -> end_date). A run that does not succeed stops the benchmark with
the failed tasks named. At the end Airflow is restarted with the caller's own setting.

    .venv/bin/python bench/transform/run.py --dag [--repeats 1]

Last line (one line, shown here on three):
    watcher_vs_local=<median watcher wall / median local wall>
    watcher_s=<median watcher wall> local_s=<median local wall>
Results: `bench/results/transform-dag-*.json`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import requests
from scratch import BenchError  # a sibling module of the benchmarks

from knowdo.airflow_api import AirflowAPIError

DAG_ID = "knowdo_transform"
PRODUCER_TASK = "dbt.dbt_producer_watcher"
MODES = ("local", "watcher")
TARGET_S = 60.0


@dataclass
class DagRun:
    mode: str
    run_id: str
    wall_s: float  # trigger -> the run seen finished
    run_s: float  # Airflow's start_date -> end_date
    tasks: int  # tasks in the DAG
    # where the time went (the scheduler's timeline of this run, from the task instances)
    timeline: dict | None = None


def _when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def timeline(run: dict, tis: list[dict]) -> dict:
    """The run's phases from its task instances: seconds from the run's start to each task's start
    and end, the named tasks' durations, and the per-model tasks as one phase (first start -> last
    end; their summed durations; how many ran (not EmptyOperator placeholders) and how many of
    those in a worker)."""
    start = _when(run["start_date"])

    def rel(t: datetime | None) -> float | None:
        return round((t - start).total_seconds(), 1) if t and start else None

    phases: dict = {}
    named = {
        "create_stats_functions": "create_stats_functions",
        "dbt.dbt_producer_watcher": "producer_dbt_build",
        "dbt.dbt_project_test": "dbt_test",
        "quality_gate": "quality_gate",
        "publish": "publish",
    }
    node_tasks = []
    for ti in tis:
        begin, end = _when(ti.get("start_date")), _when(ti.get("end_date"))
        if ti["task_id"] in named:
            phases[named[ti["task_id"]]] = {
                "start_s": rel(begin),
                "end_s": rel(end),
                "duration_s": ti.get("duration"),
            }
        elif ti["task_id"].startswith("dbt.") and "producer" not in ti["task_id"]:
            node_tasks.append((ti, begin, end))
    ran = [(ti, b, e) for ti, b, e in node_tasks if b and e and ti.get("duration")]
    if ran:
        phases["node_tasks"] = {
            "count": len(node_tasks),
            # not EmptyOperator placeholders; a task ended in the triggerer (start_from_trigger,
            # knowdo.dbt_watcher) has a duration but no worker's hostname
            "ran": len(ran),
            "ran_in_a_worker": sum(1 for ti, _, _ in ran if ti.get("hostname")),
            "start_s": rel(min(b for _, b, _ in ran)),
            "end_s": rel(max(e for _, _, e in ran)),
            "summed_duration_s": round(sum(ti["duration"] for ti, _, _ in ran), 1),
        }
    return phases


def _client():
    from knowdo.airflow_api import AirflowClient
    from knowdo.config import Settings

    settings = Settings.from_env()
    return AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password)


def restart_airflow(mode: str | None) -> None:
    """Restart Airflow's processes with KNOWDO_DBT_EXECUTION_MODE=mode; None: the whole stack with
    the caller's own settings (`stack.sh start`: a changed setting stopped Superset)."""
    env = dict(os.environ)
    if mode is not None:
        env["KNOWDO_DBT_EXECUTION_MODE"] = mode
    result = subprocess.run(
        ["bash", str(REPO / "infra/local/stack.sh"), "restart-airflow" if mode else "start"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if result.returncode != 0:
        raise BenchError(
            f"stack.sh restart-airflow failed (mode {mode}):\n{result.stdout}{result.stderr}"
        )


def wait_for_mode(client, mode: str, timeout: float = 300) -> int:
    """Wait until the parsed DAG has the mode's tasks (the producer task only in watcher mode)."""
    deadline = time.monotonic() + timeout
    last = "the API did not answer"
    while time.monotonic() < deadline:
        try:
            if client.healthy() and client.dag(DAG_ID):
                tasks = [
                    t["task_id"] for t in client.request("GET", f"/dags/{DAG_ID}/tasks")["tasks"]
                ]
                if (PRODUCER_TASK in tasks) == (mode == "watcher"):
                    return len(tasks)
                last = f"the DAG still has the other mode's tasks ({len(tasks)} tasks)"
        except (
            OSError,
            AirflowAPIError,
            requests.RequestException,
        ) as exc:  # the api-server restarts
            last = str(exc)
        time.sleep(3)
    raise BenchError(f"Airflow did not parse {DAG_ID} in {mode} mode within {timeout:.0f}s: {last}")


def wait_idle(client, timeout: float = 1800) -> None:
    """No transform run queued or running (an Asset-triggered one would share the machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not [
            r for r in client.latest_runs(DAG_ID, limit=10) if r["state"] in ("queued", "running")
        ]:
            return
        time.sleep(5)
    raise BenchError(f"a {DAG_ID} run was still in flight after {timeout:.0f}s")


def timed_run(client, mode: str, tasks: int, timeout: float = 3600) -> DagRun:
    started = time.monotonic()
    run_id = client.trigger(DAG_ID)["dag_run_id"]
    while time.monotonic() < started + timeout:
        try:
            run = client.dag_run(DAG_ID, run_id)
        except (OSError, AirflowAPIError, requests.RequestException):
            # the api-server slow to answer (30 s) on a loaded machine: look again; the run's
            # own timeline, not this loop, is the measurement
            time.sleep(2)
            continue
        if run["state"] in ("success", "failed"):
            wall = time.monotonic() - started
            tis = client.task_instances(DAG_ID, run_id)
            if run["state"] != "success":
                failed = sorted(
                    t["task_id"] for t in tis if t["state"] in ("failed", "upstream_failed")
                )
                raise BenchError(
                    f"{DAG_ID} run {run_id} ({mode} mode) failed; tasks: {', '.join(failed)}"
                )
            run_s = (
                datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])
            ).total_seconds()
            return DagRun(mode, run_id, round(wall, 1), round(run_s, 1), tasks, timeline(run, tis))
        time.sleep(1)
    raise BenchError(f"{DAG_ID} run {run_id} ({mode} mode) did not finish within {timeout:.0f}s")


def main(repeats: int, modes: tuple[str, ...] = MODES) -> int:
    unknown = set(modes) - set(MODES)
    if unknown:
        raise BenchError(f"--modes {','.join(modes)}: unknown {sorted(unknown)}; known: {MODES}")
    load_at_start = os.getloadavg()  # a shared machine: say how busy it was
    client = _client()
    own_mode = os.environ.get("KNOWDO_DBT_EXECUTION_MODE")
    runs: list[DagRun] = []
    try:
        client.unpause(DAG_ID)
        for i in range(repeats):
            for mode in modes:
                print(
                    f"[{i + 1}/{repeats}] {mode}: restarting Airflow with"
                    f" KNOWDO_DBT_EXECUTION_MODE={mode}",
                    flush=True,
                )
                restart_airflow(mode)
                tasks = wait_for_mode(client, mode)
                wait_idle(client)
                run = timed_run(client, mode, tasks)
                runs.append(run)
                print(
                    f"  {mode}: {tasks} tasks, wall {run.wall_s:.1f} s, run {run.run_s:.1f} s "
                    f"({run.run_id})",
                    flush=True,
                )
                for phase, value in (run.timeline or {}).items():
                    print(f"    {phase}: {value}", flush=True)
    finally:
        print(
            f"restarting the stack with the caller's setting ({own_mode or 'default'})", flush=True
        )
        restart_airflow(None)

    median = {m: statistics.median(r.wall_s for r in runs if r.mode == m) for m in modes}
    median_run = {m: statistics.median(r.run_s for r in runs if r.mode == m) for m in modes}
    both = set(modes) == set(MODES)
    ratio = median["watcher"] / median["local"] if both else None
    out = REPO / "bench" / "results" / f"transform-dag-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "load_average_at_start": load_at_start,
                    "load_average_at_end": os.getloadavg(),
                },
                "runs": [asdict(r) for r in runs],
                "median_wall_s": median,
                "median_run_s": median_run,
                "watcher_vs_local": ratio,
                "target_s": TARGET_S,
            },
            indent=2,
        )
    )
    print(f"results: {out.relative_to(REPO)}")
    print(
        "median run duration (Airflow): " + ", ".join(f"{m} {median_run[m]:.1f} s" for m in modes)
    )
    if "watcher" in modes:
        met = "met" if median["watcher"] <= TARGET_S else "NOT met"
        print(f"watcher target <= {TARGET_S:.0f} s: {met}")
    if ratio is None:
        print("no watcher_vs_local ratio: run both modes (--modes local,watcher)")
        return 0
    print(
        f"watcher_vs_local={ratio:.3f} watcher_s={median['watcher']:.1f}"
        f" local_s={median['local']:.1f}"
    )
    return 0
