"""Feed health, every morning: stale sources (dbt source freshness) and late submitters (each feed's
own deadline, `due_within_days` in the registry), sent to the alert notifiers
(KNOWDO_ALERT_NOTIFIERS: log, email, slack) and recorded in ops.alerts.

Findings never fail the run (a late publisher is news, not a broken pipeline); a check that cannot
run fails its task and the shared failure notifier (knowdo.dag_defaults) says so. On a fresh install
with nothing loaded, `anything_to_check` says why and skips the checks (a short-circuit), and the
run succeeds. Logic: knowdo.feed_health."""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import dag, task

from knowdo.dag_defaults import DEFAULT_ARGS


@dag(
    dag_id="knowdo_feed_health",
    # after the ingest DAG's midnight run, so the day's files are in
    schedule="30 6 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retry_delay": timedelta(minutes=2)},
    tags=["knowdo", "feed-health", "alerts"],
    doc_md=__doc__,
)
def knowdo_feed_health():
    @task.short_circuit
    def anything_to_check() -> bool:
        """Go on when there is data to check; otherwise say why not and skip the checks."""
        from knowdo.feed_health import precheck

        reason = precheck()
        print(f"feed health: nothing to check: {reason}" if reason else "feed health: checking")
        return reason is None

    @task
    def source_freshness() -> list[dict]:
        """dbt source freshness (dbt's own environment) over ops and every raw table fed so far."""
        from knowdo.feed_health import alert_to_dict, check_stale_sources

        alerts = check_stale_sources()
        print(f"{len(alerts)} stale source(s)" + "".join(f"\n  - {a.subject}" for a in alerts))
        return [alert_to_dict(a) for a in alerts]

    @task
    def late_submitters(data_interval_end=None) -> list[dict]:
        """Each feed's next file against its own deadline, as of the run's date (reruns agree)."""
        from knowdo.feed_health import alert_to_dict, check_late_submitters

        deadlines, alerts = check_late_submitters(
            today=data_interval_end.date() if data_interval_end else None
        )
        late = [d for d in deadlines if d.status in ("late", "never")]
        print(
            f"{len(deadlines)} feeds checked, {len(late)} late or never loaded"
            + "".join(f"\n  - {a.subject}" for a in alerts)
        )
        return [alert_to_dict(a) for a in alerts]

    @task
    def notify(stale: list[dict], late: list[dict]) -> int:
        """Send every finding through the notifiers (each repeated at most once a day)."""
        from knowdo.alerts import Alert
        from knowdo.feed_health import send

        findings = [Alert(**a) for a in stale + late]
        sent = send(findings)
        print(
            f"{len(findings)} finding(s), {len(sent)} alert(s) sent"
            f" ({len(findings) - len(sent)} already sent in the repeat window)"
        )
        return len(sent)

    stale, late = source_freshness(), late_submitters()
    anything_to_check() >> [stale, late]
    notify(stale, late)


knowdo_feed_health()
