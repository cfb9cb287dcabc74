"""The transform DAG's per-model tasks, started and (on success) ended in Airflow's triggerer.

cosmos' watcher mode runs one `dbt build` in its producer task and gives every model a sensor task
that reads the model's result from the producer's XCom. Sent to a worker, each sensor costs a whole
task process (the LocalExecutor forks, the process parses the DAG file, reads one XCom value and
reports back: ~5 s each, 4 at a time on this machine; bench/transform/README.md). With Airflow
3's `start_from_trigger` the scheduler defers such a task straight to the triggerer;
`ModelResultTrigger` (cosmos' own `WatcherTrigger`, which already reads the producer's XCom from
the triggerer) then

- ends the task with success there when its model succeeded (no worker at all), and
- otherwise resumes it on a worker in cosmos' own `execute`: the sensor reads the result again and
  fails naming the model and logging dbt's error, or skips; and on a retry or a cleared task
  (try_number > 1) the worker reruns that one model with dbt, as cosmos does (the trigger never
  re-reads the producer's stale result then).

`start_from_trigger` is set per task by `start_in_triggerer` (the DAG file calls it on the dbt
task group's model sensors). Only a model that succeeded skips the worker, so every failure still
surfaces in the task's own log with cosmos' message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from cosmos.listeners.dag_run_listener import EventStatus
from cosmos.operators._watcher.state import is_dbt_node_status_success
from cosmos.operators._watcher.triggerer import WatcherTrigger

# the worker resumes a task the trigger did not end in cosmos' `execute` (which accepts and ignores
# the event): exactly the path a sensor task started on a worker takes
RESUME_METHOD = "execute"
TRIGGER_CLASSPATH = "knowdo.dbt_watcher.ModelResultTrigger"


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
        if ti.try_number > 1:
            # a retry or a cleared task: the producer's result is the failed (or stale) one; cosmos'
            # sensor reruns this model with dbt on the worker
            self.log.info(
                "try %s of dbt node %s: resuming on a worker to rerun it with dbt",
                ti.try_number,
                self.model_unique_id,
            )
            yield TriggerEvent({"status": "rerun", "try_number": ti.try_number})
            return
        # the usual case, the sensors starting after the build: one read, the model's status
        if is_dbt_node_status_success(await self._get_node_status()):
            self.log.info("dbt node %s succeeded in the producer's build", self.model_unique_id)
            yield TaskSuccessEvent()
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


def start_in_triggerer(sensor: Any) -> None:
    """Have the scheduler start the cosmos watcher sensor `sensor` in the triggerer (module doc)."""
    from airflow.triggers.base import StartTriggerArgs

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
