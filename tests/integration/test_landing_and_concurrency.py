"""Landing and loading leave nothing half-done: a killed landing strands no partial copy, a full
disk says which directory and how much room, and two ingests of the same new file load it once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from knowdo.db import connect
from knowdo.landing import sweep_incoming
from knowdo.loading import ingest_file
from knowdo.registry import load_registry
from knowdo.synth.dhis2 import org_unit_uid

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(settings):
    return replace(
        load_registry(settings.feeds_file)["gha_moh_dhis2"], id="test_concurrent_ingest_feed"
    )


def _dhis2_file(path: Path, months: int) -> Path:
    values = [
        {
            "dataElement": "KdMhOpdVis1",
            "period": f"{2000 + m // 12}{m % 12 + 1:02d}",
            "orgUnit": org_unit_uid("GH-AA"),
            "categoryOptionCombo": coc,
            "value": str(10 + m),
        }
        for m in range(months)
        for coc in ("KdCocF00002", "KdCocM00002")
    ]
    path.write_text(json.dumps({"dataValues": values}), encoding="utf-8")
    return path


@pytest.fixture
def cleanup(settings, feed):
    """Concurrent ingests commit for real (each on its own connection): remove what they wrote."""
    yield
    with connect(settings.warehouse_url) as conn, conn.transaction():
        batches = [
            r[0]
            for r in conn.execute(
                "select batch_id from ops.load_batches where feed_id = %s", (feed.id,)
            )
        ]
        conn.execute("delete from raw.dhis2_data_values where feed_id = %s", (feed.id,))
        conn.execute("delete from ops.rejected_rows where batch_id = any(%s)", (batches,))
        conn.execute(
            "update ops.load_batches set superseded_by = null where superseded_by = any(%s)",
            (batches,),
        )
        conn.execute("delete from ops.load_batches where feed_id = %s", (feed.id,))
        conn.execute(
            "delete from ops.landed_files where feed_id = %s"
            " and file_sha256 not in (select file_sha256 from ops.load_batches)",
            (feed.id,),
        )


def _loaded_rows(settings, feed) -> int:
    with connect(settings.warehouse_url) as conn:
        return conn.execute(
            "select count(*) from raw.dhis2_data_values where feed_id = %s", (feed.id,)
        ).fetchone()[0]


def test_two_ingests_of_the_same_new_file_load_it_once(settings, feed, tmp_path, cleanup):
    src = _dhis2_file(tmp_path / "both.json", months=300)
    results, errors = [], []
    start = threading.Barrier(2)

    def ingest():
        try:
            with connect(settings.warehouse_url) as conn:
                start.wait()
                results.append(ingest_file(conn, feed, src, tmp_path / "landing"))
        except Exception as exc:  # noqa: BLE001 - the test reports it
            errors.append(exc)

    threads = [threading.Thread(target=ingest) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert sorted(r.already_loaded for r in results) == [False, True]
    assert {r.status for r in results} == {"loaded"} and len({r.batch_id for r in results}) == 1
    loaded = next(r for r in results if not r.already_loaded)
    assert (loaded.rows_loaded, loaded.rows_rejected) == (600, 0)
    assert _loaded_rows(settings, feed) == 600
    assert not list((tmp_path / "landing").glob(".incoming-*"))


def test_an_ingest_that_meets_a_load_in_flight_waits_and_reports_already_received(
    settings, feed, tmp_path, cleanup
):
    """Deterministic: the first load's transaction is held open; the second ingest waits on the
    batch's unique key and, when the first commits, answers "already received" (no constraint
    error)."""
    from knowdo.landing import land

    src = _dhis2_file(tmp_path / "held.json", months=2)
    with connect(settings.warehouse_url) as first:
        landed = land(first, tmp_path / "landing", feed.id, src)
        tx = first.transaction()
        tx.__enter__()
        first.execute(
            "insert into ops.load_batches (feed_id, file_sha256, file_name, format, raw_table,"
            " status, rows_read, rows_loaded, rows_rejected) values (%s, %s, %s, 'dhis2-json',"
            " 'raw.dhis2_data_values', 'loaded', 4, 4, 0)",
            (feed.id, landed.sha256, src.name),
        )
        outcome = []
        second = threading.Thread(
            target=lambda: outcome.append(_ingest_in_own_connection(settings, feed, src, tmp_path))
        )
        second.start()
        time.sleep(1.5)
        assert second.is_alive(), (
            "the second ingest must wait for the load in flight, not load again"
        )
        tx.__exit__(None, None, None)  # commit
        second.join(60)
    assert len(outcome) == 1
    result = outcome[0]
    assert not isinstance(result, Exception), result
    assert result.already_loaded and result.status == "loaded" and result.rows_loaded == 4


def _ingest_in_own_connection(settings, feed, src, tmp_path):
    try:
        with connect(settings.warehouse_url) as conn:
            return ingest_file(conn, feed, src, tmp_path / "landing")
    except Exception as exc:  # noqa: BLE001 - the test reports it
        return exc


def test_a_landing_killed_mid_copy_strands_no_partial_copy(settings, feed, tmp_path):
    """The source is a pipe, so the landing process is certainly in the middle of its copy when
    killed."""
    fifo = tmp_path / "slow.json"
    os.mkfifo(fifo)
    landing = tmp_path / "landing"
    code = (
        "import sys; from pathlib import Path; from knowdo.db import connect;"
        " from knowdo.landing import land;"
        "conn = connect(sys.argv[1]); land(conn, Path(sys.argv[2]), 'x', Path(sys.argv[3]))"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, settings.warehouse_url, str(landing), str(fifo)]
    )
    with fifo.open("wb") as writer:
        writer.write(b"x" * (4 << 20))  # 4 MB copied into the landing zone, then the writer waits
        writer.flush()
        time.sleep(0.5)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        try:
            writer.close()
        except BrokenPipeError:
            pass
    assert child.returncode == -signal.SIGKILL
    left = [p for p in landing.rglob("*")] if landing.exists() else []
    assert left == [], f"a killed landing left {left}"


def test_partial_copies_of_dead_processes_are_swept(tmp_path):
    """File systems without O_TMPFILE get named partial copies: the next landing sweeps dead
    ones."""
    from knowdo.landing import _host_tag

    dead = subprocess.Popen(["true"])
    dead.wait()
    own = tmp_path / f".incoming-{_host_tag()}-{os.getpid()}-busy.json"
    gone = tmp_path / f".incoming-{_host_tag()}-{dead.pid}-gone.json"
    legacy = tmp_path / f".incoming-{dead.pid}-old-style.json"
    other_host = tmp_path / ".incoming-elsewhere-1-shared.json"
    for p in (own, gone, legacy, other_host):
        p.write_bytes(b"partial")
    removed = sweep_incoming(tmp_path)
    assert sorted(removed) == sorted([gone, legacy])
    assert own.exists() and other_host.exists()
    os.utime(other_host, (0, 0))  # another host's copy is removed only once it is old
    assert sweep_incoming(tmp_path) == [other_host]


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason=(
        "a private tmpfs needs root (unshare --mount); the message is built in landing._room_needed"
    ),
)
def test_full_landing_zone_names_the_directory_and_the_space_needed(settings, tmp_path):
    src = tmp_path / "big.json"
    src.write_bytes(b"y" * (3 << 20))
    zone = tmp_path / "zone"
    zone.mkdir()
    code = (
        "import sys; from pathlib import Path; from knowdo.db import connect;"
        " from knowdo.landing import land;\n"
        "try:\n land(connect(sys.argv[1]), Path(sys.argv[2]), 'x', Path(sys.argv[3]))\n"
        "except OSError as exc:\n print(exc); sys.exit(3)\n"
    )
    script = 'mount -t tmpfs -o size=1m tmpfs "$1" && exec "$2" -c "$3" "$4" "$1" "$5"'
    result = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            script,
            "sh",
            str(zone),
            sys.executable,
            code,
            settings.warehouse_url,
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert (
        str(zone) in result.stdout
        and "3,145,728 bytes" in result.stdout
        and "full" in result.stdout
    )
    assert list(zone.iterdir()) == []  # on the real disk, under the private mount: nothing written
