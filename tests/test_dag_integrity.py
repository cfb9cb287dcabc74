"""Guard tests: the DAGs import cleanly and follow the house policies."""

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"knowdo_ingest", "knowdo_transform", "knowdo_feed_health"} <= set(dagbag.dag_ids)


def test_every_dag_has_tags_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            assert t.retries >= 2, f"{dag_id}.{t.task_id} retries {t.retries} < 2"


def _asset_names(condition) -> set[str]:
    if hasattr(condition, "objects"):  # AssetAny / AssetAll
        return set().union(*(_asset_names(o) for o in condition.objects))
    return {condition.name}


def test_transform_is_scheduled_on_the_raw_assets(dagbag):
    from knowdo.pipeline import raw_tables

    dag = dagbag.dags["knowdo_transform"]
    assert _asset_names(dag.timetable.asset_condition) == set(raw_tables())
    # any one raw table with new data starts a run (one AssetAny, not a fold of `|`)
    condition = dag.timetable.asset_condition
    assert type(condition).__name__ == "AssetAny", type(condition)
    assert all(type(o).__name__ == "Asset" for o in condition.objects), "nested conditions"
    # the ingest DAG adds the raw-table events through one AssetAlias, all at once (one run)
    ingest = dagbag.dags["knowdo_ingest"]
    outlets = [(t.task_id, type(o).__name__, o.name) for t in ingest.tasks for o in t.outlets]
    assert outlets == [("announce_new_raw_data", "AssetAlias", "knowdo-raw-tables")]


def test_new_batches_are_grouped_by_raw_table_and_failed_feeds_ignored():
    from knowdo.pipeline import new_batches_by_raw_table

    summaries = [
        {"raw_table": "raw.b", "new_batches": [7]},
        None,  # a feed whose task failed after its retries
        {"raw_table": "raw.a", "new_batches": []},
        {"raw_table": "raw.b", "new_batches": [3]},
    ]
    assert new_batches_by_raw_table(summaries) == {"raw.b": [3, 7]}
    assert new_batches_by_raw_table([None, {"raw_table": "raw.a", "new_batches": []}]) == {}


def test_feed_health_runs_daily_on_a_cron_without_catchup_and_alerts_on_failure(dagbag):
    from croniter import croniter

    dag = dagbag.dags["knowdo_feed_health"]
    cron = dag.timetable.expression
    assert croniter.is_valid(cron), f"schedule {cron!r} is not a cron expression"
    runs = croniter(cron)
    first = runs.get_next(float)
    assert runs.get_next(float) - first == 86400, "feed health runs once a day"
    assert dag.catchup is False and dag.max_active_runs == 1
    # no run for the time missed before unpausing (a fresh install starts on the next morning)
    assert dag.timetable.run_immediately is False
    assert {"anything_to_check", "source_freshness", "late_submitters", "notify"} == set(
        dag.task_ids
    )
    # nothing to check (a fresh install): one short-circuit task skips both checks and notify
    from airflow.providers.standard.operators.python import ShortCircuitOperator

    first = dag.get_task("anything_to_check")
    assert isinstance(first, ShortCircuitOperator)
    assert first.downstream_task_ids == {"source_freshness", "late_submitters"}
    assert first.ignore_downstream_trigger_rules, "notify must be skipped too"
    # findings are sent only after both checks ran
    assert dag.get_task("notify").upstream_task_ids == {"source_freshness", "late_submitters"}


# --- issue 14: dbt runs once per transform run (cosmos' watcher mode) -----------------------------
def _dbt_tasks(dag):
    return [t for t in dag.tasks if t.task_id.startswith("dbt.")]


