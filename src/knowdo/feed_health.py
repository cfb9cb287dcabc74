"""Feed health: late submitters (each feed's own deadline) and stale sources (dbt source freshness),
alerted through the notifiers of knowdo.alerts. Run daily by the `knowdo_feed_health` DAG.

The late-submitter rule is the one the Data health dashboard shows (mart_feed_health): a feed's
data is as fresh as the last day its loaded files cover (the day its last file arrived when the
format has no periods, e.g. IATI, 360Giving); the next file covers one more schedule interval and
is due `due_within_days` after that interval ends (ops.feeds, synced from feeds/registry.yml; a feed
that does not set it gets its schedule's default, knowdo.schedules). A feed
is late once today is past that date. A feed without a schedule is not checked.

A warehouse with nothing loaded yet (a fresh install) has nothing to check: the run succeeds and
says so, rather than alerting about every feed or failing on empty sources.

Stale sources: `dbt source freshness` (dbt's own environment) over the ops tables and every raw
table a feed has loaded into. After each quality gate, `show_gate_in_feed_health` brings the gate's
outcome into the published mart_feed_health (the transform DAG's last step).
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from knowdo.alerts import Alert, raise_alert
from knowdo.config import Settings
from knowdo.schedules import next_due_on, schedule_interval

log = logging.getLogger("knowdo.feed_health")


@dataclass(frozen=True)
class FeedSubmissions:
    """What the warehouse knows about one feed of the registry (ops.feeds + ops.load_batches)."""

    feed_id: str
    publisher_name: str
    schedule: str | None
    due_within_days: int
    last_day_covered: date | None = None  # the last day of data the loaded files cover
    last_loaded_on: date | None = None  # the day the last loaded file arrived
    files_received: int = 0


@dataclass(frozen=True)
class Deadline:
    feed_id: str
    status: str  # on_time | late | never | unscheduled
    basis: str | None = None  # period | received: what the freshness is measured from
    reference: date | None = None
    due_on: date | None = None
    days_late: int = 0


def deadline(feed: FeedSubmissions, today: date) -> Deadline:
    """Is this feed's next file late today? The decision (knowdo.schedules), without I/O."""
    if schedule_interval(feed.schedule) is None:
        return Deadline(feed.feed_id, "unscheduled")
    basis, reference = (
        ("period", feed.last_day_covered)
        if feed.last_day_covered
        else ("received", feed.last_loaded_on)
    )
    if reference is None:
        return Deadline(feed.feed_id, "never")
    due_on = next_due_on(reference, feed.schedule, feed.due_within_days)
    if today > due_on:
        return Deadline(feed.feed_id, "late", basis, reference, due_on, (today - due_on).days)
    return Deadline(feed.feed_id, "on_time", basis, reference, due_on)


def late_submitter_alerts(feeds: list[FeedSubmissions], today: date) -> list[Alert]:
    """An alert for every feed that is late or has never sent a file that loaded (pure)."""
    alerts = []
    for feed in sorted(feeds, key=lambda f: f.feed_id):
        d = deadline(feed, today)
        who = f"{feed.publisher_name} ({feed.feed_id}, {feed.schedule})"
        due_days = feed.due_within_days
        if d.status == "never":
            received = (
                f"{feed.files_received} file(s) received, none loaded (see ops.load_batches"
                f" where feed_id = '{feed.feed_id}')"
                if feed.files_received
                else "ops.load_batches has no file for it"
            )
            alerts.append(
                Alert(
                    "late_submitter",
                    f"no data loaded yet from {who}",
                    f"feed {feed.feed_id} is in the registry but {received}; check"
                    " the source folder or ask the publisher.",
                    feed.feed_id,
                )
            )
        elif d.status == "late":
            covered = (
                f"its data covers up to {d.reference:%Y-%m-%d}"
                if d.basis == "period"
                else f"its last file arrived on {d.reference:%Y-%m-%d}"
            )
            alerts.append(
                Alert(
                    "late_submitter",
                    f"{who} is {d.days_late} days late",
                    f"{covered}; the next file was due by {d.due_on:%Y-%m-%d} (one {feed.schedule}"
                    f" interval + {due_days} days, due_within_days). Ask the publisher or check the"
                    " source folder.",
                    feed.feed_id,
                )
            )
    return alerts


# --- stale feeds (dbt source freshness) ---------------------------------------------------------


