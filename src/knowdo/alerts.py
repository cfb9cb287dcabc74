"""Alerts: a failed quality gate, a stale feed or a late submitter, sent to pluggable notifiers.

Notifiers are chosen by `KNOWDO_ALERT_NOTIFIERS` (comma-separated; default `log`), read with the
other settings into `knowdo.config.Settings.alerts`:

- `log`    the task log / process log, always on (an alert is never only somewhere else)
- `email`  SMTP with the standard library (`KNOWDO_ALERT_SMTP_HOST`, `_PORT` (25), `_USER`,
           `_PASSWORD`, `_STARTTLS` (1/0), `KNOWDO_ALERT_EMAIL_FROM`, `KNOWDO_ALERT_EMAIL_TO`).
           smtplib rather than Airflow's SmtpNotifier: the feed-health checks also run outside a
           task (CLI, tests), where an Airflow connection and task context are not available.
- `slack`  an incoming webhook (`KNOWDO_ALERT_SLACK_WEBHOOK_URL`), posted with requests (the Slack
           provider is not installed; its notifier would need an Airflow connection too).

A notifier that fails is logged and reported, never raised: an alert must not hide the failure it is
about. Every alert is recorded in ops.alerts; stale-feed and late-submitter alerts about the same
feed are not repeated within `KNOWDO_ALERT_REPEAT_HOURS` (24).

This module knows how to send and record an alert, not what is worth one: the rules (late
submitters, stale sources) live in knowdo.feed_health, the Airflow failure notifier every DAG
shares in knowdo.dag_defaults; both import from here, never the other way.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Protocol

from knowdo.config import AlertSettings, Settings

log = logging.getLogger("knowdo.alerts")


@dataclass(frozen=True)
class Alert:
    kind: str
    subject: str
    body: str
    about: str | None = None  # the feed, source or DAG run the alert is about (for de-duplication)

    def text(self) -> str:
        return f"[KnowDo {self.kind.replace('_', ' ')}] {self.subject}\n{self.body}"


class Notifier(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class NotifierConfigError(ValueError):
    """KNOWDO_ALERT_NOTIFIERS names a notifier that is unknown or not configured."""


class LogNotifier:
    name = "log"

    def __init__(self, logger: logging.Logger | None = None):
        self.logger = logger or log

    def send(self, alert: Alert) -> None:
        level = (
            logging.ERROR
            if alert.kind in ("gate_failed", "task_failed", "db_outage", "stalled_run")
            else logging.WARNING
        )
        self.logger.log(level, "ALERT %s", alert.text())


@dataclass
class EmailNotifier:
    host: str
    port: int
    sender: str
    recipients: list[str]
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    name: str = "email"

    def send(self, alert: Alert) -> None:
        msg = EmailMessage()
        msg["Subject"] = f"[KnowDo] {alert.subject}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(alert.text())
        with smtplib.SMTP(self.host, self.port, timeout=20) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(msg)


@dataclass
class SlackNotifier:
    webhook_url: str
    name: str = "slack"

    def send(self, alert: Alert) -> None:
        import requests

        response = requests.post(self.webhook_url, json={"text": alert.text()}, timeout=20)
        if response.status_code >= 300:
            raise RuntimeError(
                f"Slack webhook answered HTTP {response.status_code}: {response.text[:200]}"
            )


def notifiers_from_settings(alerts: AlertSettings | None = None) -> list[Notifier]:
    """The notifiers `KNOWDO_ALERT_NOTIFIERS` asks for (read into `Settings.alerts`), the log always
    first; a notifier without what it needs, or an unknown one, raises NotifierConfigError."""
    alerts = alerts or Settings.from_env().alerts
    notifiers: list[Notifier] = [LogNotifier()]
    for name in alerts.notifiers:
        if name == "log":
            continue
        if name == "email":
            missing = [
                var
                for var, value in (
                    ("KNOWDO_ALERT_SMTP_HOST", alerts.smtp_host),
                    ("KNOWDO_ALERT_EMAIL_TO", alerts.email_to),
                )
                if not value
            ]
            if missing:
                raise NotifierConfigError(f"the email notifier needs {' and '.join(missing)} set")
            notifiers.append(
                EmailNotifier(
                    host=alerts.smtp_host,
                    port=alerts.smtp_port,
                    sender=alerts.email_from,
                    recipients=list(alerts.email_to),
                    user=alerts.smtp_user or None,
                    password=alerts.smtp_password or None,
                    starttls=alerts.smtp_starttls,
                )
            )
        elif name == "slack":
            if not alerts.slack_webhook_url:
                raise NotifierConfigError(
                    "the slack notifier needs KNOWDO_ALERT_SLACK_WEBHOOK_URL set"
                )
            notifiers.append(SlackNotifier(alerts.slack_webhook_url))
        else:
            raise NotifierConfigError(
                f"unknown notifier '{name}' in KNOWDO_ALERT_NOTIFIERS (known: log, email, slack)"
            )
    return notifiers


@dataclass
class Delivery:
    delivered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def dispatch(alert: Alert, notifiers: list[Notifier]) -> Delivery:
    """Send the alert through every notifier; one failing does not stop the others."""
    delivery = Delivery()
    for notifier in notifiers:
        try:
            notifier.send(alert)
            delivery.delivered.append(notifier.name)
        except Exception as exc:  # noqa: BLE001 — an alert must never raise over what it reports
            reason = _first_line(exc)
            delivery.failed[notifier.name] = reason
            log.error("alert '%s' not sent by %s: %s", alert.subject, notifier.name, reason)
    return delivery


def _notifiers_or_log(alerts: AlertSettings) -> list[Notifier]:
    try:
        return notifiers_from_settings(alerts)
    except NotifierConfigError as exc:
        log.error("alert notifiers misconfigured (%s): sending to the log only", exc)
        return [LogNotifier()]


def raise_alert(
    alert: Alert,
    settings: Settings | None = None,
    notifiers: list[Notifier] | None = None,
    repeat_hours: float | None = None,
) -> Delivery | None:
    """Dispatch and record in ops.alerts; with `repeat_hours`, skip one already sent that recently.

    The warehouse being unreachable never swallows an alert: it is sent, only not recorded.
    """
    from knowdo.db import connect

    settings = settings or Settings.from_env()
    if repeat_hours:
        try:
            with connect(settings.transformer_url) as conn:
                recent = conn.execute(
                    "select 1 from ops.alerts where kind = %s and about is not distinct from %s"
                    " and raised_at > now() - make_interval(secs => %s)",
                    (alert.kind, alert.about, repeat_hours * 3600),
                ).fetchone()
            if recent:
                log.info(
                    "alert '%s' already sent in the last %sh: not repeated",
                    alert.subject,
                    repeat_hours,
                )
                return None
        except Exception as exc:  # noqa: BLE001
            log.error("could not read ops.alerts (%s): sending the alert anyway", _first_line(exc))
    delivery = dispatch(
        alert, notifiers if notifiers is not None else _notifiers_or_log(settings.alerts)
    )
    try:
        with connect(settings.transformer_url) as conn:
            conn.execute(
                "insert into ops.alerts (kind, subject, about, body, delivered_by, failed_by)"
                " values (%s, %s, %s, %s, %s, %s)",
                (
                    alert.kind,
                    alert.subject,
                    alert.about,
                    alert.body,
                    delivery.delivered,
                    sorted(delivery.failed),
                ),
            )
    except Exception as exc:  # noqa: BLE001
        log.error("alert sent but not recorded in ops.alerts: %s", _first_line(exc))
    return delivery


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


# --- a failed Airflow task (knowdo.dag_defaults.AlertNotifier) ----------------------------------


def alert_from_task_context(context: Mapping) -> Alert:
    ti = context.get("task_instance") or context.get("ti")
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", "?")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id") or getattr(ti, "run_id", "?")
    exc = context.get("exception")
    reason = str(exc) if exc else "no exception recorded"
    gate = task_id.endswith(("quality_gate", "publish"))
    lines = [reason]
    if gate:
        lines.append(
            "marts keep their last good version; see ops.quality_gate_runs where run_id ="
            f" '{run_id}' and README 'Read a failed quality gate'."
        )
    if url := getattr(ti, "log_url", None):
        lines.append(f"log: {url}")
    return Alert(
        "gate_failed" if gate else "task_failed",
        f"{dag_id}.{task_id} failed in run {run_id}",
        "\n".join(lines),
        about=run_id,
    )
