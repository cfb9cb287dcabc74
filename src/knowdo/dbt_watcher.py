"""The transform DAG's per-model tasks, started and (on success) ended in Airflow's triggerer.

cosmos' watcher mode runs one `dbt build` in its producer task and gives every model a sensor task
that reads the model's result from the producer's XCom. Sent to a worker, each sensor costs a whole
task process (the LocalExecutor forks, the process parses the DAG file, reads one XCom value and
reports back: ~5 s each, 4 at a time on this machine; bench/transform/README.md). With Airflow
3's `start_from_trigger` the scheduler defers such a task straight to the triggerer;
`ModelResultTrigger` (cosmos' own `WatcherTrigger`, which already reads the producer's XCom from
the triggerer) then

- ends the task with success there when its model succeeded (no worker at all; also on an
  automatic retry in a run never cleared: rebuilding a view drops its downstream views with
  CASCADE, and their tasks have already ended), and
- otherwise resumes it on a worker (`ModelResultSensor.resume_from_trigger`):
  - a model that failed or was skipped in the build: cosmos' own `execute`, where the sensor reads
    the result again and fails naming the model and logging dbt's error, or skips;
  - a retry of a model that did not succeed in the build, a cleared task (try_number > 1), or
    the first try in a cleared run of a model that did not succeed in the build (downstream of a
    failed one, never run before its upstream was fixed and cleared with its downstream): the
    producer's result is stale, so the worker reruns that one model with dbt (cosmos' fallback).

`start_in_triggerer` (the DAG file calls it on the dbt task group's model sensors) sets
`start_from_trigger` and makes the sensor a `ModelResultSensor` (cosmos' model sensor with the
resume method). Only a model that succeeded skips the worker, so every failure still surfaces in
the task's own log with cosmos' message and dbt's error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.state import is_dbt_node_status_success
from cosmos.operators._watcher.triggerer import WatcherTrigger
from cosmos.operators.watcher import DbtRunWatcherOperator

# the worker resumes a task the trigger did not end here (ModelResultSensor)
RESUME_METHOD = "resume_from_trigger"
TRIGGER_CLASSPATH = "knowdo.dbt_watcher.ModelResultTrigger"
# the trigger's event when the producer's result is not this try's: rerun the model with dbt
RERUN = "rerun"
# the trigger's event when the producer never ran (its own upstream failed): the task fails
PRODUCER_DID_NOT_RUN = "producer_did_not_run"
PRODUCER_NEVER_RAN = ("upstream_failed", "removed")


def run_was_cleared(ti: Any) -> bool:
    """Whether tasks of the task instance's DAG run were cleared (Airflow counts each clear on the
    run: `clear_number`); False when the triggerer gave no run context."""
    try:
        dag_run = ti.get_template_context()["dag_run"]
    except (AttributeError, KeyError, TypeError):
        return False
    return (getattr(dag_run, "clear_number", 0) or 0) > 0


class ModelResultTrigger(WatcherTrigger):
    """cosmos' WatcherTrigger, started by the scheduler for a model's task (`start_from_trigger`).

    The run it watches is the task instance's own (the triggerer sets `task_instance` before
    `run`): the trigger's kwargs are fixed when the DAG is parsed, so they carry no run id."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return TRIGGER_CLASSPATH, super().serialize()[1]

    async def get_xcom_val_af3(self, key: str) -> Any | None:
        """The XCom read through the SDK's async API. (cosmos wraps the sync `XCom.get_one` in
        `sync_to_async`, whose one shared thread made 18 triggers started together wait ~60 s
        for their first read at load ~19: bench/transform/README.md.)"""
        from airflow.sdk.execution_time.xcom import XCom

        return await XCom.aget_one(
            run_id=self.run_id,
            key=key,
            task_id=self.producer_task_id,
            dag_id=self.dag_id,
            map_index=self.map_index,
        )

    async def run(self) -> AsyncIterator[Any]:
        from airflow.triggers.base import TaskSuccessEvent, TriggerEvent

        ti = self.task_instance
        if ti is None:  # not started for a task: nothing to watch
            raise RuntimeError(
                f"{TRIGGER_CLASSPATH} for dbt node {self.model_unique_id!r} has no task instance: "
                "it only runs as a task's start_from_trigger"
            )
        self.dag_id, self.run_id, self.map_index = ti.dag_id, ti.run_id, ti.map_index
        # an automatic retry in a run never cleared: the model's task failed, not necessarily its
        # model (the triggerer or the database went away while it read the result). A model the
        # build did make is not built again: dbt-postgres replaces a view with DROP ... CASCADE,
        # which would drop the downstream views whose tasks already ended
        if (
            ti.try_number > 1
            and not run_was_cleared(ti)
            and is_dbt_node_status_success(await self._get_node_status())
        ):
            self.log.info(
                "try %s of dbt node %s: it succeeded in the producer's build of this run,"
                " not rebuilt",
                ti.try_number,
                self.model_unique_id,
            )
            yield TaskSuccessEvent()
            return
        if ti.try_number > 1:
            # a retry of a model that failed, or a cleared task: the producer's result is the
            # failed (or stale) one; the worker reruns this model with dbt
            self.log.info(
                "try %s of dbt node %s: resuming on a worker to rerun it with dbt",
                ti.try_number,
                self.model_unique_id,
            )
            yield TriggerEvent({"status": RERUN, "try_number": ti.try_number})
            return
        # the usual case, the sensors starting after the build: one read, the model's status
        status = await self._get_node_status()
        if status is None and await self._get_producer_task_status() in PRODUCER_NEVER_RAN:
            # the producer did not run (a task before it failed: its state is upstream_failed):
            # no result will ever come, and cosmos' loop would wait for one until the timeout
            yield TriggerEvent({"status": PRODUCER_DID_NOT_RUN})
            return
        if is_dbt_node_status_success(status):
            self.log.info("dbt node %s succeeded in the producer's build", self.model_unique_id)
            yield TaskSuccessEvent()
            return
        if status is not None and run_was_cleared(ti):
            # first try in a cleared run of a model that did not succeed in the build: it was not
            # run then (downstream of a failed model, upstream_failed) and its upstream has since
            # been rerun; the build's result (dbt skipped it) says nothing about it now
            self.log.info(
                "dbt node %s was %s in the producer's build of this cleared run: resuming on a"
                " worker to run it with dbt",
                self.model_unique_id,
                status,
            )
            yield TriggerEvent({"status": RERUN, "try_number": ti.try_number})
            return
        async for event in super().run():
            if event.payload.get("status") == EventStatus.SUCCESS:
                self.log.info("dbt node %s succeeded in the producer's build", self.model_unique_id)
                yield TaskSuccessEvent()
            else:
                # failed, skipped, or the producer failed before reporting it: the worker's sensor
                # reads the result and fails (or skips) with cosmos' message and dbt's error
                yield event
            return


