"""Alerts: the notifiers (log, email through a real SMTP conversation, Slack through a real HTTP
webhook on localhost), dispatch, and the late-submitter and freshness rules."""

from __future__ import annotations

import json
import logging
import socket
import socketserver
import threading
from datetime import UTC, datetime, timedelta
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
    freshness_alerts,
    late_submitter_alerts,
    next_due,
    notifiers_from_env,
)

ALERT = Alert("gate_failed", "knowdo_transform.quality_gate failed in run r1",
              "expect_column_values_to_be_between on value (1 rows)", about="r1")


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
    assert "ALERT [KnowDo gate failed] knowdo_transform.quality_gate failed in run r1" in record.getMessage()
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


def test_notifiers_from_env_default_is_the_log():
    assert [n.name for n in notifiers_from_env({})] == ["log"]


def test_notifiers_from_env_builds_each_configured_notifier():
    env = {"KNOWDO_ALERT_NOTIFIERS": "log, email,slack,email",
           "KNOWDO_ALERT_SMTP_HOST": "smtp.example.org", "KNOWDO_ALERT_SMTP_PORT": "2525",
           "KNOWDO_ALERT_EMAIL_TO": "a@example.org, b@example.org",
           "KNOWDO_ALERT_SLACK_WEBHOOK_URL": "https://hooks.example.org/x"}
    notifiers = notifiers_from_env(env)
    assert [n.name for n in notifiers] == ["log", "email", "slack"]
    assert notifiers[1].port == 2525 and notifiers[1].recipients == ["a@example.org", "b@example.org"]


@pytest.mark.parametrize(("env", "message"), [
    ({"KNOWDO_ALERT_NOTIFIERS": "pager"}, "unknown notifier 'pager'"),
    ({"KNOWDO_ALERT_NOTIFIERS": "email"}, "needs KNOWDO_ALERT_SMTP_HOST and KNOWDO_ALERT_EMAIL_TO"),
    ({"KNOWDO_ALERT_NOTIFIERS": "slack"}, "needs KNOWDO_ALERT_SLACK_WEBHOOK_URL"),
])
def test_misconfigured_notifiers_are_named(env, message):
    with pytest.raises(NotifierConfigError, match=message):
        notifiers_from_env(env)


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
    assert delivery.failed == {"slack": "RuntimeError: Slack webhook answered HTTP 403: invalid_token"}


def _feed(schedule, name="Ghana Health Service"):
    return SimpleNamespace(schedule=schedule, publisher_name=name)


def test_next_due_follows_the_schedule():
    last = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
    assert next_due("@monthly", last) == datetime(2026, 4, 1, tzinfo=UTC)
    assert next_due("@quarterly", last) == datetime(2026, 4, 1, tzinfo=UTC)
    assert next_due("@yearly", last) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_due("0 6 * * 1", last) == datetime(2026, 3, 16, 6, 0, tzinfo=UTC)


def test_late_submitters_are_those_past_due_plus_grace():
    now = datetime(2026, 5, 20, tzinfo=UTC)
    feeds = {"on_time": _feed("@monthly"), "late": _feed("@monthly", "Late NGO"),
             "never": _feed("@monthly", "Silent ARC"), "unscheduled": _feed(None)}
    last = {"on_time": datetime(2026, 5, 3, tzinfo=UTC), "late": datetime(2026, 3, 2, tzinfo=UTC)}
    alerts = late_submitter_alerts(feeds, last, now, grace=timedelta(days=7))
    assert [(a.about, a.kind) for a in alerts] == [("late", "late_submitter"), ("never", "late_submitter")]
    assert alerts[0].subject == "Late NGO (late, @monthly) is 49 days late"
    assert "next was due 2026-04-01" in alerts[0].body
    assert alerts[1].subject == "no file received yet from Silent ARC (never, @monthly)"
    # inside the grace period nobody is late
    assert late_submitter_alerts({"late": feeds["late"]}, last, datetime(2026, 4, 5, tzinfo=UTC),
                                 timedelta(days=7)) == []


def test_freshness_alerts_from_dbt_results():
    results = {"results": [
        {"unique_id": "source.knowdo.ops.load_batches", "status": "pass"},
        {"unique_id": "source.knowdo.raw.dhis2_data_values", "status": "warn",
         "max_loaded_at": "2025-12-01T00:00:00+00:00", "snapshotted_at": "2026-11-22T03:45:21+00:00",
         "max_loaded_at_time_ago_in_s": 356 * 86400.0, "criteria": {"warn_after": {"count": 62, "period": "day"}}},
        {"unique_id": "source.knowdo.raw.iati_activities", "status": "runtime error",
         "message": "relation does not exist"},
    ]}
    alerts = freshness_alerts(results)
    assert [(a.kind, a.about) for a in alerts] == [("stale_feed", "raw.dhis2_data_values"),
                                                   ("stale_feed", "raw.iati_activities")]
    assert alerts[0].subject == "source raw.dhis2_data_values is stale (warn)"
    assert "356 days old" in alerts[0].body
    assert "could not be checked" in alerts[1].subject and "relation does not exist" in alerts[1].body


def test_alert_from_a_failed_gate_task_context():
    ti = SimpleNamespace(dag_id="knowdo_transform", task_id="quality_gate", run_id="r1",
                         log_url="http://airflow/log")
    alert = alert_from_task_context({"task_instance": ti, "run_id": "r1",
                                     "exception": RuntimeError("quality gate failed: x")})
    assert alert.kind == "gate_failed" and alert.about == "r1"
    assert alert.subject == "knowdo_transform.quality_gate failed in run r1"
    assert "quality gate failed: x" in alert.body and "marts keep their last good version" in alert.body
    assert "log: http://airflow/log" in alert.body
    other = alert_from_task_context({"task_instance": SimpleNamespace(dag_id="d", task_id="dbt.x",
                                                                      run_id="r2")})
    assert other.kind == "task_failed"
