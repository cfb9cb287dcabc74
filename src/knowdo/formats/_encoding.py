"""What to tell a submitter whose text file is not in the feed's declared encoding (issue 13).

The declared encoding (registry `options.encoding`, UTF-8 by default) always wins: a file is never
read in a guessed encoding. The guess (charset-normalizer, the detector `requests` uses) only names
the likely encoding in the error, with the registry line that declares the feed's encoding (or the
feed's entry, where the declaration would go), so the fix is one edit.
"""

from __future__ import annotations

import codecs
import re
from pathlib import Path

SAMPLE_BYTES = 256 * 1024
CLOSE_CHAOS = 0.2  # charset-normalizer's mess ratio (0 clean .. 1): "about as clean" within this
# When several encodings decode the sample to the same text (cp1252 and cp1257 agree on most
# accented Latin letters), the one publishers actually use is named.
_USUAL = ("utf_8", "cp1252", "latin_1", "utf_16", "iso8859_15", "cp1250", "cp1251", "mac_roman")


def likely_encoding(path: Path, sample_bytes: int = SAMPLE_BYTES) -> str | None:
    """The encoding charset-normalizer finds most likely for the file's first bytes (Python's
    codec name, e.g. 'cp1252'), or None when it finds none."""
    from charset_normalizer import from_bytes

    with path.open("rb") as fh:
        sample = fh.read(sample_bytes)
    if not sample:
        return None
    results = from_bytes(sample)
    best = results.best()
    if best is None:
        return None
    # of the encodings that decode the sample about as cleanly (mostly-ASCII samples leave the
    # detector torn between code pages), the usual one
    close = {
        name
        for match in results
        if match.chaos <= best.chaos + CLOSE_CHAOS
        for name in (match.could_be_from_charset or [match.encoding])
    }
    chosen = next((name for name in _USUAL if name in close), best.encoding)
    try:
        return codecs.lookup(chosen).name
    except LookupError:
        return chosen


def registry_line(registry: Path, feed_id: str | None) -> tuple[int, str] | None:
    """(line number, text) of the line declaring `feed_id`'s encoding in the registry file, or of
    the feed's `- id:` line when it declares none; None when the feed is not found."""
    if not feed_id or not registry.is_file():
        return None
    lines = registry.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next(
        (
            i
            for i, line in enumerate(lines)
            if re.match(rf"\s*-\s*id:\s*['\"]?{re.escape(feed_id)}['\"]?\s*(#.*)?$", line)
        ),
        None,
    )
    if start is None:
        return None
    indent = len(lines[start]) - len(lines[start].lstrip())
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break  # the next feed (or the end of the list)
        if re.search(r"\bencoding\s*:", line):
            return i + 1, line.strip()
    return start + 1, lines[start].strip()


def encoding_hint(
    path: Path, declared: str, feed_id: str | None, registry: Path | None = None
) -> str:
    """The sentence added to a decoding error: the likely encoding and where to declare it."""
    if registry is None:
        from knowdo.config import Settings

        registry = Settings.from_env().feeds_file
    declared = declared.replace("-sig", "")
    guess = likely_encoding(path)
    said = (
        f"it looks like {guess} (charset-normalizer's best guess)"
        if guess and guess != codecs.lookup(declared).name
        else "no other encoding fits it clearly"
    )
    where = registry_line(registry, feed_id)
    name = f"{registry.parent.name}/{registry.name}"
    if where is None:
        target = (
            "declare the publisher's encoding in the feed's registry entry "
            "(options: {encoding: " + (guess or "latin-1") + "})"
        )
    elif "encoding" in where[1]:
        target = (
            f"{name} line {where[0]} declares it ({where[1]}): if the publisher "
            "now sends another encoding, change it there"
        )
    else:
        target = (
            f"feed {feed_id} ({name} line {where[0]}) declares no encoding, so "
            f"{declared}: if the publisher sends {guess or 'another encoding'}, add "
            "options: {encoding: " + (guess or "latin-1") + "} to it"
        )
    return f"{said}; {target}. The declared encoding is always the one used."
