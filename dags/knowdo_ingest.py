"""Ingest: land and load every feed of the registry (one mapped task per feed), then announce each
raw table that received new data with an event on its Asset (through one AssetAlias, all at once),
which schedules the transform DAG. A task that fails after its retries alerts
(knowdo.dag_defaults)."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, AssetAlias, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from knowdo.dag_defaults import DEFAULT_ARGS
from knowdo.pipeline import raw_asset_uri

RAW_TABLES_ALIAS = AssetAlias("knowdo-raw-tables")


@dag(
    dag_id="knowdo_ingest",
    schedule="@daily",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["knowdo", "ingest"],
    doc_md=__doc__,
)
def knowdo_ingest():
    @task
    def list_feeds() -> list[str]:
        from knowdo.pipeline import list_feeds as _list_feeds

        return _list_feeds()

    @task(map_index_template="{{ task.op_kwargs['feed_id'] }}")
    def ingest_feed(feed_id: str) -> dict:
        from knowdo.pipeline import ingest_feed as _ingest_feed

        return _ingest_feed(feed_id)

    summaries = ingest_feed.expand(feed_id=list_feeds())

    # One task announces every raw table that received new batches, all at once, through an
    # AssetAlias: the events land on the raw-table Assets the transform DAG is scheduled on, and
    # arriving together they start ONE transform run (a task per table emitted them seconds apart,
    # and each wave started a run of its own). all_done: one feed's outage (its task failed after
    # retries) must not hold back the events of the feeds that loaded.
    @task(outlets=[RAW_TABLES_ALIAS], trigger_rule="all_done")
    def announce_new_raw_data(summaries: list[dict], *, outlet_events=None) -> dict[str, list[int]]:
        """Add an Asset event per raw table with new batches (skip when nothing new landed)."""
        from knowdo.pipeline import new_batches_by_raw_table

        new = new_batches_by_raw_table(summaries)
        if not new:
            raise AirflowSkipException("no new data in any raw table")
        for raw_table, batches in new.items():
            outlet_events[RAW_TABLES_ALIAS].add(
                Asset(name=raw_table, uri=raw_asset_uri(raw_table)), extra={"batches": batches}
            )
        return new

    announce_new_raw_data(summaries)


knowdo_ingest()
