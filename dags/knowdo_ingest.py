"""Ingest: land and load every feed of the registry (one mapped task per feed), then announce each raw
table that received new data as an Asset, which schedules the transform DAG."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Asset, dag, task
from airflow.sdk.exceptions import AirflowSkipException

from knowdo.pipeline import raw_asset_uri, raw_tables

DEFAULT_ARGS = {"owner": "knowdo-data-engineering", "retries": 2, "retry_delay": timedelta(seconds=30)}


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

    for raw_table in raw_tables():
        asset = Asset(name=raw_table, uri=raw_asset_uri(raw_table))

        # all_done: one feed's outage (its task failed after retries) must not hold back the
        # Asset events of the feeds that loaded
        @task(task_id=f"announce_{raw_table.replace('.', '__')}", outlets=[asset], trigger_rule="all_done")
        def announce(summaries: list[dict], raw_table: str = raw_table) -> list[int]:
            """Emit the Asset event only when new batches landed in this raw table (skip otherwise)."""
            batches = [b for s in summaries if s and s["raw_table"] == raw_table for b in s["new_batches"]]
            if not batches:
                raise AirflowSkipException(f"no new data for {raw_table}")
            return batches

        announce(summaries)


knowdo_ingest()
