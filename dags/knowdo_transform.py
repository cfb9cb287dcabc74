"""Transform: dbt builds the candidate marts (cosmos, one task per model), the GX quality gate audits
them and the current raw rows, and only a passing candidate is published to `marts`.

Scheduled on the raw-table Assets. Feed health (stale sources, late submitters) runs daily in its
own DAG, knowdo_feed_health. A failed task calls the alert notifiers (KNOWDO_ALERT_NOTIFIERS: log,
email, slack)."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior, TestIndirectSelection

from knowdo.alerts import on_task_failure
from knowdo.config import Settings
from knowdo.pipeline import raw_asset_uri, raw_tables

settings = Settings.from_env()
DEFAULT_ARGS = {"owner": "knowdo-data-engineering", "retries": 2, "retry_delay": timedelta(seconds=30), "on_failure_callback": on_task_failure}
RAW_ASSETS = [Asset(name=t, uri=raw_asset_uri(t)) for t in raw_tables()]
MARTS_ASSET = Asset(name="marts", uri="knowdo://warehouse/marts")


def _any_of(assets):
    expr = assets[0]
    for a in assets[1:]:
        expr = expr | a
    return expr


@dag(
    dag_id="knowdo_transform",
    # Scheduled on the raw-table Assets only. (A daily time trigger, for feed-health checks when
    # nobody sends data, made the scheduler create a run as soon as the DAG was unpaused on a fresh
    # install, before any data: feed health runs in the knowdo_feed_health DAG.)
    schedule=_any_of(RAW_ASSETS),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["knowdo", "transform", "dbt", "quality-gate"],
    doc_md=__doc__,
)
def knowdo_transform():
    dbt_build = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(settings.dbt_project_dir, install_dbt_deps=False),
        profile_config=ProfileConfig(
            profile_name="knowdo",
            target_name="local",
            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
        ),
        # dbt lives in its own environment (its pins conflict with Airflow's): run it as a subprocess
        execution_config=ExecutionConfig(
            dbt_executable_path=str(settings.dbt_executable),
            invocation_mode=InvocationMode.SUBPROCESS,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        # issue 12: no cosmos Asset per dbt model (emit_datasets, on by default). Nothing is scheduled on
        # them (the transform announces `marts` from publish), and on a fresh Airflow database concurrent
        # dbt tasks emitting through their AssetAliases each inserted the not-yet-known Asset (Airflow
        # checks, then inserts): the loser failed with UniqueViolation idx_asset_name_uri_unique.
        operator_args={"emit_datasets": False},
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            dbt_executable_path=str(settings.dbt_executable),
            invocation_mode=InvocationMode.SUBPROCESS,
            # `dbt build` per node: a model and its tests in one task (half the tasks of AFTER_EACH);
            # a test that spans models (relationships) runs in its own task after all its parents
            test_behavior=TestBehavior.BUILD,
            should_detach_multiple_parents_tests=True,
        ),
    )

    @task(on_failure_callback=on_task_failure)
    def quality_gate(**context) -> list[str]:
        """Run the GX checkpoints (raw suites + candidate marts); fail naming what failed."""
        from airflow.sdk.exceptions import AirflowFailException

        from knowdo.pipeline import GateFailed
        from knowdo.pipeline import quality_gate as run_quality_gate

        try:
            return run_quality_gate(context["run_id"])
        except GateFailed as exc:
            raise AirflowFailException(str(exc)) from None

    @task(outlets=[MARTS_ASSET], on_failure_callback=on_task_failure)
    def publish(tables: list[str], **context) -> dict[str, int]:
        """Swap exactly what the gate audited into `marts`, in one transaction."""
        from airflow.sdk.exceptions import AirflowFailException

        from knowdo.pipeline import publish_audited_marts
        from knowdo.publish import PublishRefused

        try:
            return publish_audited_marts(context["run_id"])
        except PublishRefused as exc:
            raise AirflowFailException(str(exc)) from None

    gate = quality_gate()
    dbt_build >> gate
    publish(gate)


knowdo_transform()