def test_transform_runs_dbt_once_with_one_task_per_model(dagbag):
    """Watcher mode (the default): one producer task runs `dbt build` (seeds and models); every
    model keeps a task of its own (a sensor on the producer's result for that model) and none starts
    dbt per node; the data tests run once, in one `dbt test` task after the last model."""
    import os

    from airflow.providers.standard.operators.empty import EmptyOperator
    from cosmos.operators.local import DbtTestLocalOperator
    from cosmos.operators.watcher import DbtConsumerWatcherSensor, DbtProducerWatcherOperator

    if os.environ.get("KNOWDO_DBT_EXECUTION_MODE", "watcher") != "watcher":
        pytest.fail("this test checks the default mode: unset KNOWDO_DBT_EXECUTION_MODE")
    dag = dagbag.dags["knowdo_transform"]
    tasks = _dbt_tasks(dag)
    producers = [t for t in tasks if isinstance(t, DbtProducerWatcherOperator)]
    assert [t.task_id for t in producers] == ["dbt.dbt_producer_watcher"]
    assert "build" in producers[0].base_cmd
    tests = [t for t in tasks if isinstance(t, DbtTestLocalOperator)]
    assert len(tests) == 1, f"the data tests must run in one task: {[t.task_id for t in tests]}"
    sensors = [t for t in tasks if isinstance(t, DbtConsumerWatcherSensor)]
    placeholders = [t for t in tasks if isinstance(t, EmptyOperator)]
    assert {t.task_id for t in placeholders} - {"dbt.dbt_producer_watcher_done"}, "no seeds shown"
    assert all(t.task_id.endswith("_seed") for t in placeholders if "producer" not in t.task_id)
    rest = set(tasks) - set(producers) - set(tests) - set(sensors) - set(placeholders)
    assert rest == set(), f"tasks that would start dbt themselves: {[t.task_id for t in rest]}"
    models = {t.task_id for t in sensors}
    for model in ("fct_service_use", "mart_know_do_gap", "int_service_use__dhis2_region_cells"):
        assert f"dbt.{model}_run" in models, f"no task of its own for model {model}"
    # every sensor watches the one producer; the tests run after every model
    assert {t.producer_task_id for t in sensors} == {"dbt.dbt_producer_watcher"}
    assert models <= tests[0].get_flat_relative_ids(upstream=True)
    # the producer's dbt build leaves the tests to the test task
    assert "--resource-type" in producers[0].dbt_cmd_flags
    assert "test" not in producers[0].dbt_cmd_flags


