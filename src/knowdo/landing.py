"""The landing zone: every received file kept immutably, content-addressed by its sha256."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

CHUNK = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class LandedFile:
    sha256: str
    path: Path  # the immutable copy in the landing zone
    size: int
    file_name: str
    is_new: bool  # False when these exact bytes had been received before


class LandingFull(OSError):
    """The landing zone has no room for a file; the message names the directory and the space
    needed."""


def _copy_hashing(src, dst_fd: int) -> tuple[str, int]:
    """Copy the open `src` into the file descriptor `dst_fd` in one read, hashing what is written:
    the landed copy's sha256 is the hash by construction, however the source changes while read."""
    digest, size = hashlib.sha256(), 0
    with os.fdopen(dst_fd, "wb", closefd=False) as dst:
        while block := src.read(CHUNK):
            digest.update(block)
            dst.write(block)
            size += len(block)
        dst.flush()
        os.fsync(dst_fd)
    return digest.hexdigest(), size


def _anonymous_file(directory: Path) -> int | None:
    """An unnamed file in `directory` (Linux O_TMPFILE): a crash while copying leaves nothing
    behind, because the file gets a name only once it is complete. None where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o444)
    except OSError:  # a file system without O_TMPFILE (some network mounts)
        return None


def _link_anonymous(fd: int, target: Path) -> None:
    """Give the unnamed file `fd` its name: linkat(2) through /proc/self/fd with AT_SYMLINK_FOLLOW.
    (os.link calls plain link(2), which does not follow the /proc link, unless a dir fd is
    given.)"""
    root = os.open("/", os.O_RDONLY)
    try:
        os.link(f"/proc/self/fd/{fd}", target, src_dir_fd=root, follow_symlinks=True)
    finally:
        os.close(root)


STALE_INCOMING_S = 24 * 3600


def sweep_incoming(landing_dir: Path, older_than_s: float = STALE_INCOMING_S) -> list[Path]:
    """Remove partial `.incoming-*` copies left by a landing that was killed (only on file systems
    without O_TMPFILE are named partial copies written at all). A copy of this host whose process is
    gone is removed at once; any other only when older than `older_than_s` (another host may still
    be writing it to a shared landing zone)."""
    removed = []
    host = _host_tag()
    for partial in landing_dir.glob(".incoming-*"):
        try:
            _, owner_host, pid, _rest = partial.name.split("-", 3)
            if owner_host.isdigit():  # an earlier version's `.incoming-<pid>-<name>`: this host's
                owner_host, pid = host, owner_host
            stale = owner_host == host and not _pid_alive(int(pid))
            if stale or time.time() - partial.stat().st_mtime > older_than_s:
                partial.unlink(missing_ok=True)
                removed.append(partial)
        except (ValueError, OSError):
            continue
    return removed


def _host_tag() -> str:
    return socket.gethostname().replace("-", "_")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _room_needed(landing_dir: Path, source: Path, exc: OSError) -> LandingFull:
    import errno
    import shutil

    free = shutil.disk_usage(landing_dir).free
    need = source.stat().st_size
    return LandingFull(
        errno.ENOSPC,
        f"the landing zone {landing_dir} is full: {source.name} needs {need:,} bytes there and"
        f" {free:,} are free; free space (or point KNOWDO_LANDING_DIR at a larger volume) and"
        " rerun: nothing was recorded for this file",
    )


def land(conn: psycopg.Connection, landing_dir: Path, feed_id: str, source: Path) -> LandedFile:
    """Copy `source` into the landing zone (once per content) and record it in ops.landed_files.

    The copy is written unnamed (O_TMPFILE) and linked under its hash only when complete, so a
    process killed mid-copy strands nothing; where the file system cannot, a named `.incoming-*`
    copy is used and swept by the next landing."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    fd = _anonymous_file(landing_dir)
    tmp = None
    if fd is None:
        sweep_incoming(landing_dir)
        tmp = landing_dir / f".incoming-{_host_tag()}-{os.getpid()}-{source.name[-64:]}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        try:
            with source.open("rb") as src:
                sha, size = _copy_hashing(src, fd)
        except OSError as exc:
            import errno

            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise _room_needed(landing_dir, source, exc) from exc
            raise
        target = landing_dir / sha[:2] / f"{sha}{''.join(source.suffixes)[-16:]}"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                if tmp is None:
                    _link_anonymous(fd, target)
                else:
                    os.chmod(tmp, 0o444)
                    os.replace(tmp, target)
            except FileExistsError:
                pass  # the same bytes landed meanwhile (a concurrent ingest): that copy stays
    finally:
        os.close(fd)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    with conn.transaction():
        cur = conn.execute(
            "insert into ops.landed_files"
            " (file_sha256, feed_id, file_name, size_bytes, landing_path)"
            " values (%s, %s, %s, %s, %s) on conflict (file_sha256) do nothing",
            (sha, feed_id, source.name, size, str(target)),
        )
        is_new = cur.rowcount == 1
    return LandedFile(sha, target, size, source.name, is_new)
