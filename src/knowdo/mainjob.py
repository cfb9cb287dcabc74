"""The main job of `make up`: run the pipeline through the real scheduler and show it in Superset.

Triggers the ingest DAG on the bundled sample feeds, waits for the Asset-scheduled transform DAG
(dbt through cosmos, the GX gate, publish), imports the Superset assets and checks the chart has
data.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from knowdo.airflow_api import AirflowAPIError, AirflowClient
from knowdo.config import Settings

console = Console(stderr=True)
INGEST, TRANSFORM = "knowdo_ingest", "knowdo_transform"
FINISHED = {"success", "failed"}


class MainJobFailed(RuntimeError):
    pass


def _log_path(settings: Settings, ti: dict) -> Path:
    base = Path(settings.local_dir / "airflow" / "logs")
    mi = f"/map_index={ti['map_index']}" if ti.get("map_index", -1) >= 0 else ""
    attempt = max(ti.get("try_number") or 1, 1)
    return (
        base
        / f"dag_id={ti['dag_id']}"
        / f"run_id={ti['dag_run_id']}"
        / f"task_id={ti['task_id']}{mi}"
        / f"attempt={attempt}.log"
    )


def wait_for_dags(client: AirflowClient, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with console.status("waiting for Airflow to parse the DAGs"):
        while time.monotonic() < deadline:
            if client.healthy() and client.dag(INGEST) and client.dag(TRANSFORM):
                return
            time.sleep(2)
    errors = client.import_errors()
    detail = "; ".join(
        f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors
    )
    raise MainJobFailed(
        f"Airflow did not load the DAGs within {timeout:.0f}s"
        + (
            f" — import errors: {detail}"
            if detail
            else " (see .local/log/airflow-dag-processor.log)"
        )
    )


def wait_for_run(
    client: AirflowClient, settings: Settings, dag_id: str, run_id: str, timeout: float
) -> dict:
    deadline = time.monotonic() + timeout
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} tasks"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(dag_id, total=None)
        while time.monotonic() < deadline:
            run = client.dag_run(dag_id, run_id)
            tis = client.task_instances(dag_id, run_id)
            done = sum(
                1 for t in tis if t["state"] in ("success", "skipped", "failed", "upstream_failed")
            )
            running = [t["task_id"] for t in tis if t["state"] == "running"]
            progress.update(
                bar,
                total=max(len(tis), 1),
                completed=done,
                description=f"{dag_id}: {run['state']}"
                + (f" ({', '.join(running[:2])})" if running else ""),
            )
            if run["state"] in FINISHED:
                if run["state"] == "failed":
                    failed = [t for t in tis if t["state"] == "failed"]
                    lines = [
                        f"  task {t['task_id']} failed; log: {_log_path(settings, t)}"
                        for t in failed
                    ]
                    raise MainJobFailed(f"{dag_id} run {run_id} failed:\n" + "\n".join(lines))
                return run
            time.sleep(2)
    raise MainJobFailed(
        f"{dag_id} run {run_id} did not finish within {timeout:.0f}s; see the Airflow UI"
    )


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


ACTIVE = {"queued", "running"}


def transform_runs_since(runs: list[dict], started: str) -> list[dict]:
    """Transform runs created since the main job started, oldest first.

    Asset-triggered runs are the normal case; on a fresh install the ingest DAG's own daily run
    (created when it is unpaused) may land the feeds before the main job's ingest run does, so the
    transform run to follow can come from either ingest run.
    """
    after = _ts(started)
    recent = [r for r in runs if r.get("run_after") and _ts(r["run_after"]) >= after]
    return sorted(recent, key=lambda r: r["run_after"])


def next_transform_step(runs: list[dict], started: str, published: bool) -> tuple[str, dict | None]:
    """What the main job does next about the transform DAG, from its latest runs:

    - ("wait", run): a run is queued or running, whenever it was created (one left by an earlier
      `make up`, the scheduler, or a person counts as much as the one this job caused), oldest
      first;
    - ("done", run): no run is in flight and runs were created since the job started: the last one
      decides (failed -> the job fails, naming its tasks);
    - ("current", None): nothing in flight, nothing new, the marts are published and the last run
      (if any) succeeded: only then are the published marts current;
    - ("trigger", None): nothing is published yet, or the last run failed: run the transform again.
    """
    active = sorted(
        (r for r in runs if r["state"] in ACTIVE), key=lambda r: r.get("run_after") or ""
    )
    if active:
        return "wait", active[0]
    recent = transform_runs_since(runs, started)
    if recent:
        return "done", recent[-1]
    finished = sorted(
        (r for r in runs if r["state"] in FINISHED and r.get("run_after")),
        key=lambda r: r["run_after"],
    )
    if published and (not finished or finished[-1]["state"] == "success"):
        return "current", None
    return "trigger", None


def follow_transform_runs(
    client: AirflowClient, settings: Settings, started: str, expect_run: bool, timeout: float = 2400
) -> None:
    """Wait until every transform run created since `started` has finished; fail if the last failed.

    When new data was announced the Asset-triggered run may take a few seconds to appear, so we look
    for up to two minutes before concluding that no run is coming.
    """
    deadline = time.monotonic() + timeout
    grace = time.monotonic() + (120 if expect_run else 0)
    followed: set[str] = set()
    while time.monotonic() < deadline:
        step, run = next_transform_step(
            client.latest_runs(TRANSFORM, limit=20), started, marts_published(settings)
        )
        if step == "wait":
            if run["dag_run_id"] not in followed:
                console.print(
                    f"{TRANSFORM} run {run['dag_run_id']} (dbt via cosmos, GX gate, publish)"
                )
                followed.add(run["dag_run_id"])
            wait_for_run(client, settings, TRANSFORM, run["dag_run_id"], timeout=1800)
            continue
        if step == "done":
            if run["state"] == "failed":
                wait_for_run(
                    client, settings, TRANSFORM, run["dag_run_id"], timeout=60
                )  # raises, naming tasks
            return
        if time.monotonic() < grace:
            with console.status("waiting for the Asset-scheduled transform run"):
                time.sleep(2)
            continue
        if step == "current":
            console.print("no new feed data since the last run: the published marts are current")
            return
        console.print(
            "no transform run is in flight and the marts are not current (nothing published"
            " yet, or the last run failed): triggering one"
        )
        client.trigger(TRANSFORM)
        grace = time.monotonic() + 60
    raise MainJobFailed(
        f"{TRANSFORM} runs did not finish within {timeout:.0f}s; see the Airflow UI"
    )


def marts_published(settings: Settings) -> bool:
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        return bool(
            conn.execute("select 1 from ops.quality_gate_runs where published limit 1").fetchone()
        ) and bool(conn.execute("select to_regclass('marts.fct_service_use')").fetchone()[0])


def superset_log(settings: Settings) -> str:
    log = settings.local_dir / "log" / "superset.log"
    home = settings.home
    return str(log.relative_to(home)) if log.is_relative_to(home) else str(log)


def check_superset_running(settings: Settings, refused_for: float = 20.0) -> None:
    """Fail before the pipeline runs when nothing answers at Superset's address (issue 12: the job
    used to run the whole pipeline, then wait 180 s, before saying Superset was down). A Superset
    that answers at all, even 503 while it starts, passes: the import step waits for it."""
    import requests

    url = settings.superset_url.rstrip("/")
    refused_since = time.monotonic()
    while True:
        try:
            requests.get(f"{url}/health", timeout=5)
            return
        except requests.ConnectionError:
            if time.monotonic() - refused_since >= refused_for:
                raise MainJobFailed(
                    f"Superset is not running: nothing answers at {url} (connection refused for"
                    f" {refused_for:.0f}s); its log: {superset_log(settings)}. `make status` shows"
                    " its state; `make up` (or `bash infra/local/stack.sh start-superset`) starts"
                    " it. Nothing was triggered: rerun the main job once Superset is up."
                ) from None
        except requests.RequestException:
            return  # something answers (slowly): the import step waits for it
        time.sleep(2)


def airflow_ready(settings: Settings) -> AirflowClient:
    """The main job's first Airflow calls: log in, wait for both DAGs, unpause them (issue 12: on a
    freshly booted machine these failed with HTTP 401; tests/faults/test_transform_faults.py runs
    them under a young monotonic clock)."""
    client = AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password)
    wait_for_dags(client)
    for dag_id in (INGEST, TRANSFORM):
        client.unpause(dag_id)
    return client


def run(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    check_superset_running(settings)
    client = airflow_ready(settings)
    started = datetime.now(UTC).isoformat()
    ingest = client.trigger(INGEST)
    console.print(
        f"triggered {INGEST} ({ingest['dag_run_id']}) on the feeds in {settings.inbox_dir}"
    )
    wait_for_run(client, settings, INGEST, ingest["dag_run_id"], timeout=900)
    announced = [
        t
        for t in client.task_instances(INGEST, ingest["dag_run_id"])
        if t["task_id"].startswith("announce_") and t["state"] == "success"
    ]
    # the ingest DAG emits a raw-table Asset event only when new data landed
    follow_transform_runs(client, settings, started, expect_run=bool(announced))

    import_dashboards()


def import_dashboards() -> None:
    """Import the assets (overwrite) and check every chart returns rows from the published marts."""
    import yaml

    from knowdo.superset_api import SupersetClient, SupersetError, default_assets_dir

    client = SupersetClient.from_env()
    try:
        with console.status("importing the Superset dashboards"):
            client.wait_healthy(180)
            client.login()
            client.import_assets()
        with console.status("applying Superset roles and row-level security (superset/access.yml)"):
            from knowdo.superset_access import (
                apply_access,
                default_access_file,
                demo_users,
                ensure_users,
                load_access,
            )

            apply_access(client)
            if Settings.from_env().mode == "local":  # demo logins: local mode only
                ensure_users(client, demo_users(load_access(default_access_file())))
        for path in sorted(default_assets_dir().glob("charts/*.yaml")):
            chart = yaml.safe_load(path.read_text(encoding="utf-8"))
            rows = client.chart_data(client.find_chart_id(chart["uuid"]))
            if not rows:
                raise MainJobFailed(
                    f"chart {chart['slice_name']!r} returned no rows from the published marts"
                )
            console.print(f"chart {chart['slice_name']!r}: {len(rows)} rows")
    except SupersetError as exc:
        raise MainJobFailed(f"Superset: {exc} (log: .local/log/superset.log)") from exc


def main(argv: list[str] | None = None) -> int:
    """`knowdo main-job` (make up): the whole pipeline on the sample feeds, through the
    scheduler."""
    import argparse

    argparse.ArgumentParser(prog="knowdo main-job", description=main.__doc__).parse_args(argv)
    try:
        run()
    except (MainJobFailed, AirflowAPIError) as exc:
        console.print(f"[red]knowdo: the main job failed:[/red] {exc}", highlight=False)
        return 1
    return 0
