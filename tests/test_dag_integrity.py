"""Guard tests: the DAGs import cleanly and follow the house policies."""

import pytest

from tests.conftest import REPO


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_dags_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"knowdo_ingest", "knowdo_transform"} <= set(dagbag.dag_ids)


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
    ingest = dagbag.dags["knowdo_ingest"]
    emitted = {o.name for t in ingest.tasks for o in t.outlets}
    assert emitted == set(raw_tables())
