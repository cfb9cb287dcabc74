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
duration (Airflow's start_date -> end_date). A run that does not succeed stops the benchmark with the
failed tasks named. At the end Airflow is restarted with the caller's own setting.

    .venv/bin/python bench/transform/run.py --dag [--repeats 1]

Last line: `watcher_vs_local=<median watcher wall / median local wall> watcher_s=<median watcher wall>
local_s=<median local wall>`. Results: `bench/results/transform-dag-*.json`.
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


def _client():
    from knowdo.airflow_api import AirflowClient
    from knowdo.config import Settings

    settings = Settings.from_env()
    return AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password)


def restart_airflow(mode: str | None) -> None:
    """Restart Airflow's processes with KNOWDO_DBT_EXECUTION_MODE=mode (None: the caller's own)."""
    env = dict(os.environ)
    if mode is not None:
        env["KNOWDO_DBT_EXECUTION_MODE"] = mode
    result = subprocess.run(
        ["bash", str(REPO / "infra/local/stack.sh"), "restart-airflow"],
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
        run = client.dag_run(DAG_ID, run_id)
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
            return DagRun(mode, run_id, round(wall, 1), round(run_s, 1), tasks)
        time.sleep(1)
    raise BenchError(f"{DAG_ID} run {run_id} ({mode} mode) did not finish within {timeout:.0f}s")


def main(repeats: int) -> int:
    client = _client()
    own_mode = os.environ.get("KNOWDO_DBT_EXECUTION_MODE")
    runs: list[DagRun] = []
    try:
        client.unpause(DAG_ID)
        for i in range(repeats):
            for mode in MODES:
                print(
                    f"[{i + 1}/{repeats}] {mode}: restarting Airflow with KNOWDO_DBT_EXECUTION_MODE={mode}",
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
    finally:
        print(f"restarting Airflow with the caller's setting ({own_mode or 'default'})", flush=True)
        restart_airflow(None)

    median = {m: statistics.median(r.wall_s for r in runs if r.mode == m) for m in MODES}
    median_run = {m: statistics.median(r.run_s for r in runs if r.mode == m) for m in MODES}
    ratio = median["watcher"] / median["local"]
    out = REPO / "bench" / "results" / f"transform-dag-{datetime.now(UTC):%Y%m%d-%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
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
        f"median run duration (Airflow): local {median_run['local']:.1f} s, "
        f"watcher {median_run['watcher']:.1f} s"
    )
    print(
        f"watcher target <= {TARGET_S:.0f} s: {'met' if median['watcher'] <= TARGET_S else 'NOT met'}"
    )
    print(
        f"watcher_vs_local={ratio:.3f} watcher_s={median['watcher']:.1f} local_s={median['local']:.1f}"
    )
    return 0
