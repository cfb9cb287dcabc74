"""What every KnowDo DAG shares: owner, retries and the failure notifier.

Every task of every DAG gets `DEFAULT_ARGS` (a DAG may override a field, e.g. its retry delay, but
not drop the notifier): a task that fails after its retries is sent to the notifiers
KNOWDO_ALERT_NOTIFIERS names (log, email, slack) and recorded in ops.alerts (knowdo.alerts).
This is the one failure-callback mechanism of the project; tests/test_dag_integrity.py checks that
every task of every DAG carries it.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import BaseNotifier

from knowdo.alerts import alert_from_task_context, raise_alert
from knowdo.config import Settings


class AlertNotifier(BaseNotifier):
    """Airflow notifier (`on_failure_callback=AlertNotifier()`): a failed task is sent to the
    configured notifiers and recorded in ops.alerts (a failed gate or publish as `gate_failed`)."""

    def notify(self, context) -> None:
        raise_alert(alert_from_task_context(context))


DEFAULT_ARGS = {
    "owner": "knowdo-data-engineering",
    "retries": 2,
    "retry_delay": timedelta(seconds=Settings.from_env().task_retry_delay_s),
    "on_failure_callback": AlertNotifier(),
}
