"""What the Airflow DAGs do, as plain functions (the DAG files only wire these together)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from knowdo.config import Settings
from knowdo.formats import FORMATS

log = logging.getLogger(__name__)


def raw_tables() -> list[str]:
    """Every raw table a format can fill: one Airflow Asset each (static, no I/O)."""
    return sorted({spec.raw_table for spec in FORMATS.values()})


def raw_asset_uri(raw_table: str) -> str:
    schema, table = raw_table.split(".")
    return f"knowdo://warehouse/{schema}/{table}"


def new_batches_by_raw_table(summaries: list[dict | None]) -> dict[str, list[int]]:
    """{raw table: new batch ids} from the ingest tasks' summaries (a failed feed has none)."""
    new: dict[str, list[int]] = {}
    for summary in summaries:
        if summary and summary.get("new_batches"):
            new.setdefault(summary["raw_table"], []).extend(summary["new_batches"])
    return {table: sorted(batches) for table, batches in sorted(new.items())}


def list_feeds(settings: Settings | None = None) -> list[str]:
    """The registry's feed ids, after mirroring the registry into ops.feeds."""
    from knowdo.db import connect
    from knowdo.registry import load_registry, sync_to_warehouse

    settings = settings or Settings.from_env()
    feeds = load_registry(settings.feeds_file)
    with connect(settings.warehouse_url) as conn:
        sync_to_warehouse(conn, feeds)
    return sorted(feeds)


def ingest_feed(feed_id: str, settings: Settings | None = None) -> dict:
    """Land and load every file waiting for one feed. Bad files are recorded, never raised.

    Returns a summary per file; raises only when the warehouse itself is unreachable (so Airflow
    retries), never because a publisher sent a bad file (that is recorded for inspection instead).
    """
    from knowdo.db import connect
    from knowdo.loading import ingest_file
    from knowdo.registry import load_registry

    settings = settings or Settings.from_env()
    feed = load_registry(settings.feeds_file)[feed_id]
    from knowdo.sources import waiting_files

    files = waiting_files(feed, settings.inbox_dir, settings.local_dir / "downloads")
    results = []
    with connect(settings.warehouse_url) as conn:
        for path in files:
            result = ingest_file(conn, feed, path, settings.landing_dir)
            results.append(asdict(result))
            if result.status == "failed":
                log.error(
                    "%s: file rejected (batch %s): %s — kept in the landing zone as %s",
                    path.name,
                    result.batch_id,
                    result.error,
                    result.sha256,
                )
            elif result.already_loaded:
                log.info(
                    "%s: already received (batch %s), nothing to do", path.name, result.batch_id
                )
            else:
                log.info(
                    "%s: batch %s loaded %s rows, rejected %s%s",
                    path.name,
                    result.batch_id,
                    result.rows_loaded,
                    result.rows_rejected,
                    f" (see ops.rejected_rows where batch_id = {result.batch_id})"
                    if result.rows_rejected
                    else "",
                )
    if not files:
        log.info("feed %s: no files waiting (%s)", feed_id, feed.source)
    new = [r for r in results if not r["already_loaded"] and r["status"] == "loaded"]
    return {
        "feed_id": feed_id,
        "raw_table": FORMATS[feed.format].raw_table,
        "files": len(results),
        "new_batches": [r["batch_id"] for r in new],
        "failed_files": [
            r["file_name"] for r in results if r["status"] == "failed" and not r["already_loaded"]
        ],
    }


def impact_marts(
    run_id: str, settings: Settings | None = None, env: dict[str, str] | None = None
) -> dict[str, int]:
    """The transform's impact step (issue 15): evaluate the implementation registry on this run's
    candidate counts, write the rows of the two impact marts dbt built empty, then run their dbt
    tests (a failed test fails the step, so the gate never audits them)."""
    from knowdo.dbt_operations import DAG_PROFILE_FLAGS, run_dbt
    from knowdo.impact.marts import DBT_SELECTOR, refresh

    settings = settings or Settings.from_env()
    counts = refresh(settings, run_id)
    run_dbt(["test", "--select", DBT_SELECTOR, *DAG_PROFILE_FLAGS], settings, env=env)
    return counts


class GateFailed(RuntimeError):
    """The quality gate found failed expectations; the message names them (marts stay as they
    were)."""


def quality_gate(run_id: str) -> list[str]:
    """Run the GX checkpoints (raw suites + candidate marts) and record the outcome in ops.

    Returns the audited mart tables; raises GateFailed naming the failed expectations.
    """
    from knowdo.feed_health import show_gate_in_feed_health
    from knowdo.quality import record_gate, run_gate

    result = run_gate("marts_candidate")
    print(result.summary())  # the Data Docs location is its last line
    record_gate(result, run_id, published=False)
    if not result.success:
        # nothing is published, but the published feed-health mart says this run's gate failed
        try:
            show_gate_in_feed_health()
        except Exception as exc:  # noqa: BLE001 — must not hide the gate failure it is about
            log.error("the failed gate could not be shown in marts.mart_feed_health: %s", exc)
        raise GateFailed(
            "quality gate failed: marts keep their last good version. Failed: "
            + ", ".join(result.failed_expectations or ["(see notes)"])
            + "\n"
            + result.summary()
        )
    return result.mart_tables()


def publish_audited_marts(run_id: str) -> dict[str, int]:
    """Swap exactly what the gate audited in `run_id` into `marts`, in one transaction."""
    from knowdo.feed_health import show_gate_in_feed_health
    from knowdo.publish import publish_audited
    from knowdo.quality import mark_published

    counts = publish_audited(run_id)
    mark_published(run_id)
    # mart_feed_health was built before this run's gate: it gets the gate's outcome now
    show_gate_in_feed_health()
    print(f"published: {counts}")
    return counts


def main(argv: list[str] | None = None) -> int:
    """`knowdo gate-and-publish --run-id ID`: the transform DAG's last two tasks, for a warehouse
    rebuilt by `dbt build` outside Airflow (a failed gate alerts like the DAG does)."""
    import argparse

    from knowdo.alerts import Alert, raise_alert
    from knowdo.publish import PublishRefused

    parser = argparse.ArgumentParser(prog="knowdo gate-and-publish")
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args(argv)
    try:
        quality_gate(args.run_id)
        publish_audited_marts(args.run_id)
    except (GateFailed, PublishRefused) as exc:
        print(exc)
        raise_alert(
            Alert(
                "gate_failed",
                f"quality gate failed in run {args.run_id}",
                f"{str(exc).splitlines()[0]}\nmarts keep their last good version; see "
                f"ops.quality_gate_runs where run_id = '{args.run_id}'.",
                about=args.run_id,
            )
        )
        return 1
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
