"""The repository stands alone: no code or doc points at design notes that live outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    r"\.\./shared|shared/[A-Z-]+\.md|\b(DESIGN|EQUITY-METHODS|IMPACT-METHODS|PLATFORM-NOTES|STYLE)\.md\b"
)


def test_no_file_points_outside_the_repository():
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout
    hits = []
    for name in filter(None, files.decode().split("\0")):
        path = REPO / name
        if name == "tests/test_repository_stands_alone.py" or not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # binary files (screenshots, sample feeds in other encodings)
        hits += [
            f"{name}:{n}: {line.strip()[:120]}"
            for n, line in enumerate(text.splitlines(), 1)
            if OUTSIDE.search(line)
        ]
    assert not hits, (
        "files point outside the repository (write it in docs/ instead):\n" + "\n".join(hits)
    )