def freshness_alerts(sources_json: Mapping, expected: set[str] | None = None) -> list[Alert]:
    """Alerts for every source dbt found stale (warn/error) or could not check (pure: no I/O).

    With `expected` (schema.table names), a source outside it is not alerted: a raw table no
    feed loads into (e.g. MHSDS before an ARC sends it) is empty, not stale."""
    alerts = []
    for result in sources_json.get("results", []):
        status = result.get("status")
        if status == "pass":
            continue
        source = result.get("unique_id", "?").removeprefix("source.").split(".", 1)[-1]
        if expected is not None and source not in expected:
            continue
        if status in ("warn", "error"):
            age = result.get("max_loaded_at_time_ago_in_s")
            age_days = f"{age / 86400:.0f} days" if isinstance(age, int | float) else "unknown"
            criteria = result.get("criteria") or {}
            # dbt reports a table without a timestamp (empty, or its load-time column NULL) as
            # data from the year 1
            newest = (
                f"newest data {result.get('max_loaded_at')} ({age_days} old at"
                f" {result.get('snapshotted_at')})"
                if not str(result.get("max_loaded_at") or "0001").startswith("0001")
                else "no rows with a load time (empty table, or the column is NULL)"
            )
            alerts.append(
                Alert(
                    "stale_feed",
                    f"source {source} is stale ({status})",
                    f"{newest}; thresholds {json.dumps(criteria, default=str)}."
                    " A publisher may have stopped sending: see the late-submitter alerts and"
                    " ops.load_batches.",
                    source,
                )
            )
        else:
            alerts.append(
                Alert(
                    "stale_feed",
                    f"freshness of source {source} could not be checked",
                    f"dbt source freshness: {status}: {result.get('message') or ''}".strip(),
                    source,
                )
            )
    return alerts


def run_source_freshness(settings: Settings | None = None) -> dict:
    """Run `dbt source freshness` (dbt's own environment) and return its sources.json."""
    settings = settings or Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="knowdo-freshness-") as tmp:
        out = Path(tmp) / "sources.json"
        proc = subprocess.run(
            [
                str(settings.dbt_executable),
                "source",
                "freshness",
                "--project-dir",
                str(settings.dbt_project_dir),
                "--profiles-dir",
                str(settings.dbt_project_dir),
                "--target-path",
                tmp,
                "--log-path",
                tmp,
                "--output",
                str(out),
            ],
            check=False,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=settings.dbt_project_dir,
        )
        if not out.exists():  # exit code 1 only means some source is stale: read the results
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise RuntimeError("dbt source freshness produced no results: " + " | ".join(tail))
        return json.loads(out.read_text(encoding="utf-8"))


# --- reading the warehouse ---------------------------------------------------------------------

FEED_SUBMISSIONS_SQL = """
with loaded as (
    select b.feed_id, max(b.last_day_covered) as last_day_covered,
        max(l.received_at) as last_received_at
    from ops.load_batches b
    join ops.landed_files l on l.file_sha256 = b.file_sha256
    where b.status = 'loaded'
    group by b.feed_id
),
received as (
    select feed_id, count(*) as files_received from ops.load_batches group by feed_id
)
select f.feed_id, f.publisher_name, f.schedule, f.due_within_days, ld.last_day_covered,
    (ld.last_received_at at time zone 'UTC')::date as last_loaded_on,
    coalesce(r.files_received, 0) as files_received
from ops.feeds f
left join loaded ld on ld.feed_id = f.feed_id
left join received r on r.feed_id = f.feed_id
where f.in_registry
order by f.feed_id
"""


def read_feed_submissions(conn) -> list[FeedSubmissions]:
    return [FeedSubmissions(*row) for row in conn.execute(FEED_SUBMISSIONS_SQL)]


def nothing_to_check(conn) -> str | None:
    """Why there is nothing to check yet (a fresh install), or None when there is."""
    if conn.execute(
        "select to_regclass('ops.load_batches'), to_regclass('ops.feeds')"
    ).fetchone() != ("ops.load_batches", "ops.feeds"):
        return "the warehouse has no ops tables yet (run `knowdo db migrate`)"
    if conn.execute("select not exists (select 1 from ops.load_batches)").fetchone()[0]:
        return "no file has been received yet (ops.load_batches is empty)"
    if conn.execute("select not exists (select 1 from ops.feeds where in_registry)").fetchone()[0]:
        return "no feed is registered yet (ops.feeds is empty: the ingest DAG syncs it)"
    return None


# --- the daily run -----------------------------------------------------------------------------


