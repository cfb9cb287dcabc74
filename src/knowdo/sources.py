"""Where a feed's files come from: a folder (and glob) under the inbox, or an HTTP(S) URL.

An HTTP source is downloaded to a staging folder first (streamed, size-capped) and then landed like
any other file: the landing zone's content hash makes an unchanged download a no-op.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from urllib.parse import urlparse

import requests

from knowdo.registry import Feed

MAX_DOWNLOAD_BYTES = 2 * 1024**3
TIMEOUT = (10, 300)  # connect, read seconds


class SourceError(RuntimeError):
    """The feed's source could not be read (network, HTTP status, size); the message says which."""


def download(url: str, staging_dir: Path, feed_id: str) -> Path:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise SourceError(f"feed {feed_id}: source url must be http(s), got '{url}'")
    name = Path(parsed.path).name or "download"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    target_dir = staging_dir / feed_id
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{hashlib.sha256(url.encode()).hexdigest()[:12]}_{name}"
    part = target.with_suffix(target.suffix + ".part")
    try:
        with requests.get(url, stream=True, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                raise SourceError(f"feed {feed_id}: GET {url} answered HTTP {response.status_code}")
            size = 0
            with part.open("wb") as fh:
                for block in response.iter_content(1 << 20):
                    size += len(block)
                    if size > MAX_DOWNLOAD_BYTES:
                        raise SourceError(
                            f"feed {feed_id}: {url} is larger than {MAX_DOWNLOAD_BYTES} bytes"
                        )
                    fh.write(block)
    except requests.RequestException as exc:
        part.unlink(missing_ok=True)
        raise SourceError(f"feed {feed_id}: could not download {url}: {exc}") from None
    part.replace(target)
    return target


def waiting_files(feed: Feed, inbox_dir: Path, staging_dir: Path) -> list[Path]:
    """The files to ingest now for `feed`: downloaded for a url source, listed for a folder
    source."""
    if "url" in feed.source:
        return [download(feed.source["url"], staging_dir, feed.id)]
    folder = inbox_dir / feed.source.get("folder", "")
    pattern = feed.source.get("glob", "*")
    return sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))
