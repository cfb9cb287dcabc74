"""Transform: dbt builds the candidate marts (cosmos, one task per model), the GX quality gate
audits them and the current raw rows, and only a passing candidate is published to `marts`.

dbt runs once per transform run (KNOWDO_DBT_EXECUTION_MODE=watcher, the default): cosmos' watcher
mode runs one `dbt build` of the seeds and models in its producer task (`dbt.dbt_producer_watcher`)
and every model keeps its own task, a sensor that succeeds or fails with that model's result in the
build; the data tests then run once in one `dbt test` task (seeds are placeholders). Retrying a
failed model's task (or clearing it) reruns that model alone with dbt. `local`
starts one dbt process per model instead (the mode before issue 14; bench/transform --dag compares
them). The statistics functions are created once, before dbt (`create_stats_functions`). After
dbt, `impact_marts` evaluates the implementation registry on the candidate counts and writes the
rows of the two impact marts dbt built empty (knowdo.impact.marts); then the gate.

Scheduled on the raw-table Assets. Feed health (stale sources, late submitters) runs daily in its
own DAG, knowdo_feed_health. The gate's outcome reaches the published feed-health mart in the same
run (the Data health dashboard's "last quality gate"): a failed gate writes it there itself, a
passed one through publish (knowdo.pipeline). A failed task calls the alert notifiers
(knowdo.dag_defaults; KNOWDO_ALERT_NOTIFIERS: log, email, slack)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetAny, dag, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import (
    ExecutionMode,
    InvocationMode,
    LoadMode,
    SeedRenderingBehavior,
    TestBehavior,
    TestIndirectSelection,
)

from knowdo.config import Settings
from knowdo.dag_defaults import DEFAULT_ARGS
from knowdo.dbt_operations import manifest_is_current, render_manifest_path
from knowdo.pipeline import raw_asset_uri, raw_tables

settings = Settings.from_env()
RAW_ASSETS = [Asset(name=t, uri=raw_asset_uri(t)) for t in raw_tables()]
MARTS_ASSET = Asset(name="marts", uri="knowdo://warehouse/marts")
WATCHER = settings.dbt_execution_mode == "watcher"
# how often a model's sensor looks for its result in the producer's XCom (cosmos' default is 10 s)
WATCHER_POKE_SECONDS = 2
# the producer's `dbt build` threads (the profile's 2 are for the one-model-at-a-time callers): most
# of the sample's nodes are views and small tables, bound by round trips rather than by the CPU
WATCHER_DBT_THREADS = 4
# dbt's manifest the DAG is rendered from (`dbt parse` by infra/local/stack.sh before Airflow
# starts); a manifest older than any file of the dbt project is not used (`dbt ls` at parse instead)
RENDER_MANIFEST = render_manifest_path(settings)
RENDER_FROM_MANIFEST = manifest_is_current(RENDER_MANIFEST, settings.dbt_project_dir)


def _watch_after_the_build(group) -> None:
    """Start the first sensors when the producer's `dbt build` has finished, whatever its outcome.

    cosmos starts a task group's first sensors with the producer and lets them wait (deferred) for
    their node's result. Here they start once the build is over: each finds its result at its first
    look, so no sensor waits in the triggerer, no task slot is held while dbt works on two cores,
    and `airflow dags test` (which runs one task at a time) never starts a sensor before the
    producer. A failed build still lets every sensor report its own node (ALL_DONE), and the
    models after a failed one fail in their own tasks, so a retry reruns exactly those.

    Each model's sensor starts in the triggerer (`start_from_trigger`, knowdo.dbt_watcher) and a
    model that succeeded in the build ends there, without a worker process; a failed, skipped or
    retried model resumes on a worker in cosmos' sensor (its error, its dbt rerun)."""
    from airflow.task.trigger_rule import TriggerRule
    from cosmos.constants import PRODUCER_WATCHER_DONE_TASK_ID, PRODUCER_WATCHER_TASK_ID
    from cosmos.operators.watcher import DbtRunWatcherOperator

    from knowdo.dbt_watcher import start_in_triggerer

    tasks = {t.task_id: t for t in _group_tasks(group)}
    producer = tasks[f"{group.group_id}.{PRODUCER_WATCHER_TASK_ID}"]
    internal = {producer.task_id, f"{group.group_id}.{PRODUCER_WATCHER_DONE_TASK_ID}"}
    for sensor in tasks.values():
        if isinstance(sensor, DbtRunWatcherOperator):  # the models (not seeds, not tests)
            start_in_triggerer(sensor)
        if sensor.task_id in internal or sensor.upstream_task_ids & set(tasks):
            continue
        producer >> sensor
        sensor.trigger_rule = TriggerRule.ALL_DONE


def _group_tasks(group):
    from airflow.sdk import TaskGroup

    for child in group.children.values():
        if isinstance(child, TaskGroup):
            yield from _group_tasks(child)
        else:
            yield child


