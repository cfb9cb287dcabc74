"""The landing zone: every received file kept immutably, content-addressed by its sha256."""

from __future__ import annotations

import hashlib
import os
import shutil
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


def land(conn: psycopg.Connection, landing_dir: Path, feed_id: str, source: Path) -> LandedFile:
    """Copy `source` into the landing zone (once per content) and record it in ops.landed_files."""
    sha = sha256_of(source)
    size = source.stat().st_size
    target = landing_dir / sha[:2] / f"{sha}{''.join(source.suffixes)[-16:]}"
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + f".part{os.getpid()}")
        shutil.copyfile(source, tmp)
        if sha256_of(tmp) != sha:
            tmp.unlink()
            raise OSError(f"{source}: the file changed while it was being copied to the landing zone")
        tmp.chmod(0o444)
        tmp.replace(target)
    with conn.transaction():
        cur = conn.execute(
            "insert into ops.landed_files (file_sha256, feed_id, file_name, size_bytes, landing_path)"
            " values (%s, %s, %s, %s, %s) on conflict (file_sha256) do nothing",
            (sha, feed_id, source.name, size, str(target)),
        )
        is_new = cur.rowcount == 1
    return LandedFile(sha, target, size, source.name, is_new)