class ModelResultSensor(DbtRunWatcherOperator):
    """cosmos' model sensor, resumed on a worker when `ModelResultTrigger` did not end its task."""

    def resume_from_trigger(self, context: Any, event: dict[str, Any] | None = None) -> None:
        if (event or {}).get("status") == PRODUCER_DID_NOT_RUN:
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"dbt did not run: its build task {self.producer_task_id} did not start because a"
                " task before it failed (see the run's first failed task, e.g."
                " create_stats_functions); fix that and clear the run"
            )
        if (event or {}).get("status") == RERUN:
            # the producer has finished (the sensors start after it): cosmos' own fallback,
            # `dbt run --select <model>` with the producer's flags
            self._fallback_to_non_watcher_run(context["ti"].try_number, context)
            return
        # cosmos' sensor path: reads the result, logs dbt's event, fails or skips
        self.execute(context)


def start_in_triggerer(sensor: DbtRunWatcherOperator) -> None:
    """Have the scheduler start the cosmos watcher sensor `sensor` in the triggerer (module doc).

    The sensor becomes a `ModelResultSensor` (the same operator with the resume method: cosmos
    builds the task group's operators itself, so there is no class to pass it)."""
    from airflow.triggers.base import StartTriggerArgs

    sensor.__class__ = ModelResultSensor
    sensor.start_from_trigger = True
    sensor.start_trigger_args = StartTriggerArgs(
        trigger_cls=TRIGGER_CLASSPATH,
        trigger_kwargs={
            "model_unique_id": sensor.model_unique_id,
            "producer_task_id": sensor.producer_task_id,
            "dag_id": sensor.dag_id,
            "run_id": "",  # the task instance's (ModelResultTrigger.run)
            "map_index": -1,
            "poke_interval": float(sensor.poke_interval),
            "is_test_sensor": bool(getattr(sensor, "is_test_sensor", False)),
        },
        next_method=RESUME_METHOD,
        timeout=sensor.execution_timeout,
    )
