"""A memory ceiling for parsing (issue 13): whatever gets past the parsers' bounds fails alone.

A file is parsed in a forked child process whose address space is capped (RLIMIT_AS at what the
process had when forked plus KNOWDO_PARSE_MEMORY_MB). The child sends what the parser yields to the
caller through a pipe, in batches; the caller's process (the `knowdo` command, the Airflow task)
keeps its database connection, its memory and its other feeds whatever the file does. A parser
that runs out of memory, crashes (a signal) or stalls turns into one `FileRejected` that says so,
and the caller marks the file's batch failed.

Why fork and not a process pool: a fork costs a few milliseconds and shares the parent's imported
modules, so the DHIS2 CSV fast path (a few seconds for 1M rows) keeps its speed; spawning a fresh
interpreter costs ~1 s of imports per file.
"""

from __future__ import annotations

import faulthandler
import os
import pickle
import resource
import select
import signal
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

from knowdo.config import Limits
from knowdo.formats import FileRejected

_HEADER = struct.Struct("!Q")


def _address_space() -> int:
    """This process's mapped address space in bytes (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _memory_failure(limits: Limits) -> FileRejected:
    return FileRejected(
        f"parsing this file needed more than {limits.max_memory_mb:,} MB of memory (the "
        "KNOWDO_PARSE_MEMORY_MB ceiling); no well-formed feed file needs that much: it is likely "
        "malformed (e.g. one enormous value or deeply nested structure)"
    )


def _send(fd: int, message: tuple) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _child(
    fd: int, fn: Callable[..., Iterator[Any]], args: tuple, limits: Limits, batch: int, parent: int
) -> None:
    """In the child: cap memory, run the generator, send its items; never returns."""
    try:
        _die_with_parent(parent)
        faulthandler.disable()  # a crash is reported by the parent in one line, not as a dump
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        ceiling = _address_space() + limits.max_memory_mb * 1024 * 1024
        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, hard))
        items: list = []
        sent = 0.0  # the first item goes at once
        for item in fn(*args):
            items.append(item)
            # a batch goes when full, or after a second (a slow parser still shows progress)
            if len(items) >= batch or time.monotonic() - sent > 1.0:
                _send(fd, ("items", items))
                items, sent = [], time.monotonic()
        _send(fd, ("items", items))
        _send(fd, ("end", None))
    except MemoryError:
        items = []
        _send_safely(fd, ("memory", None))
    except BaseException as exc:  # noqa: BLE001 - handed to the caller, which raises it
        _send_safely(fd, ("error", exc))
    finally:
        os._exit(0)


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this child when its parent dies (an Airflow task killed mid-file
    leaves no orphan parsing on)."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(5)


def _send_safely(fd: int, message: tuple) -> None:
    try:
        _send(fd, message)
    except MemoryError:
        os._exit(3)
    except Exception:  # noqa: BLE001 - an exception that does not pickle: its text instead
        kind, exc = message
        try:
            _send(fd, (kind, RuntimeError(f"{type(exc).__name__}: {exc}")))
        except Exception:  # noqa: BLE001
            os._exit(4)


def _read_exactly(fd: int, size: int, stall_s: int, pid: int) -> bytes | None:
    chunks, wanted = [], size
    while wanted:
        ready, _, _ = select.select([fd], [], [], stall_s)
        if not ready:
            os.kill(pid, signal.SIGKILL)
            raise TimeoutError
        data = os.read(fd, min(wanted, 1 << 20))
        if not data:
            return None  # the child is gone
        chunks.append(data)
        wanted -= len(data)
    return b"".join(chunks)


def iter_isolated(
    fn: Callable[..., Iterator[Any]], *args: Any, limits: Limits | None = None, batch: int = 1000
) -> Iterator[Any]:
    """What `fn(*args)` yields, computed in a child process under the memory ceiling.

    The child's exceptions are raised here (FileRejected and FastPathUnavailable unchanged); running
    out of memory, dying by a signal or stalling for KNOWDO_PARSE_STALL_S becomes FileRejected.
    With KNOWDO_PARSE_ISOLATION=off, `fn` runs in this process."""
    limits = limits or Limits.from_env()
    if not limits.isolate:
        yield from fn(*args)
        return
    read_fd, write_fd = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child (its work is seen through the pipe)
        os.close(read_fd)
        _child(write_fd, fn, args, limits, batch, parent)
    os.close(write_fd)
    finished = reaped = False
    try:
        while True:
            try:
                header = _read_exactly(read_fd, _HEADER.size, limits.parse_stall_s, pid)
                body = header and _read_exactly(
                    read_fd, _HEADER.unpack(header)[0], limits.parse_stall_s, pid
                )
            except TimeoutError:
                raise FileRejected(
                    f"parsing this file made no progress for {limits.parse_stall_s} s (the "
                    "KNOWDO_PARSE_STALL_S bound) and was stopped"
                ) from None
            if not body:
                status, reaped = os.waitpid(pid, 0)[1], True
                raise _death(status, limits)
            kind, value = pickle.loads(body)
            if kind == "items":
                yield from value
            elif kind == "end":
                finished = True
                return
            elif kind == "memory":
                finished = True
                raise _memory_failure(limits)
            else:
                finished = True
                raise value
    finally:
        os.close(read_fd)
        if not finished and not reaped:
            _kill(pid)
        if not reaped:
            os.waitpid(pid, 0)


def run_isolated(fn: Callable[..., Any], *args: Any, limits: Limits | None = None) -> Any:
    """`fn(*args)` computed in a child process under the memory ceiling (see `iter_isolated`)."""

    def once(*call_args: Any) -> Iterator[Any]:
        yield fn(*call_args)

    return next(iter(iter_isolated(once, *args, limits=limits, batch=1)))


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _death(status: int, limits: Limits) -> FileRejected:
    """Why the child stopped without finishing (its wait status), as a FileRejected."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        name = signal.Signals(number).name
        if number == signal.SIGKILL:
            return FileRejected(
                f"parsing this file was killed ({name}): most likely it went past the memory "
                f"ceiling ({limits.max_memory_mb:,} MB, KNOWDO_PARSE_MEMORY_MB) or the machine ran "
                "short of memory"
            )
        return FileRejected(
            f"the parser crashed on this file ({name}): the file is malformed in a way no bound "
            "caught; please report it with the file"
        )
    code = os.WEXITSTATUS(status)
    if code == 3:
        return _memory_failure(limits)
    return FileRejected(f"the parser stopped on this file without a result (exit code {code})")
