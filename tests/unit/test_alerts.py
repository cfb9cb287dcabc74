"""Alerts: the notifiers (log, email through a real SMTP conversation, Slack through a real HTTP
webhook on localhost), dispatch, and the late-submitter and freshness rules."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from knowdo.alerts import (
    Alert,
    EmailNotifier,
    LogNotifier,
    NotifierConfigError,
    SlackNotifier,
    alert_from_task_context,
    dispatch,
    notifiers_from_settings,
)
from knowdo.config import AlertSettings, Settings
from knowdo.dag_defaults import AlertNotifier
from knowdo.feed_health import (
    FeedSubmissions,
    deadline,
    freshness_alerts,
    late_submitter_alerts,
)
from knowdo.registry import RegistryError, load_registry
from knowdo.schedules import default_due_within_days, last_day_covered

ALERT = Alert(
    "gate_failed",
    "knowdo_transform.quality_gate failed in run r1",
    "expect_column_values_to_be_between on value (1 rows)",
    about="r1",
)


class _Recorder:
    def __init__(self, name, fail=False):
        self.name, self.fail, self.sent = name, fail, []

    def send(self, alert):
        if self.fail:
            raise ConnectionRefusedError("connection refused\nsecond line")
        self.sent.append(alert)


def test_log_notifier_writes_one_clear_error(caplog):
    with caplog.at_level(logging.WARNING, logger="knowdo.alerts"):
        LogNotifier().send(ALERT)
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert (
        "ALERT [KnowDo gate failed] knowdo_transform.quality_gate failed in run r1"
        in record.getMessage()
    )
    assert "expect_column_values_to_be_between" in record.getMessage()


def test_stale_feed_alerts_are_warnings(caplog):
    with caplog.at_level(logging.WARNING, logger="knowdo.alerts"):
        LogNotifier().send(Alert("stale_feed", "source raw.x is stale (warn)", "old"))
    assert caplog.records[0].levelno == logging.WARNING


def test_dispatch_goes_on_after_a_notifier_fails(caplog):
    broken, working = _Recorder("email", fail=True), _Recorder("slack")
    delivery = dispatch(ALERT, [broken, working])
    assert working.sent == [ALERT]
    assert delivery.delivered == ["slack"]
    assert delivery.failed == {"email": "ConnectionRefusedError: connection refused"}
    assert "not sent by email" in caplog.text


ALERT_VARIABLES = (
    "KNOWDO_ALERT_NOTIFIERS",
    "KNOWDO_ALERT_SMTP_HOST",
    "KNOWDO_ALERT_SMTP_PORT",
    "KNOWDO_ALERT_SMTP_USER",
    "KNOWDO_ALERT_SMTP_PASSWORD",
    "KNOWDO_ALERT_SMTP_STARTTLS",
    "KNOWDO_ALERT_EMAIL_FROM",
    "KNOWDO_ALERT_EMAIL_TO",
    "KNOWDO_ALERT_SLACK_WEBHOOK_URL",
)


def _alert_env(monkeypatch, **values: str) -> AlertSettings:
    """The alert settings Settings reads from exactly these KNOWDO_ALERT_* variables."""
    for name in ALERT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return Settings.from_env().alerts


def test_alert_settings_default_to_the_log_only(monkeypatch):
    alerts = _alert_env(monkeypatch)
    assert alerts == AlertSettings()
    assert alerts.notifiers == ("log",) and alerts.smtp_port == 25 and not alerts.smtp_starttls
    assert [n.name for n in notifiers_from_settings(alerts)] == ["log"]


def test_alert_settings_read_every_variable(monkeypatch):
    alerts = _alert_env(
        monkeypatch,
        KNOWDO_ALERT_NOTIFIERS=" Log, EMAIL,slack,email ",
        KNOWDO_ALERT_SMTP_HOST="smtp.example.org",
        KNOWDO_ALERT_SMTP_PORT="2525",
        KNOWDO_ALERT_SMTP_USER="alerts",
        KNOWDO_ALERT_SMTP_PASSWORD="s3cret-smtp",
        KNOWDO_ALERT_SMTP_STARTTLS="yes",
        KNOWDO_ALERT_EMAIL_FROM="knowdo@example.org",
        KNOWDO_ALERT_EMAIL_TO="a@example.org, b@example.org,",
        KNOWDO_ALERT_SLACK_WEBHOOK_URL="https://hooks.example.org/s3cret-hook",
    )
    assert alerts == AlertSettings(
        notifiers=("log", "email", "slack"),
        smtp_host="smtp.example.org",
        smtp_port=2525,
        smtp_user="alerts",
        smtp_password="s3cret-smtp",
        smtp_starttls=True,
        email_from="knowdo@example.org",
        email_to=("a@example.org", "b@example.org"),
        slack_webhook_url="https://hooks.example.org/s3cret-hook",
    )
    # secrets stay out of reprs (a logged Settings must not leak them)
    assert "s3cret" not in repr(alerts) and "s3cret" not in repr(Settings.from_env())


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ("smtp", "KNOWDO_ALERT_SMTP_PORT must be a whole number, not 'smtp'"),
        ("0", r"KNOWDO_ALERT_SMTP_PORT must be a port \(1-65535\), not 0"),
        ("70000", r"KNOWDO_ALERT_SMTP_PORT must be a port \(1-65535\), not 70000"),
    ],
)
def test_a_bad_smtp_port_is_named(monkeypatch, port, message):
    with pytest.raises(ValueError, match=message):
        _alert_env(monkeypatch, KNOWDO_ALERT_SMTP_PORT=port)


def test_notifiers_from_settings_builds_each_configured_notifier(monkeypatch):
    alerts = _alert_env(
        monkeypatch,
        KNOWDO_ALERT_NOTIFIERS="log, email,slack,email",
        KNOWDO_ALERT_SMTP_HOST="smtp.example.org",
        KNOWDO_ALERT_SMTP_PORT="2525",
        KNOWDO_ALERT_SMTP_STARTTLS="1",
        KNOWDO_ALERT_EMAIL_TO="a@example.org, b@example.org",
        KNOWDO_ALERT_SLACK_WEBHOOK_URL="https://hooks.example.org/x",
    )
    notifiers = notifiers_from_settings(alerts)
    assert [n.name for n in notifiers] == ["log", "email", "slack"]
    email, slack = notifiers[1], notifiers[2]
    assert (email.host, email.port, email.sender, email.starttls) == (
        "smtp.example.org",
        2525,
        "knowdo-alerts@localhost",
        True,
    )
    assert email.recipients == ["a@example.org", "b@example.org"]
    assert email.user is None and email.password is None
    assert slack.webhook_url == "https://hooks.example.org/x"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"KNOWDO_ALERT_NOTIFIERS": "pager"}, "unknown notifier 'pager'"),
        (
            {"KNOWDO_ALERT_NOTIFIERS": "email"},
            "needs KNOWDO_ALERT_SMTP_HOST and KNOWDO_ALERT_EMAIL_TO",
        ),
        (
            {"KNOWDO_ALERT_NOTIFIERS": "email", "KNOWDO_ALERT_SMTP_HOST": "smtp.example.org"},
            "needs KNOWDO_ALERT_EMAIL_TO set",
        ),
        ({"KNOWDO_ALERT_NOTIFIERS": "slack"}, "needs KNOWDO_ALERT_SLACK_WEBHOOK_URL"),
    ],
)
def test_misconfigured_notifiers_are_named(monkeypatch, env, message):
    with pytest.raises(NotifierConfigError, match=message):
        notifiers_from_settings(_alert_env(monkeypatch, **env))


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough of RFC 5321 for smtplib to deliver one message."""

    def handle(self):
        self.wfile.write(b"220 test ESMTP\r\n")
        while line := self.rfile.readline():
            cmd = line.decode().strip()
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250 test\r\n")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                self.server.envelope.append(cmd)
                self.wfile.write(b"250 OK\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go ahead\r\n")
                body = []
                while (data := self.rfile.readline()) not in (b".\r\n", b""):
                    body.append(data.decode())
                self.server.messages.append("".join(body))
                self.wfile.write(b"250 queued\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"502 not implemented\r\n")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.messages, server.envelope = [], []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_email_notifier_delivers_the_alert(smtp_server):
    port = smtp_server.server_address[1]
    EmailNotifier("127.0.0.1", port, "knowdo@example.org", ["ops@example.org"]).send(ALERT)
    (message,) = smtp_server.messages
    assert "Subject: [KnowDo] knowdo_transform.quality_gate failed in run r1" in message
    assert "expect_column_values_to_be_between on value" in message
    assert any("ops@example.org" in e for e in smtp_server.envelope if e.upper().startswith("RCPT"))


def test_email_to_a_closed_port_fails_in_dispatch_without_raising():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    delivery = dispatch(ALERT, [EmailNotifier("127.0.0.1", port, "a@b", ["c@d"])])
    assert delivery.delivered == [] and "email" in delivery.failed


@pytest.fixture
def webhook():
    received, status = [], {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(status["code"])
            self.end_headers()
            self.wfile.write(b"ok" if status["code"] == 200 else b"invalid_token")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received, status
    server.shutdown()
    server.server_close()


def test_slack_notifier_posts_the_alert_text(webhook):
    url, received, _ = webhook
    SlackNotifier(url).send(ALERT)
    assert received == [{"text": ALERT.text()}]


def test_slack_rejection_is_reported(webhook):
    url, _, status = webhook
    status["code"] = 403
    delivery = dispatch(ALERT, [SlackNotifier(url)])
    assert delivery.failed == {
        "slack": "RuntimeError: Slack webhook answered HTTP 403: invalid_token"
    }


def _feed(
    feed_id="f",
    schedule="@monthly",
    due=45,
    start=None,
    label=None,
    received=None,
    files=1,
    name="MindBridge Ghana",
):
    """A feed as ops.feeds and ops.load_batches hold it: the registry resolves `due` (None: the
    schedule's default) and the loader the last day the latest period `start`/`label` covers."""
    if due is None:
        due = default_due_within_days(schedule)
    covered = last_day_covered(start, label, schedule)
    return FeedSubmissions(feed_id, name, schedule, due, covered, received, files)


@pytest.mark.parametrize(
    ("start", "label", "schedule", "last_day"),
    [
        (date(2025, 12, 1), "202512", "@yearly", date(2025, 12, 31)),  # DHIS2 month
        (date(2025, 10, 1), "2025Q4", "@yearly", date(2025, 12, 31)),  # DHIS2 quarter
        (date(2025, 1, 1), "GHA:2025", "@yearly", date(2025, 12, 31)),  # template year
        (date(2025, 12, 1), "KD-NGO-0042:GHA:GH-AA:2025-12", "@monthly", date(2025, 12, 31)),
        (date(2024, 4, 1), "2024-04-01/2025-03-31", "@yearly", date(2025, 3, 31)),  # NHS range
        (date(2022, 1, 1), "GHED_CHE_pc_US_SHA2011:2022", "@yearly", date(2022, 12, 31)),  # WHO
        (date(2026, 2, 1), "odd-label", "@monthly", date(2026, 2, 28)),  # by the schedule
        (None, None, "@quarterly", None),  # no periods
    ],
)
def test_last_day_covered_reads_every_formats_period_label(start, label, schedule, last_day):
    assert last_day_covered(start, label, schedule) == last_day


def test_deadline_is_the_feeds_own_due_within_days_after_one_schedule_interval():
    # a yearly DHIS2 feed with data to 2025-12-31 and 90 days: next year's file due 2027-03-31
    ministry = _feed("gha", "@yearly", 90, date(2025, 12, 1), "202512")
    assert deadline(ministry, date(2027, 3, 31)).status == "on_time"  # the boundary day
    late = deadline(ministry, date(2027, 4, 2))
    assert (late.status, late.basis, late.reference, late.due_on, late.days_late) == (
        "late",
        "period",
        date(2025, 12, 31),
        date(2027, 3, 31),
        2,
    )
    # the same data with another feed's deadline (10 days) is late much earlier
    assert (
        deadline(
            _feed("x", "@yearly", 10, date(2025, 12, 1), "202512"), date(2027, 1, 11)
        ).days_late
        == 1
    )


def test_a_feed_without_due_within_days_uses_its_schedules_default():
    quarterly = _feed("q", "@quarterly", None, date(2026, 1, 1), "2026Q1")
    # data to 2026-03-31, one quarter to 2026-06-30, then the @quarterly default of 60 days
    assert deadline(quarterly, date(2026, 8, 29)).status == "on_time"
    assert deadline(quarterly, date(2026, 8, 30)).due_on == date(2026, 8, 29)
    assert deadline(quarterly, date(2026, 8, 30)).status == "late"


def test_feeds_without_periods_are_judged_on_their_last_arrival_and_unscheduled_ones_not_at_all():
    iati = _feed("iati", "@quarterly", 60, received=date(2026, 1, 10))
    d = deadline(iati, date(2026, 6, 10))
    assert (d.status, d.basis, d.due_on) == ("late", "received", date(2026, 6, 9))
    assert (
        deadline(_feed("once", None, 45, date(2020, 1, 1), "2020"), date(2026, 1, 1)).status
        == "unscheduled"
    )
    assert deadline(_feed("silent", files=0), date(2026, 1, 1)).status == "never"


def test_late_submitter_alerts_name_the_feed_its_deadline_and_what_to_do():
    today = date(2026, 5, 20)
    feeds = [
        _feed("on_time", start=date(2026, 3, 1), label="2026-03"),
        _feed("late", start=date(2026, 1, 1), label="2026-01", name="Late NGO"),
        _feed("silent", files=0, name="Silent ARC"),
        _feed("failed_only", files=2, name="Broken Files NGO"),
        _feed("unscheduled", schedule=None),
    ]
    alerts = late_submitter_alerts(feeds, today)
    assert [(a.kind, a.about) for a in alerts] == [
        ("late_submitter", "failed_only"),
        ("late_submitter", "late"),
        ("late_submitter", "silent"),
    ]
    failed, late, silent = alerts
    # data to 2026-01-31, one month on (2026-02-28, as Postgres adds a month) + 45 days
    assert late.subject == "Late NGO (late, @monthly) is 36 days late"
    assert (
        "its data covers up to 2026-01-31; the next file was due by 2026-04-14 (one @monthly"
        " interval + 45 days, due_within_days)"
    ) in late.body
    assert silent.subject == "no data loaded yet from Silent ARC (silent, @monthly)"
    assert "ops.load_batches has no file for it" in silent.body
    assert "2 file(s) received, none loaded" in failed.body


def test_registry_due_within_days_default_and_validation(tmp_path):
    assert default_due_within_days("@monthly") == 45
    assert default_due_within_days("@yearly") == 120
    assert default_due_within_days("0 6 * * 1") == 10  # weekly cron: the @weekly default
    assert default_due_within_days("0 0 1 */3 *") == 60  # quarterly cron
    assert default_due_within_days(None) == 120

    def registry(extra):
        path = tmp_path / "registry.yml"
        path.write_text(
            "feeds:\n  - id: f\n    publisher: {name: P, kind: ngo}\n    domain: service_use\n"
            "    format: dhis2-json\n    source: {folder: x}\n" + extra
        )
        return path

    assert load_registry(registry("    schedule: '@weekly'\n"))["f"].due_within_days == 10
    assert (
        load_registry(registry("    schedule: '@weekly'\n    due_within_days: 0\n"))[
            "f"
        ].due_within_days
        == 0
    )
    with pytest.raises(RegistryError, match="feed 'f': due_within_days must be a whole number"):
        load_registry(registry("    due_within_days: soon\n"))
    with pytest.raises(RegistryError, match="schedule 'every tuesday' is neither a cron"):
        load_registry(registry("    schedule: every tuesday\n"))


def test_freshness_alerts_from_dbt_results():
    results = {
        "results": [
            {"unique_id": "source.knowdo.ops.load_batches", "status": "pass"},
            {
                "unique_id": "source.knowdo.raw.dhis2_data_values",
                "status": "warn",
                "max_loaded_at": "2025-12-01T00:00:00+00:00",
                "snapshotted_at": "2026-11-22T03:45:21+00:00",
                "max_loaded_at_time_ago_in_s": 356 * 86400.0,
                "criteria": {"warn_after": {"count": 62, "period": "day"}},
            },
            {
                "unique_id": "source.knowdo.raw.iati_activities",
                "status": "runtime error",
                "message": "relation does not exist",
            },
        ]
    }
    alerts = freshness_alerts(results)
    assert [(a.kind, a.about) for a in alerts] == [
        ("stale_feed", "raw.dhis2_data_values"),
        ("stale_feed", "raw.iati_activities"),
    ]
    assert alerts[0].subject == "source raw.dhis2_data_values is stale (warn)"
    assert "356 days old" in alerts[0].body
    assert (
        "could not be checked" in alerts[1].subject and "relation does not exist" in alerts[1].body
    )
    # a source no feed has loaded into is empty, not stale
    expected = {"raw.dhis2_data_values", "ops.load_batches"}
    assert [a.about for a in freshness_alerts(results, expected)] == ["raw.dhis2_data_values"]
    empty = {
        "results": [
            {
                "unique_id": "source.knowdo.ops.alerts",
                "status": "warn",
                "max_loaded_at": "0001-01-01T00:00:00+00:00",
            }
        ]
    }
    assert freshness_alerts(empty)[0].body.startswith("no rows with a load time (empty table")


def test_alert_from_a_failed_gate_task_context():
    ti = SimpleNamespace(
        dag_id="knowdo_transform", task_id="quality_gate", run_id="r1", log_url="http://airflow/log"
    )
    alert = alert_from_task_context(
        {"task_instance": ti, "run_id": "r1", "exception": RuntimeError("quality gate failed: x")}
    )
    assert alert.kind == "gate_failed" and alert.about == "r1"
    assert alert.subject == "knowdo_transform.quality_gate failed in run r1"
    assert (
        "quality gate failed: x" in alert.body
        and "marts keep their last good version" in alert.body
    )
    assert "log: http://airflow/log" in alert.body
    other = alert_from_task_context(
        {"task_instance": SimpleNamespace(dag_id="d", task_id="dbt.x", run_id="r2")}
    )
    assert other.kind == "task_failed"


def test_the_airflow_notifier_sends_a_failed_task_to_the_configured_notifiers(
    monkeypatch, webhook, caplog
):
    url, received, _ = webhook
    monkeypatch.setenv("KNOWDO_ALERT_NOTIFIERS", "log,slack")
    monkeypatch.setenv("KNOWDO_ALERT_SLACK_WEBHOOK_URL", url)
    with socket.socket() as s:  # a warehouse that is down: the alert is still sent, not recorded
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("KNOWDO_TRANSFORMER_URL", f"postgresql://nobody@127.0.0.1:{closed}/none")
    ti = SimpleNamespace(dag_id="knowdo_feed_health", task_id="source_freshness", run_id="r3")
    AlertNotifier().notify(
        {
            "task_instance": ti,
            "run_id": "r3",
            "exception": RuntimeError("dbt source freshness produced no results"),
        }
    )
    (message,) = received
    assert message["text"].startswith(
        "[KnowDo task failed] knowdo_feed_health.source_freshness failed in run r3"
    )
    assert "dbt source freshness produced no results" in message["text"]
    assert "alert sent but not recorded in ops.alerts" in caplog.text
