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

    from knowdo.feed_health import AlertNotifier

    dag = dagbag.dags["knowdo_feed_health"]
    cron = dag.timetable.expression
    assert croniter.is_valid(cron), f"schedule {cron!r} is not a cron expression"
    runs = croniter(cron)
    first = runs.get_next(float)
    assert runs.get_next(float) - first == 86400, "feed health runs once a day"
    assert dag.catchup is False and dag.max_active_runs == 1
    # no run for the time missed before unpausing (a fresh install starts on the next morning)
    assert dag.timetable.run_immediately is False
    assert {"anything_to_check", "source_freshness", "late_submitters", "notify"} == set(dag.task_ids)
    for t in dag.tasks:
        callbacks = t.on_failure_callback if isinstance(t.on_failure_callback, list) else [t.on_failure_callback]
        assert any(isinstance(c, AlertNotifier) for c in callbacks), f"{t.task_id} does not alert"
    # findings are sent only after both checks ran
    assert dag.get_task("notify").upstream_task_ids == {"source_freshness", "late_submitters"}
