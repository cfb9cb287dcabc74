"""The main job of `make up`: run the pipeline through the real scheduler and show it in Superset.

Triggers the ingest DAG on the bundled sample feeds, waits for the Asset-scheduled transform DAG
(dbt through cosmos, the GX gate, publish), imports the Superset assets and checks the chart has data.
"""

from __future__ import annotations

import sys
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
    return base / f"dag_id={ti['dag_id']}/run_id={ti['dag_run_id']}/task_id={ti['task_id']}{mi}/attempt={max(ti.get('try_number') or 1, 1)}.log"


def wait_for_dags(client: AirflowClient, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    with console.status("waiting for Airflow to parse the DAGs"):
        while time.monotonic() < deadline:
            if client.healthy() and client.dag(INGEST) and client.dag(TRANSFORM):
                return
            time.sleep(2)
    errors = client.import_errors()
    detail = "; ".join(f"{e['filename']}: {e['stack_trace'].strip().splitlines()[-1]}" for e in errors)
    raise MainJobFailed(f"Airflow did not load the DAGs within {timeout:.0f}s"
                        + (f" — import errors: {detail}" if detail else " (see .local/log/airflow-dag-processor.log)"))


def wait_for_run(client: AirflowClient, settings: Settings, dag_id: str, run_id: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.completed}/{task.total} tasks"), TimeElapsedColumn(), console=console) as progress:
        bar = progress.add_task(dag_id, total=None)
        while time.monotonic() < deadline:
            run = client.dag_run(dag_id, run_id)
            tis = client.task_instances(dag_id, run_id)
            done = sum(1 for t in tis if t["state"] in ("success", "skipped", "failed", "upstream_failed"))
            running = [t["task_id"] for t in tis if t["state"] == "running"]
            progress.update(bar, total=max(len(tis), 1), completed=done,
                            description=f"{dag_id}: {run['state']}" + (f" ({', '.join(running[:2])})" if running else ""))
            if run["state"] in FINISHED:
                if run["state"] == "failed":
                    failed = [t for t in tis if t["state"] == "failed"]
                    lines = [f"  task {t['task_id']} failed; log: {_log_path(settings, t)}" for t in failed]
                    raise MainJobFailed(f"{dag_id} run {run_id} failed:\n" + "\n".join(lines))
                return run
            time.sleep(2)
    raise MainJobFailed(f"{dag_id} run {run_id} did not finish within {timeout:.0f}s; see the Airflow UI")


def _ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


def find_transform_run(client: AirflowClient, after: str, timeout: float = 90) -> dict | None:
    deadline = time.monotonic() + timeout
    with console.status("waiting for the Asset-scheduled transform run"):
        while time.monotonic() < deadline:
            for run in client.latest_runs(TRANSFORM):
                if run.get("run_after") and _ts(run["run_after"]) >= _ts(after):
                    return run
            time.sleep(2)
    return None


def marts_published(settings: Settings) -> bool:
    from knowdo.db import connect

    with connect(settings.transformer_url) as conn:
        return bool(conn.execute(
            "select 1 from ops.quality_gate_runs where published limit 1").fetchone()) and bool(
            conn.execute("select to_regclass('marts.fct_service_use')").fetchone()[0])


def run(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    client = AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password)
    wait_for_dags(client)
    for dag_id in (INGEST, TRANSFORM):
        client.unpause(dag_id)
    started = datetime.now(UTC).isoformat()
    ingest = client.trigger(INGEST)
    console.print(f"triggered {INGEST} ({ingest['dag_run_id']}) on the feeds in {settings.inbox_dir}")
    wait_for_run(client, settings, INGEST, ingest["dag_run_id"], timeout=900)
    announced = [t for t in client.task_instances(INGEST, ingest["dag_run_id"])
                 if t["task_id"].startswith("announce_") and t["state"] == "success"]
    # the ingest DAG emits a raw-table Asset event only when new data landed
    transform = find_transform_run(client, started, timeout=120) if announced else None
    if transform is None:
        if marts_published(settings):
            console.print("no new feed data since the last run: the published marts are current")
        else:
            console.print("no transform run was scheduled and nothing is published yet: triggering it")
            transform = client.trigger(TRANSFORM)
    if transform is not None:
        console.print(f"{TRANSFORM} run {transform['dag_run_id']} (dbt via cosmos, GX gate, publish)")
        wait_for_run(client, settings, TRANSFORM, transform["dag_run_id"], timeout=1800)

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
            import os

            from knowdo.superset_access import (
                apply_access,
                default_access_file,
                demo_users,
                ensure_users,
                load_access,
            )

            apply_access(client)
            if os.environ.get("KNOWDO_MODE", "local") == "local":  # demo logins: local mode only
                ensure_users(client, demo_users(load_access(default_access_file())))
        for path in sorted(default_assets_dir().glob("charts/*.yaml")):
            chart = yaml.safe_load(path.read_text(encoding="utf-8"))
            rows = client.chart_data(client.find_chart_id(chart["uuid"]))
            if not rows:
                raise MainJobFailed(f"chart {chart['slice_name']!r} returned no rows from the published marts")
            console.print(f"chart {chart['slice_name']!r}: {len(rows)} rows")
    except SupersetError as exc:
        raise MainJobFailed(f"Superset: {exc} (log: .local/log/superset.log)") from exc


def main() -> None:
    try:
        run()
    except (MainJobFailed, AirflowAPIError) as exc:
        console.print(f"[red]knowdo: the main job failed:[/red] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
