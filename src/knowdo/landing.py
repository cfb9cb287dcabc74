"""The landing zone: every received file kept immutably, content-addressed by its sha256."""

from __future__ import annotations

import hashlib
import os
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


def _copy_hashing(source: Path, tmp: Path) -> tuple[str, int]:
    """Copy `source` to `tmp` in one read, hashing what is written: the landed copy's sha256 is
    the hash by construction, however the source changes while it is read."""
    digest, size = hashlib.sha256(), 0
    with source.open("rb") as src, tmp.open("wb") as dst:
        while block := src.read(CHUNK):
            digest.update(block)
            dst.write(block)
            size += len(block)
    return digest.hexdigest(), size


def land(conn: psycopg.Connection, landing_dir: Path, feed_id: str, source: Path) -> LandedFile:
    """Copy `source` into the landing zone (once per content) and record it in ops.landed_files."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    tmp = landing_dir / f".incoming-{os.getpid()}-{source.name[-64:]}"
    try:
        sha, size = _copy_hashing(source, tmp)
        target = landing_dir / sha[:2] / f"{sha}{''.join(source.suffixes)[-16:]}"
        if target.exists():
            tmp.unlink()  # these bytes were received before: the landed copy stays as it was
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp.chmod(0o444)
            tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    with conn.transaction():
        cur = conn.execute(
            "insert into ops.landed_files (file_sha256, feed_id, file_name, size_bytes, landing_path)"
            " values (%s, %s, %s, %s, %s) on conflict (file_sha256) do nothing",
            (sha, feed_id, source.name, size, str(target)),
        )
        is_new = cur.rowcount == 1
    return LandedFile(sha, target, size, source.name, is_new)
