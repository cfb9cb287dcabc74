"""The local stack's supervised processes, found by their session and process group, not PID files.

supervisord (infra/local/stack.sh) runs in a session of its own, recorded in .local/run/sessions;
every process it starts, and every child of those (the scheduler's LocalExecutor workers, the task
processes they fork in groups of their own, gunicorn's workers), stays in that session.
infra/local/run-service.sh records each program's process group in .local/run/programs
(`<program> <pgid>`) before it execs the service, which names the processes. (The environment cannot
mark them: Airflow's workers and api-server rewrite their process titles over it.) A process of the
stack that is not a descendant of the running supervisord (a worker orphaned by a `kill -9` of its
scheduler, a service of a supervisord that was killed) is a stray: `stack.sh status` shows it,
`stack.sh stop` and the next start of the same program end it.

    knowdo stack strays|kill-strays [--program NAME] [--keep PID]
"""

from __future__ import annotations

import argparse
import os
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from knowdo.config import Settings


@dataclass(frozen=True)
class StackProcess:
    pid: int
    ppid: int
    program: str
    command: str


def read_records(path: Path) -> dict[int, str]:
    """`<name> <id>` lines -> {id: name}; the latest line for an id wins."""
    found: dict[int, str] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return found
    for line in lines:
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            found[int(parts[1])] = parts[0]
    return found


def program_of(
    pid: int, pgid: Mapping[int, int], parent: Mapping[int, int], programs: Mapping[int, str]
) -> str | None:
    """The program whose recorded process group holds `pid` or its nearest ancestor (pure)."""
    seen = set()
    while pid and pid not in seen:
        seen.add(pid)
        if pgid.get(pid) in programs:
            return programs[pgid[pid]]
        pid = parent.get(pid, 0)
    return None


def strays(processes: Iterable[StackProcess], supervised: set[int]) -> list[StackProcess]:
    """Processes of the stack that are neither a supervised pid nor a descendant of one (pure)."""
    procs = list(processes)
    parent = {p.pid: p.ppid for p in procs}

    def under_supervision(pid: int) -> bool:
        seen = set()
        while pid and pid not in seen:
            if pid in supervised:
                return True
            seen.add(pid)
            pid = parent.get(pid, 0)
        return False

    return [p for p in procs if not under_supervision(p.pid)]


def stack_processes(local_dir: str, program: str | None = None) -> list[StackProcess]:
    """Every live process in a session of this stack's supervisord (but the supervisord itself)."""
    import psutil

    run = Path(local_dir) / "run"
    sessions = set(read_records(run / "sessions"))
    programs = read_records(run / "programs")
    if not sessions:
        return []
    table = {}
    for proc in psutil.process_iter(["pid", "ppid"]):
        try:
            table[proc.pid] = (
                proc,
                os.getsid(proc.pid),
                os.getpgid(proc.pid),
                proc.info["ppid"] or 0,
            )
        except (OSError, psutil.Error):
            continue
    pgid = {pid: t[2] for pid, t in table.items()}
    # ancestors' links are needed across the whole table (a session's process may have a parent
    # outside)
    parent = {pid: t[3] for pid, t in table.items()}
    me = os.getpid()
    found = []
    for pid, (proc, sid, _, ppid) in table.items():
        if sid not in sessions or pid in sessions or pid == me:
            continue
        name = program_of(pid, pgid, parent, programs) or "unknown"
        if program and name != program:
            continue
        try:
            command = " ".join(proc.cmdline())[:160] or proc.name()
        except psutil.Error:
            continue
        found.append(StackProcess(pid, ppid, name, command))
    return found


def supervised_pids(local_dir: str) -> set[int]:
    """The running supervisord's pid (from its pid file), if alive: every program is its child."""
    pid_file = Path(local_dir) / "run" / "supervisord.pid"
    try:
        pid = int(pid_file.read_text().strip())
        os.kill(pid, 0)
        return {pid}
    except (OSError, ValueError):
        return set()


def kill(processes: list[StackProcess], grace: float = 10.0) -> None:
    """TERM, then KILL whatever is still there after `grace` seconds."""
    for p in processes:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    alive = list(processes)
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if _alive(p.pid)]
    for p in alive:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is gone for every purpose here
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="knowdo stack")
    parser.add_argument("action", choices=["strays", "kill-strays"])
    parser.add_argument("--program", help="only this supervised program's processes")
    parser.add_argument(
        "--keep",
        type=int,
        action="append",
        default=[],
        help="a pid (and its descendants) that is not a stray",
    )
    parser.add_argument(
        "--local-dir", help="the stack's state directory (default: KNOWDO_LOCAL_DIR)"
    )
    args = parser.parse_args(argv)
    if not args.local_dir:
        args.local_dir = str(Settings.from_env().local_dir)
    found = strays(
        stack_processes(args.local_dir, args.program),
        supervised_pids(args.local_dir) | set(args.keep) | {os.getppid()},
    )
    for p in found:
        print(f"{p.pid}\t{p.program}\t{p.command}")
    if args.action == "kill-strays" and found:
        kill(found)
    return 0
