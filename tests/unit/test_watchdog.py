"""The watchdog's decisions (knowdo.watchdog) and the stack's stray processes
(knowdo.stack_processes)."""

from datetime import UTC, datetime, timedelta

from knowdo.stack_processes import StackProcess, program_of, read_records, strays
from knowdo.watchdog import RunSeen, db_step, run_fingerprint, stall_step, waiting_tasks

T0 = datetime(2026, 12, 6, 21, 0, 0, tzinfo=UTC)
TEN = timedelta(minutes=10)


def test_an_outage_is_alerted_once_when_it_ends_with_its_start_and_duration():
    down, alert = db_step(None, reachable=False, now=T0, error="connection refused")
    assert down == "2026-12-06T21:00:00+00:00" and alert is None
    down2, alert = db_step(down, reachable=False, now=T0 + timedelta(seconds=30))
    assert down2 == down and alert is None  # still the first failed check
    after, alert = db_step(down2, reachable=True, now=T0 + timedelta(seconds=72))
    assert after is None
    assert alert.kind == "db_outage" and "1 min 12 s" in alert.subject
    assert "2026-12-06T21:00:00+00:00" in alert.body and "2026-12-06T21:01:12+00:00" in alert.body
    assert "72 s" in alert.body
    assert db_step(None, reachable=True, now=T0 + timedelta(seconds=100)) == (None, None)


def tis(*states):
    return [
        {"task_id": f"t{i}", "map_index": -1, "state": s, "try_number": 1}
        for i, s in enumerate(states)
    ]


def test_a_run_without_progress_for_n_minutes_with_tasks_waiting_is_alerted_once():
    fp = run_fingerprint(tis("success", "scheduled", "queued"))
    seen, alert = stall_step(None, fp, 2, T0, TEN, "knowdo_transform", "r1")
    assert alert is None and seen.since == "2026-12-06T21:00:00+00:00"
    seen, alert = stall_step(seen, fp, 2, T0 + timedelta(minutes=9), TEN, "knowdo_transform", "r1")
    assert alert is None
    seen, alert = stall_step(
        seen,
        fp,
        2,
        T0 + timedelta(minutes=10, seconds=5),
        TEN,
        "knowdo_transform",
        "r1",
        {"scheduled": 1, "queued": 1, "success": 1},
    )
    assert alert.kind == "stalled_run" and alert.about == "knowdo_transform/r1"
    assert "10 min 5 s" in alert.subject and "1 queued, 1 scheduled" in alert.body
    for minutes in (11, 20, 60):  # one alert per stalled run, not one per check
        seen, again = stall_step(
            seen, fp, 2, T0 + timedelta(minutes=minutes), TEN, "knowdo_transform", "r1"
        )
        assert again is None


def test_progress_resets_the_clock_and_rearms_the_alert():
    fp1 = run_fingerprint(tis("running", "scheduled"))
    seen = RunSeen(fp1, "2026-12-06T21:00:00+00:00", alerted=True)
    fp2 = run_fingerprint(tis("success", "scheduled"))
    seen, alert = stall_step(seen, fp2, 1, T0 + timedelta(minutes=30), TEN, "d", "r")
    assert alert is None and not seen.alerted and seen.since == "2026-12-06T21:30:00+00:00"
    _, alert = stall_step(seen, fp2, 1, T0 + timedelta(minutes=41), TEN, "d", "r")
    assert alert is not None


def test_a_long_running_task_with_nothing_waiting_is_not_a_stall():
    fp = run_fingerprint(tis("success", "running"))
    seen, _ = stall_step(None, fp, 0, T0, TEN, "d", "r")
    _, alert = stall_step(seen, fp, 0, T0 + timedelta(hours=2), TEN, "d", "r")
    assert alert is None


def test_a_retry_is_progress():
    a = [{"task_id": "t", "map_index": -1, "state": "queued", "try_number": 1}]
    b = [{"task_id": "t", "map_index": -1, "state": "queued", "try_number": 2}]
    assert run_fingerprint(a) != run_fingerprint(b)
    assert waiting_tasks(a + tis("running", "up_for_retry")) == 1


def test_a_stack_process_is_named_by_its_or_its_ancestors_recorded_process_group(tmp_path):
    records = tmp_path / "programs"
    records.write_text("airflow-scheduler 200\nsuperset 400\nairflow-scheduler 500\nbad line\n")
    programs = read_records(records)
    assert programs == {200: "airflow-scheduler", 400: "superset", 500: "airflow-scheduler"}
    pgid = {200: 200, 201: 200, 202: 202, 300: 300}
    parent = {200: 100, 201: 200, 202: 201, 300: 1}
    assert program_of(201, pgid, parent, programs) == "airflow-scheduler"  # a LocalExecutor worker
    assert (
        program_of(202, pgid, parent, programs) == "airflow-scheduler"
    )  # its task, in a group of its own
    assert program_of(300, pgid, parent, programs) is None
    assert read_records(tmp_path / "missing") == {}


def test_strays_are_the_stack_processes_outside_supervisord():
    supervisord = 100
    procs = [
        StackProcess(200, supervisord, "airflow-scheduler", "airflow scheduler"),
        StackProcess(201, 200, "airflow-scheduler", "airflow worker -- LocalExecutor"),
        StackProcess(300, 1, "airflow-scheduler", "airflow worker -- LocalExecutor"),  # orphaned
        StackProcess(301, 300, "airflow-scheduler", "airflow task runner"),  # and its child
    ]
    assert [p.pid for p in strays(procs, {supervisord})] == [300, 301]
    assert [p.pid for p in strays(procs, set())] == [200, 201, 300, 301]  # supervisord gone: all