@dag(
    dag_id="knowdo_transform",
    # Scheduled on the raw-table Assets only. (A daily time trigger, for feed-health checks when
    # nobody sends data, made the scheduler create a run as soon as the DAG was unpaused on a fresh
    # install, before any data: feed health runs in the knowdo_feed_health DAG.)
    schedule=AssetAny(*RAW_ASSETS),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["knowdo", "transform", "dbt", "quality-gate"],
    doc_md=__doc__,
)
def knowdo_transform():
    @task
    def create_stats_functions() -> None:
        """Create the stats.* functions once, before dbt (not in every dbt invocation's hook)."""
        from knowdo.dbt_operations import create_stats_functions as create

        create()

    dbt_build = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            settings.dbt_project_dir,
            install_dbt_deps=False,
            manifest_path=RENDER_MANIFEST if RENDER_FROM_MANIFEST else None,
        ),
        profile_config=ProfileConfig(
            profile_name="knowdo",
            target_name="local",
            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
        ),
        # dbt has its own environment (its pins conflict with Airflow's): run it as a subprocess
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.WATCHER if WATCHER else ExecutionMode.LOCAL,
            dbt_executable_path=str(settings.dbt_executable),
            invocation_mode=InvocationMode.SUBPROCESS,
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        # watcher: the sensors poll the producer's results every WATCHER_POKE_SECONDS
        operator_args=(
            {
                "poke_interval": WATCHER_POKE_SECONDS,
                "dbt_cmd_flags": ["--threads", str(WATCHER_DBT_THREADS)],
            }
            if WATCHER
            else {}
        ),
        render_config=RenderConfig(
            # issue 12: no cosmos Asset per dbt model (emit_datasets, on by default). Nothing is
            # scheduled on them (the transform announces `marts` from publish), and on a fresh
            # Airflow database concurrent dbt tasks emitting through their AssetAliases each
            # inserted the not-yet-known Asset (Airflow checks, then inserts): the loser was set
            # failed, without a retry (UniqueViolation idx_asset_name_uri_unique). Set here, not in
            # operator_args: cosmos overwrites operator_args' emit_datasets with RenderConfig's.
            emit_datasets=False,
            # from the manifest `stack.sh` built before Airflow started: no `dbt ls` in every parse
            # of this file (each task's process parses it); `dbt ls` (cached by cosmos) when the
            # manifest is missing or older than the project
            load_method=LoadMode.DBT_MANIFEST if RENDER_FROM_MANIFEST else LoadMode.DBT_LS,
            dbt_executable_path=str(settings.dbt_executable),
            invocation_mode=InvocationMode.SUBPROCESS,
            # watcher: the producer's `dbt build` builds the seeds and models (one sensor task per
            # model); the data tests run once, all of them, in one `dbt test` task after the last
            # model (`dbt.knowdo_transform_test`... cosmos names it `<group>_test`), which fails
            # naming the failed tests and so stops the gate and publish. (One sensor task per
            # model's tests, AFTER_EACH, doubled the run's tasks: bench/transform/README.md.)
            # Seeds are placeholders (the build seeds them; a failed seed fails the producer).
            # local: `dbt build` per node, a model and its tests in one task; a test that spans
            # models has its own task after all its parents.
            test_behavior=TestBehavior.AFTER_ALL if WATCHER else TestBehavior.BUILD,
            seed_rendering_behavior=(
                SeedRenderingBehavior.RENDER_ONLY if WATCHER else SeedRenderingBehavior.ALWAYS
            ),
            should_detach_multiple_parents_tests=not WATCHER,
        ),
    )

    @task
    def impact_marts(**context) -> dict[str, int]:
        """Evaluate the implementation registry on this run's candidate counts and write the rows
        of the impact marts dbt built empty (knowdo.impact.marts), then run their dbt tests."""
        from knowdo.pipeline import impact_marts as run_impact_marts

        return run_impact_marts(context["run_id"])

    @task
    def quality_gate(**context) -> list[str]:
        """Run the GX checkpoints (raw suites + candidate marts); fail naming what failed."""
        from airflow.sdk.exceptions import AirflowFailException

        from knowdo.pipeline import GateFailed
        from knowdo.pipeline import quality_gate as run_quality_gate

        try:
            return run_quality_gate(context["run_id"])
        except GateFailed as exc:
            raise AirflowFailException(str(exc)) from None

    @task(outlets=[MARTS_ASSET])
    def publish(**context) -> dict[str, int]:
        """Swap exactly what the gate audited into `marts`, in one transaction. What was audited
        is read from ops (the gate's records of this run, with each table's fingerprint), not from
        the gate task's return value: publish refuses a table changed since its audit."""
        from airflow.sdk.exceptions import AirflowFailException

        from knowdo.pipeline import publish_audited_marts
        from knowdo.publish import PublishRefused

        try:
            return publish_audited_marts(context["run_id"])
        except PublishRefused as exc:
            raise AirflowFailException(str(exc)) from None

    if WATCHER:
        _watch_after_the_build(dbt_build)
    gate = quality_gate()
    create_stats_functions() >> dbt_build >> impact_marts() >> gate >> publish()


knowdo_transform()