@dataclass
class FeedHealthReport:
    checked: bool
    reason: str | None = None
    alerts: list[Alert] = field(default_factory=list)
    deadlines: list[Deadline] = field(default_factory=list)

    def summary(self) -> str:
        if not self.checked:
            return f"feed health: nothing to check: {self.reason}"
        late = sum(d.status in ("late", "never") for d in self.deadlines)
        head = (
            f"feed health: {len(self.deadlines)} feeds checked, {late} late or never loaded,"
            f" {len(self.alerts)} alert(s)"
        )
        return "\n".join([head] + [f"  - {a.subject}" for a in self.alerts])


def precheck(settings: Settings | None = None) -> str | None:
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn:
        return nothing_to_check(conn)


def check_late_submitters(
    settings: Settings | None = None, today: date | None = None
) -> tuple[list[Deadline], list[Alert]]:
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    today = today or datetime.now(UTC).date()
    with connect(settings.transformer_url) as conn:
        feeds = read_feed_submissions(conn)
    return [deadline(f, today) for f in feeds], late_submitter_alerts(feeds, today)


EXPECTED_SOURCES_SQL = """
select distinct raw_table from ops.load_batches where status = 'loaded' and raw_table is not null
union select 'ops.' || table_name from information_schema.tables where table_schema = 'ops'
"""


def check_stale_sources(settings: Settings | None = None) -> list[Alert]:
    """dbt source freshness over the ops tables and every raw table a feed has loaded into (an
    empty raw table no feed fills yet is not stale)."""
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn:
        expected = {r[0] for r in conn.execute(EXPECTED_SOURCES_SQL)}
    return freshness_alerts(run_source_freshness(settings), expected)


def send(alerts: list[Alert], settings: Settings | None = None) -> list[Alert]:
    """Dispatch each alert (not repeated within KNOWDO_ALERT_REPEAT_HOURS); returns those sent."""
    settings = settings or Settings.from_env()
    repeat = settings.alert_repeat_hours
    return [a for a in alerts if raise_alert(a, settings, repeat_hours=repeat) is not None]


def run_feed_health(
    settings: Settings | None = None, today: date | None = None, freshness: bool = True
) -> FeedHealthReport:
    """Both checks and their alerts; with nothing loaded yet, nothing is checked or alerted."""
    settings = settings or Settings.from_env()
    reason = precheck(settings)
    if reason:
        report = FeedHealthReport(False, reason)
        log.info(report.summary())
        return report
    deadlines, alerts = check_late_submitters(settings, today)
    if freshness:
        alerts = check_stale_sources(settings) + alerts
    send(alerts, settings)
    report = FeedHealthReport(True, None, alerts, deadlines)
    log.info(report.summary())
    return report


# --- Airflow -------------------------------------------------------------------------------------


def alert_to_dict(alert: Alert) -> dict:
    return {"kind": alert.kind, "subject": alert.subject, "body": alert.body, "about": alert.about}


# --- the quality gate's outcome on the Data health dashboard -----------------------------------

# mart_feed_health is built by dbt before the gate of its run has written to ops.quality_gate_runs,
# so its last_gate_* columns hold the gate of the run before. After the gate (passed or failed),
# the published table gets the same rule as the model (the latest raw-layer outcome for the raw
# table the feed loads into), now including this run's gate.
# the latest gate per feed is the view ops.feed_latest_raw_gate (055_feed_latest_raw_gate.sql),
# which mart_feed_health also reads: one rule, read at build time by dbt and again after the gate
GATE_IN_FEED_HEALTH_SQL = """
update marts.mart_feed_health m
set last_gate_status = case when g.success then 'passed' else 'failed' end,
    last_gate_run_id = g.run_id,
    last_gate_checked_at = g.checked_at,
    last_gate_published = g.published
from ops.feed_latest_raw_gate g
where g.feed_id = m.feed_id
"""


def show_gate_in_feed_health(settings: Settings | None = None) -> int | None:
    """Bring the latest quality-gate outcome into the published marts.mart_feed_health (the Data
    health dashboard's "last quality gate"); the number of feeds updated, None before the mart's
    first publish (nothing to update)."""
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    with connect(settings.transformer_url) as conn, conn.transaction():
        if conn.execute("select to_regclass('marts.mart_feed_health')").fetchone()[0] is None:
            log.info("marts.mart_feed_health is not published yet: no gate outcome to show")
            return None
        updated = conn.execute(GATE_IN_FEED_HEALTH_SQL).rowcount
    log.info("feed health: the latest quality gate shown for %s feed(s)", updated)
    return updated