@pytest.mark.parametrize("mode", ["watcher", "local"])
def test_no_dbt_task_emits_assets_in_either_mode(mode):
    """issue 12: no cosmos task registers an Asset per dbt model (concurrent first emissions on a
    fresh Airflow database raced to insert the same Asset; the loser's task was set failed without
    a retry). cosmos takes the switch from RenderConfig, overwriting operator_args' own: checked on
    the tasks as parsed in each mode (a fresh process, as the setting is read at import)."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "from cosmos.operators.base import AbstractDbtBase\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "dag = bag.dags['knowdo_transform']\n"
        "print(json.dumps({t.task_id: t.emit_datasets for t in dag.tasks\n"
        "    if isinstance(t, AbstractDbtBase)}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "KNOWDO_DBT_EXECUTION_MODE": mode},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    emits = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(emits) > 40, f"expected the sample's dbt tasks in {mode} mode, got {len(emits)}"
    assert [t for t, on in emits.items() if on] == [], f"{mode}: dbt tasks emitting Assets"


def test_model_tasks_start_in_the_triggerer_as_the_scheduler_reads_them(dagbag):
    """Every model's sensor is started by the scheduler in the triggerer (start_from_trigger) with
    KnowDo's trigger, which resumes a failed/retried model in cosmos' `execute` on a worker; read
    back from the serialized DAG (what the scheduler and triggerer use), not the Python objects."""
    from airflow.serialization.serialized_objects import BaseSerialization, DagSerialization
    from cosmos.operators.watcher import DbtRunWatcherOperator

    from knowdo.dbt_watcher import (
        RESUME_METHOD,
        TRIGGER_CLASSPATH,
        ModelResultSensor,
        ModelResultTrigger,
    )

    dag = dagbag.dags["knowdo_transform"]
    models = [t for t in _dbt_tasks(dag) if isinstance(t, DbtRunWatcherOperator)]
    assert len(models) > 40, f"expected the sample's models, got {len(models)}"
    scheduled = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    for model in models:
        task = scheduled.get_task(model.task_id)
        assert task.start_from_trigger is True, f"{model.task_id} would go to a worker"
        args = task.start_trigger_args
        assert (args.trigger_cls, args.next_method) == (TRIGGER_CLASSPATH, RESUME_METHOD)
        kwargs = BaseSerialization.deserialize(args.trigger_kwargs)  # stored encoded
        assert kwargs["model_unique_id"] == model.model_unique_id
        assert kwargs["producer_task_id"] == "dbt.dbt_producer_watcher"
        ModelResultTrigger(**kwargs)  # the triggerer can build it from its kwargs
        # the worker resumes the task in this method of the operator it parsed
        assert isinstance(model, ModelResultSensor) and callable(getattr(model, RESUME_METHOD))
    others = [t for t in dag.tasks if t not in models]
    assert not [t.task_id for t in others if t.start_from_trigger], "only the model sensors"


def _model_trigger(
    node_status, try_number: int, clear_number: int, producer_status: str = "failed", model=""
):
    """KnowDo's trigger for one model's task, with the producer's XCom and task state replaced by
    `node_status` and `producer_status` (the trigger's decision only), in a run cleared
    `clear_number` times."""
    from types import SimpleNamespace

    from knowdo.dbt_watcher import ModelResultTrigger

    class Trigger(ModelResultTrigger):
        async def _get_node_status(self):
            return node_status

        async def get_xcom_val(self, key):  # cosmos' own loop after a failed status
            return {"status": node_status} if key.endswith("_status") else None

        async def _get_producer_task_status(self):
            return producer_status

    model = model or "fct_service_use"
    unique_id = f"model.knowdo.{model}"
    trigger = Trigger(**_TRIGGER_KWARGS, model_unique_id=unique_id, poke_interval=0.01)
    dag_run = SimpleNamespace(clear_number=clear_number)
    trigger.task_instance = SimpleNamespace(
        dag_id="knowdo_transform",
        task_id=f"dbt.{model}_run",
        run_id="manual__1",
        map_index=-1,
        try_number=try_number,
        get_template_context=lambda: {"dag_run": dag_run},
    )
    return trigger


_TRIGGER_KWARGS = {
    "producer_task_id": "dbt.dbt_producer_watcher",
    "dag_id": "knowdo_transform",
    "run_id": "",
    "map_index": -1,
}


def _first_event(trigger):
    import asyncio

    async def first():
        async for event in trigger.run():
            return event

    return asyncio.run(asyncio.wait_for(first(), 30))


@pytest.mark.parametrize(
    ("status", "clear_number", "expected"),
    [
        # an automatic retry (the sensor's task failed, e.g. the database went away while it read
        # the result) of a model the build made: not rebuilt (a view's rebuild drops its downstream
        # views with CASCADE, and their tasks have ended)
        ("success", 0, "TaskSuccessEvent"),
        # a retry of a model that failed in the build: rerun with dbt on a worker
        ("failed", 0, "rerun"),
        ("skipped", 0, "rerun"),
        # a cleared task (the run's clear_number counts it): rerun whatever the stale result says
        ("success", 1, "rerun"),
        ("failed", 1, "rerun"),
    ],
)
def test_a_retried_model_task_ends_or_reruns_by_the_build_result_and_the_runs_clears(
    status, clear_number, expected
):
    """try_number > 1: a retry in a run never cleared ends with success when the model succeeded
    in the producer's build, else the worker reruns the model with dbt; in a cleared run the
    producer's result is stale and the worker reruns it. A task with no task instance is refused
    with a message naming the node."""
    from airflow.triggers.base import TaskSuccessEvent

    from knowdo.dbt_watcher import RERUN, ModelResultTrigger

    trigger = _model_trigger(status, try_number=2, clear_number=clear_number)
    event = _first_event(trigger)
    if expected == "TaskSuccessEvent":
        assert isinstance(event, TaskSuccessEvent)
    else:
        assert not isinstance(event, TaskSuccessEvent)
        assert event.payload == {"status": RERUN, "try_number": 2}
    assert trigger.run_id == "manual__1"

    orphan = ModelResultTrigger(**_TRIGGER_KWARGS, model_unique_id="model.knowdo.fct_service_use")
    orphan.task_instance = None
    with pytest.raises(RuntimeError, match="model.knowdo.fct_service_use"):
        _first_event(orphan)


@pytest.mark.parametrize(
    ("status", "clear_number", "expected"),
    [
        ("success", 0, "TaskSuccessEvent"),
        ("success", 1, "TaskSuccessEvent"),
        # a model downstream of a failed one, first run after its upstream was fixed and cleared
        # with its downstream: dbt's skip in the build is stale, rerun it
        ("failed", 1, "rerun"),
        ("skipped", 1, "rerun"),
        # the build's own failure, in a run never cleared: cosmos' sensor reports it on a worker
        ("failed", 0, "failed"),
    ],
)
def test_a_first_try_ends_or_resumes_by_the_build_result_and_the_runs_clears(
    status, clear_number, expected
):
    """try 1: the model's result in the producer's build decides; a model that did not succeed
    in the build of a run that was cleared since is rerun with dbt on a worker, not failed with the
    stale result. (The producer's XCom read is replaced by the status: the trigger's decision only.)
    """
    from airflow.triggers.base import TaskSuccessEvent

    from knowdo.dbt_watcher import RERUN

    trigger = _model_trigger(
        status,
        try_number=1,
        clear_number=clear_number,
        model="mart_mental_health_funding_share",
    )
    event = _first_event(trigger)
    if expected == "TaskSuccessEvent":
        assert isinstance(event, TaskSuccessEvent)
    elif expected == RERUN:
        assert event.payload == {"status": RERUN, "try_number": 1}
    else:
        assert event.payload["status"] == expected, event.payload


def test_a_model_task_fails_at_once_when_the_build_never_ran():
    """A task before the producer failed (create_stats_functions): the producer is upstream_failed
    and no result will come. The model's trigger says so at once (cosmos' loop would wait until the
    task's timeout) and the task fails on the worker naming the cause."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from knowdo.dbt_watcher import PRODUCER_DID_NOT_RUN, ModelResultSensor

    trigger = _model_trigger(None, try_number=1, clear_number=0, producer_status="upstream_failed")
    event = _first_event(trigger)
    assert event.payload == {"status": PRODUCER_DID_NOT_RUN}
    sensor = SimpleNamespace(producer_task_id="dbt.dbt_producer_watcher")  # the method's needs
    with pytest.raises(AirflowFailException, match="did not start because a task before it"):
        ModelResultSensor.resume_from_trigger(sensor, {}, event.payload)


def test_transform_renders_from_the_parsed_manifest():
    """stack.sh builds the manifest before Airflow starts: the DAG file does not run `dbt ls` each
    time it is parsed (every task's process parses it); a manifest older than the project is not
    used."""
    import importlib.util
    import os
    import time

    from knowdo.dbt_operations import manifest_is_current
    from tests.conftest import REPO as repo

    spec = importlib.util.spec_from_file_location(
        "_transform_dag", repo / "dags/knowdo_transform.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = repo / "dbt_project" / "models"
    newest = max(p.stat().st_mtime for p in model.rglob("*.sql"))
    old = newest - 3600
    module.RENDER_MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    fake = module.RENDER_MANIFEST.with_name("manifest.test-stale.json")
    fake.write_text("{}")
    assert not manifest_is_current(fake.with_name("missing.json"), repo / "dbt_project")
    try:
        os.utime(fake, (old, old))
        assert not manifest_is_current(fake, repo / "dbt_project")
        later = time.time() + 3600
        os.utime(fake, (later, later))
        assert manifest_is_current(fake, repo / "dbt_project")
    finally:
        fake.unlink()


def test_stats_functions_are_created_once_before_dbt(dagbag):
    """Not in an on-run-start hook of every dbt invocation (issue 14): one task before the
    models."""
    import yaml

    from tests.conftest import REPO as repo

    project = yaml.safe_load((repo / "dbt_project" / "dbt_project.yml").read_text())
    assert not project.get("on-run-start"), "the stats functions must not be created in a dbt hook"
    dag = dagbag.dags["knowdo_transform"]
    create = dag.get_task("create_stats_functions")
    dbt_ids = {t.task_id for t in _dbt_tasks(dag)}
    assert dbt_ids <= create.get_flat_relative_ids(upstream=False), (
        "a dbt task runs before the functions exist"
    )
    # the gate audits only after every dbt task, and publish only after the gate
    gate = dag.get_task("quality_gate")
    assert dbt_ids <= gate.get_flat_relative_ids(upstream=True)
    assert dag.get_task("publish").upstream_task_ids == {"quality_gate"}


def _callbacks(task) -> list:
    cb = task.on_failure_callback
    return cb if isinstance(cb, list) else [cb]


def test_every_task_of_every_dag_alerts_on_failure_through_the_one_notifier(dagbag):
    """README: every failed task alerts. One mechanism (knowdo.dag_defaults.AlertNotifier, in the
    shared DEFAULT_ARGS); cosmos appends its own callback to its producer's (keeping its results
    for a retry), ours stays."""
    from knowdo.dag_defaults import AlertNotifier

    assert {"knowdo_ingest", "knowdo_transform", "knowdo_feed_health"} <= set(dagbag.dags)
    for dag_id, dag in dagbag.dags.items():
        assert dag.tasks, dag_id
        for t in dag.tasks:
            notifiers = [c for c in _callbacks(t) if isinstance(c, AlertNotifier)]
            assert len(notifiers) == 1, (
                f"{dag_id}.{t.task_id}: {len(notifiers)} AlertNotifier(s) in on_failure_callback"
                f" {_callbacks(t)} (expected exactly one, from knowdo.dag_defaults.DEFAULT_ARGS)"
            )
            others = [
                c
                for c in _callbacks(t)
                if c is not None
                and not isinstance(c, AlertNotifier)
                and not getattr(c, "__module__", "").startswith("cosmos")
            ]
            assert others == [], f"{dag_id}.{t.task_id}: a second failure mechanism {others}"


def test_no_dag_file_defines_its_own_default_args_or_callbacks():
    """One shared default_args: the DAG files import it (a DAG may override the retry delay)."""
    for path in sorted((REPO / "dags").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "from knowdo.dag_defaults import DEFAULT_ARGS" in text, path.name
        assert "on_failure_callback" not in text, f"{path.name} sets a failure callback itself"
        assert "DEFAULT_ARGS = {" not in text, f"{path.name} defines its own default_args"


def test_the_dbt_execution_mode_setting_is_checked():
    import os

    from knowdo.config import Settings

    old = os.environ.get("KNOWDO_DBT_EXECUTION_MODE")
    try:
        os.environ["KNOWDO_DBT_EXECUTION_MODE"] = "LOCAL"
        assert Settings.from_env().dbt_execution_mode == "local"
        os.environ["KNOWDO_DBT_EXECUTION_MODE"] = "kubernetes"
        with pytest.raises(
            ValueError, match="KNOWDO_DBT_EXECUTION_MODE='kubernetes' is not one of watcher, local"
        ):
            Settings.from_env()
    finally:
        if old is None:
            os.environ.pop("KNOWDO_DBT_EXECUTION_MODE", None)
        else:
            os.environ["KNOWDO_DBT_EXECUTION_MODE"] = old
