"""The bad-input corpus (tests/fixtures/bad, issue 13): its manifest, the generators of its large
files (made at test time, never committed) and how one file's outcome is read, as `knowdo check`
reads it (parsed in a child process under the memory ceiling)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "fixtures" / "bad"
MANIFEST = CORPUS / "manifest.yml"
MB = 1024 * 1024
_DV = (
    b'{"dataElement":"KdMhOpdVis1","period":"202401","orgUnit":"KdOuGHAA000",'
    b'"categoryOptionCombo":"KdCocF00000","value":"5"'
)
_CSV_HEADER = (
    b"dataelement,period,orgunit,catoptcombo,attroptcombo,value,storedby,lastupdated,comment\n"
)
_CSV_ROW = b"KdMhOpdVis1,202401,KdOuGHAA000,KdCocF00000,,5,,,"


def _zip_bomb() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z, z.open("data.csv", "w") as member:
        zeros = b"0" * MB
        for _ in range(50):  # 50 MB that deflate to ~50 KB
            member.write(zeros)
    return buf.getvalue()


GENERATORS: dict[str, Callable[[], bytes]] = {
    "json_deep_brackets_400kb": lambda: b"[" * 400_000,
    "json_number_5mb": lambda: b'{"dataValues": [{"value": ' + b"9" * 5_000_000 + b"}]}",
    "json_string_2mb": lambda: b'{"dataValues":[' + _DV + b',"comment":"' + b"x" * 2 * MB + b'"}]}',
    "json_string_20mb": lambda: (
        b'{"dataValues":[' + _DV + b',"comment":"' + b"x" * 20 * MB + b'"}]}'
    ),
    "json_many_keys": lambda: (
        b'{"dataValues":[{' + b",".join(b'"k%d":%d' % (i, i) for i in range(200_000)) + b"}]}"
    ),
    "json_long_whitespace": lambda: b'{"dataValues":[' + b" " * 8 * MB + _DV + b"}]}",
    "csv_field_10mb": lambda: _CSV_HEADER + _CSV_ROW + b"y" * 10 * MB + b"\n" + _CSV_ROW + b"ok\n",
    "csv_field_20mb": lambda: _CSV_HEADER + _CSV_ROW + b"y" * 20 * MB + b"\n",
    "csv_wide_header": lambda: b",".join(b"c%d" % i for i in range(5000)) + b"\n1,2\n",
    "csv_many_rows_one_bad_field": lambda: (
        _CSV_HEADER
        + b"".join(
            _CSV_ROW.replace(b"F00000", b"F0000%d" % (i % 4)).replace(
                b"202401", b"2023%02d" % (i // 4 + 1)
            )
            + (b"z" * 200_000 if i == 7 else b"")
            + b"\n"
            for i in range(40)
        )
    ),
    "zip_bomb": _zip_bomb,
    "xml_deep_100k": lambda: (
        b'<iati-activities version="2.03">'
        + b"<a>" * 100_000
        + b"</a>" * 100_000
        + b"</iati-activities>"
    ),
    "xml_attribute_20mb": lambda: (
        b'<iati-activities version="2.03"><iati-activity x="'
        + b"a" * 20 * MB
        + b'"/></iati-activities>'
    ),
    "xml_text_20mb": lambda: (
        b'<iati-activities version="2.03"><iati-activity><iati-identifier>'
        + b"a" * 20 * MB
        + b"</iati-identifier></iati-activity></iati-activities>"
    ),
}


def load_manifest() -> list[dict]:
    entries = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))["files"]
    return entries


def materialise(entry: dict, tmp: Path) -> Path:
    """The corpus file of `entry`: committed, or generated into `tmp`."""
    if "file" in entry:
        return CORPUS / entry["file"]
    path = tmp / f"{entry['generate']}.{entry.get('suffix', 'dat')}"
    path.write_bytes(GENERATORS[entry["generate"]]())
    return path


def context(fmt: str, feed_id: str | None, file_name: str):
    """The parse context `knowdo check` would use: the feed's, or the first feed of the format."""
    from knowdo.config import Settings
    from knowdo.formats import ParseContext
    from knowdo.registry import load_registry

    feeds = load_registry(Settings.from_env().feeds_file)
    chosen = (
        feeds[feed_id] if feed_id else next((f for f in feeds.values() if f.format == fmt), None)
    )
    return (
        chosen.parse_context(file_name=file_name) if chosen else ParseContext(file_name=file_name)
    )


def outcome(path: Path, fmt: str, feed_id: str | None = None) -> tuple[str, str]:
    """('failed', reason) | ('rejected', reasons) | ('valid', '') as `knowdo check` finds it."""
    from knowdo.checking import check_file
    from knowdo.formats import FileRejected
    from knowdo.isolation import run_isolated

    ctx = context(fmt, feed_id, path.name)
    try:
        report = run_isolated(check_file, path, fmt, ctx, 100, limits=ctx.limits)
    except FileRejected as exc:
        return "failed", str(exc)
    if report["rows_rejected"]:
        return "rejected", " | ".join(e["reason"] for e in report["errors"])
    return "valid", ""
