"""The main job's decision about the transform DAG, from the runs the Airflow API lists."""

from __future__ import annotations

from knowdo.mainjob import next_transform_step, transform_runs_since

STARTED = "2026-11-22T05:56:20+00:00"


def run(run_id: str, run_after: str, state: str) -> dict:
    return {"dag_run_id": run_id, "run_after": run_after, "state": state}


def test_an_asset_triggered_run_still_running_is_followed_not_duplicated():
    runs = [run("asset_triggered__1", "2026-11-22T05:56:44Z", "running")]
    assert next_transform_step(runs, STARTED, published=False) == ("wait", runs[0])


def test_a_run_in_flight_from_before_the_main_job_is_followed():
    """A transform run still running when `make up` starts decides what is published: follow it."""
    old = run("manual__old", "2026-11-21T10:00:00Z", "running")
    assert transform_runs_since([old], STARTED) == []
    assert next_transform_step([old], STARTED, published=True) == ("wait", old)
    assert next_transform_step([old], STARTED, published=False) == ("wait", old)


def test_current_only_when_nothing_is_in_flight_and_the_last_run_published():
    ok = run("manual__old", "2026-11-21T10:00:00Z", "success")
    assert next_transform_step([ok], STARTED, published=True) == ("current", None)
    assert next_transform_step([ok], STARTED, published=False) == ("trigger", None)
    failed = run("manual__later", "2026-11-21T11:00:00Z", "failed")
    assert next_transform_step([failed, ok], STARTED, published=True) == ("trigger", None)
    assert next_transform_step([], STARTED, published=True) == ("current", None)


def test_the_oldest_active_run_is_followed_first_and_the_last_finished_one_decides():
    first = run("asset_triggered__a", "2026-11-22T05:56:44Z", "success")
    second = run("asset_triggered__b", "2026-11-22T05:58:01Z", "queued")
    assert next_transform_step([second, first], STARTED, published=False) == ("wait", second)
    failed = dict(second, state="failed")
    assert next_transform_step([failed, first], STARTED, published=True) == ("done", failed)
