"""Faults while files are landed and loaded, on the project's own cluster with the real
`knowdo ingest` (issue 12): each ends with the warehouse equal to a clean run
(tests/faults/fingerprint.py), nothing lost, nothing duplicated. Ingest only: no transform runs
here, so the marts must not move either.

The clean run they compare with is a clean ingest (`clean_ingest_fingerprint`: every sample file
loaded once). Each test takes one sample file back out of the warehouse (tests/faults/warehouse.py
`forget`), hits its load with the fault, then loads it again as a user would, and compares
fingerprints.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from knowdo.db import connect
from tests.faults.conftest import fingerprint_now
from tests.faults.fingerprint import assert_same
from tests.faults.warehouse import batches_of, forget, knowdo_ingest, raw_rows_of, sample_file

pytestmark = [pytest.mark.faults, pytest.mark.integration]

# the largest sample file (15,300 rows, 1.4 MB): its COPY lasts long enough to be caught mid-way
BIG_FEED, BIG_FILE = "population_denominators", "england_icb_population.csv"
SMALL_FEED = "prevalence_estimates"


@pytest.fixture(scope="module")
def loader(cluster, settings):
    with connect(settings.warehouse_url) as conn:
        conn.autocommit = True
        yield conn


def _copy_in_flight(loader, me: int):
    """The backend of another session running a COPY into a raw table, with its progress."""
    return loader.execute(
        "select a.pid, coalesce(p.tuples_processed, 0) from pg_stat_activity a"
        " left join pg_stat_progress_copy p using (pid)"
        " where a.pid <> %s and a.state = 'active' and a.query ilike 'copy raw.%%'",
        (me,),
    ).fetchone()


def _backend_gone(loader, pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while loader.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, (
            f"backend {pid} of the killed ingest still there after {timeout}s"
        )
        time.sleep(0.2)


@pytest.mark.timeout(300, func_only=True)
def test_kill_9_of_knowdo_ingest_mid_copy_then_the_same_file_again(
    clean_ingest_fingerprint, settings, loader
):
    f = sample_file(settings, BIG_FEED, BIG_FILE)
    me = loader.execute("select pg_backend_pid()").fetchone()[0]
    caught = None
    for _attempt in range(
        8
    ):  # the COPY lasts a fraction of a second: poll for it, try again if missed
        forget(loader, f)
        proc = knowdo_ingest(f)
        while proc.poll() is None and not (caught := _copy_in_flight(loader, me)):
            time.sleep(0.002)
        if caught and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
            break
        proc.communicate(timeout=60)
        caught = None
    if not caught:
        pytest.fail("no attempt caught `knowdo ingest` in the middle of its COPY (8 attempts)")
    assert proc.returncode == -signal.SIGKILL
    backend, tuples = caught
    _backend_gone(loader, backend)
    # the killed load left nothing: no batch, no raw row, no partial copy in the landing zone
    assert batches_of(loader, f) == [], "a batch of the killed load was committed"
    assert raw_rows_of(loader, f) == 0
    assert not list(settings.landing_dir.rglob(".incoming-*"))

    again = knowdo_ingest(f)
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert "already received" not in out, out  # the killed attempt did not count as a load
    [(_, status, rows, _)] = batches_of(loader, f)
    assert status == "loaded" and rows == raw_rows_of(loader, f) > 0
    assert_same(
        clean_ingest_fingerprint,
        fingerprint_now(settings),
        f"kill -9 of knowdo ingest mid-COPY (after {tuples} rows) and the same file again",
    )


@pytest.mark.timeout(300, func_only=True)
def test_two_ingests_of_the_same_new_file_at_once(clean_ingest_fingerprint, settings, loader):
    """One loads it; the other waits for it and says "already received" (exit 0), never a
    constraint error. (tests/integration/test_landing_and_concurrency.py holds the second ingest on
    an open transaction, deterministically; here two real processes race.)"""
    f = sample_file(settings, BIG_FEED, BIG_FILE)
    forget(loader, f)
    procs = [knowdo_ingest(f) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, f"exit {p.returncode}:\n{out}{err}"
        assert "duplicate key" not in out + err and "Traceback" not in err
    said = sorted("already received" in out for out, _ in outs)
    assert said == [False, True], outs
    assert len(batches_of(loader, f)) == 1
    assert_same(
        clean_ingest_fingerprint,
        fingerprint_now(settings),
        "two ingests of the same new file at once",
    )


@pytest.mark.timeout(300, func_only=True)
@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="a private tmpfs over the landing zone needs root (unshare --mount)",
)
def test_the_landing_zone_disk_full_during_a_landing(clean_ingest_fingerprint, settings, loader):
    """The landing zone is a 256 KiB tmpfs while the 1.4 MB file lands. The tmpfs is mounted in a
    private mount namespace of the ingest alone (unshare --mount): it vanishes with that process, so
    nothing needs unmounting and no other process ever sees it."""
    f = sample_file(settings, BIG_FEED, BIG_FILE)
    forget(loader, f)
    landing = settings.landing_dir
    landing.mkdir(parents=True, exist_ok=True)
    script = 'mount -t tmpfs -o size=256k tmpfs "$1" && shift && exec "$@"'
    full = knowdo_ingest(
        f, "unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(landing)
    )
    out, err = full.communicate(timeout=120)
    assert full.returncode == 2, out + err
    message = " ".join(err.split())
    assert f"the landing zone {landing} is full" in message, err
    assert f"needs {f.path.stat().st_size:,} bytes" in message, err
    assert batches_of(loader, f) == [] and raw_rows_of(loader, f) == 0  # nothing recorded
    assert not list(landing.rglob(".incoming-*"))

    again = knowdo_ingest(f)  # room again: the rerun heals it
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert_same(
        clean_ingest_fingerprint, fingerprint_now(settings), "a full landing zone and a rerun"
    )


@pytest.mark.timeout(600, func_only=True)
def test_the_same_feeds_three_times_in_a_row(clean_ingest_fingerprint, settings, loader):
    """Every feed of the registry, as the ingest DAG's tasks run them (knowdo.pipeline), three
    times: every file is already received, nothing is added, the fingerprint never moves."""
    from knowdo.pipeline import ingest_feed, list_feeds

    small = sample_file(settings, SMALL_FEED)  # one file arrives new in the first round
    forget(loader, small)
    for round_ in range(3):
        new = {}
        for feed_id in list_feeds():
            summary = ingest_feed(feed_id, settings)
            if summary["new_batches"]:
                new[feed_id] = summary["new_batches"]
        if round_ == 0:
            assert list(new) == [SMALL_FEED], new
        else:
            assert new == {}, f"round {round_ + 1} loaded again: {new}"
        assert_same(
            clean_ingest_fingerprint,
            fingerprint_now(settings),
            f"round {round_ + 1} of the same feeds",
        )
    probe = subprocess.run(
        [sys.executable, "-m", "knowdo", "ingest", str(small.path), "--feed", SMALL_FEED],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0 and "already received" in probe.stdout, probe.stdout + probe.stderr
