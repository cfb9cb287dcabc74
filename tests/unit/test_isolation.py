"""The memory ceiling (issue 13): a parse runs in a forked child under RLIMIT_AS; what it yields
arrives unchanged, its exceptions are raised here, and running out of memory, crashing or stalling
becomes one FileRejected that says so, while this process carries on. Real processes, no mocks."""

from __future__ import annotations

import os
import signal
import time
from dataclasses import replace

import pytest

from knowdo.config import Limits
from knowdo.formats import FastPathUnavailable, FileRejected
from knowdo.isolation import iter_isolated, run_isolated

LIMITS = Limits(max_memory_mb=200, parse_stall_s=2)


def _items(n):
    for i in range(n):
        yield (i, f"row {i}", {"nested": [i]})


def _hog():
    yield 1
    blocks = []
    while True:
        blocks.append(bytearray(50 * 1024 * 1024))


def _raise(exc):
    yield 1
    raise exc


def _crash():
    yield 1
    os.kill(os.getpid(), signal.SIGSEGV)


def _stall():
    yield 1
    time.sleep(60)
    yield 2


def test_items_arrive_in_order_across_batches():
    assert list(iter_isolated(_items, 2500, limits=LIMITS)) == list(_items(2500))
    assert run_isolated(sum, [1, 2, 3], limits=LIMITS) == 6


def test_running_out_of_memory_fails_the_file_and_this_process_carries_on():
    start = time.monotonic()
    with pytest.raises(FileRejected, match="more than 200 MB of memory .*KNOWDO_PARSE_MEMORY_MB"):
        list(iter_isolated(_hog, limits=LIMITS))
    assert time.monotonic() - start < 30
    assert run_isolated(len, "still here", limits=LIMITS) == 10


@pytest.mark.parametrize(
    "exc", [FileRejected("bad header"), FastPathUnavailable("encoding"), ValueError("odd")]
)
def test_the_parsers_exceptions_are_raised_here_unchanged(exc):
    with pytest.raises(type(exc), match=str(exc)):
        list(iter_isolated(_raise, exc, limits=LIMITS))


def test_a_crash_is_a_clear_failure():
    with pytest.raises(FileRejected, match=r"the parser crashed on this file \(SIGSEGV\)"):
        list(iter_isolated(_crash, limits=LIMITS))


def test_a_stall_is_stopped():
    with pytest.raises(FileRejected, match="no progress for 2 s .*KNOWDO_PARSE_STALL_S"):
        list(iter_isolated(_stall, limits=LIMITS))


def test_stopping_early_ends_the_child():
    items = iter_isolated(_stall, limits=LIMITS)
    assert next(items) == 1
    items.close()  # kills and reaps the child: no zombie, no orphan
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


def test_isolation_can_be_switched_off():
    off = replace(LIMITS, isolate=False)
    pid = os.getpid()
    assert run_isolated(os.getpid, limits=off) == pid
    assert run_isolated(os.getpid, limits=LIMITS) != pid
