"""Transform: dbt builds the candidate marts (cosmos, one task per model), the GX quality gate audits
them, and only a passing candidate is published to `marts`. Scheduled on the raw-table Assets."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode

from knowdo.config import Settings
from knowdo.pipeline import raw_asset_uri, raw_tables

settings = Settings.from_env()
DEFAULT_ARGS = {"owner": "knowdo-data-engineering", "retries": 2, "retry_delay": timedelta(seconds=30)}
RAW_ASSETS = [Asset(name=t, uri=raw_asset_uri(t)) for t in raw_tables()]
MARTS_ASSET = Asset(name="marts", uri="knowdo://warehouse/marts")


def _any_of(assets):
    expr = assets[0]
    for a in assets[1:]:
        expr = expr | a
    return expr


@dag(
    dag_id="knowdo_transform",
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
            dbt_executable_path=str(settings.dbt_executable), invocation_mode=InvocationMode.SUBPROCESS
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_LS,
            dbt_executable_path=str(settings.dbt_executable),
            invocation_mode=InvocationMode.SUBPROCESS,
        ),
    )

    @task
    def quality_gate(**context) -> list[str]:
        """Run the GX checkpoint on marts_candidate; fail naming the failed expectations."""
        from airflow.sdk.exceptions import AirflowFailException

        from knowdo.quality import record_gate, run_gate

        run_id = context["run_id"]
        result = run_gate("marts_candidate", run_id=run_id)
        print(result.summary())
        record_gate(result, run_id, published=False)
        if not result.success:
            raise AirflowFailException(
                "quality gate failed: marts keep their last good version.\n" + result.summary()
            )
        return [o.table for o in result.outcomes]

    @task(outlets=[MARTS_ASSET])
    def publish(tables: list[str], **context) -> dict[str, int]:
        """Swap the audited candidate marts into `marts` in one transaction."""
        from knowdo.publish import publish as _publish
        from knowdo.quality import mark_published

        counts = _publish(tables)
        mark_published(context["run_id"])
        return counts

    gate = quality_gate()
    dbt_build >> gate
    publish(gate)


knowdo_transform()
