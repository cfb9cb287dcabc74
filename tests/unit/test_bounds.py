"""Parse bounds (issue 13): the JSON guard, value bounds, compressed files, the encoding hint and
the limits as settings. Pure functions; the guard is checked against Python's json module."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knowdo.config import Limits
from knowdo.formats import FileRejected, Rejection, Row
from knowdo.formats._bounds import GuardedJson, bounded_parse, compressed_kind, not_text, oversized
from knowdo.formats._encoding import encoding_hint, likely_encoding, registry_line


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


def _guard_accepts(data: bytes, limits: Limits, block: int) -> bool:
    guard = GuardedJson(io.BytesIO(data), limits)
    try:
        while guard.read(block):
            pass
    except FileRejected:
        return False
    return True


# text with the characters that could fool a byte scanner: quotes, backslashes, brackets
_tricky = st.text(alphabet=st.sampled_from('ab"\\[]{}é\n\u2028'), max_size=8)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | _tricky,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_tricky, children, max_size=3)
    ),
    max_leaves=25,
)


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(value=_json, block=st.integers(1, 20), ascii_only=st.booleans())
def test_the_guard_measures_depth_exactly_whatever_the_strings_and_blocks(value, block, ascii_only):
    data = json.dumps(value, ensure_ascii=ascii_only).encode()
    depth = _depth(value)
    assert _guard_accepts(data, Limits(max_json_depth=max(depth, 1)), block)
    if depth > 1:
        assert not _guard_accepts(data, Limits(max_json_depth=depth - 1), block)


def test_the_guard_hands_on_the_same_bytes():
    data = json.dumps({"dataValues": [{"comment": '[[[\\"', "value": 12}]}).encode()
    guard = GuardedJson(io.BytesIO(data), Limits())
    assert b"".join(iter(lambda: guard.read(7), b"")) == data


@pytest.mark.parametrize("block", [1, 3, 64 * 1024])
def test_long_numbers_and_strings_fail_the_file_whatever_the_block(block):
    limits = Limits(max_json_number_chars=10, max_record_bytes=50)
    assert _guard_accepts(b"[1234567890]", limits, block)
    assert not _guard_accepts(b"[12345678901]", limits, block)
    assert _guard_accepts(b'["' + b"x" * 40 + b'"]', limits, block)
    assert not _guard_accepts(b'["' + b"x" * 60 + b'"]', limits, block)
    assert _guard_accepts(b'["' + b"1" * 40 + b'"]', limits, block)  # digits inside a string


def test_bracket_escapes_and_backslashes_at_block_ends_are_followed():
    data = b'{"a": "\\\\", "b": "\\"[[[[", "c": [[1]]}'
    for block in range(1, len(data) + 1):
        assert _guard_accepts(data, Limits(max_json_depth=3), block)
        assert not _guard_accepts(data, Limits(max_json_depth=2), block)


def test_oversized_and_non_text_values_are_found():
    assert oversized(("ab", "abcdef", 3), ("x", "y", "z"), 5) == ("y", "abcdef")
    assert oversized(("ab", None), ("x", "y"), 5) is None
    assert not_text(("ok", "caf\u00e9", "bad \ud800"), ("a", "b", "c")) == ("c", "bad \ud800")
    assert not_text(("ok", "caf\u00e9 \U0001f600"), ("a", "b")) is None


def test_bounded_parse_rejects_the_row_with_an_oversized_value_and_keeps_the_others(tmp_path):
    def parse(path, ctx):
        yield Row(1, ("a", "x" * 11))
        yield Row(2, ("b", "ok"))
        yield Rejection(3, "v", "y" * 50, "not a number")

    from knowdo.formats import ParseContext

    path = tmp_path / "f.csv"
    path.write_text("h\n")
    items = list(
        bounded_parse(parse, ("code", "comment"))(
            path, ParseContext(limits=Limits(max_field_chars=10))
        )
    )
    assert items[0] == Rejection(
        1,
        "comment",
        "x" * 11 + "…",
        "comment is 11 characters long, over the limit of 10 (KNOWDO_MAX_FIELD_CHARS)",
    )
    assert items[1] == Row(2, ("b", "ok"))
    assert items[2].value == "y" * 40 + "…" and items[2].reason == "not a number"


def test_compressed_files_are_recognised_by_their_first_bytes(tmp_path):
    import gzip
    import zipfile

    gz, zp, plain = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gz.write_bytes(gzip.compress(b"x"))
    with zipfile.ZipFile(zp, "w") as z:
        z.writestr("x.csv", "a,b\n")
    plain.write_bytes(b"PK but not a zip")
    assert compressed_kind(gz) == "a gzip file"
    assert compressed_kind(zp) == "a zip archive"
    assert compressed_kind(plain) is None


def test_limits_are_settings_with_defaults_and_clear_errors(monkeypatch):
    for name in ("KNOWDO_MAX_JSON_DEPTH", "KNOWDO_PARSE_ISOLATION"):
        monkeypatch.delenv(name, raising=False)
    assert Limits.from_env() == Limits()
    monkeypatch.setenv("KNOWDO_MAX_JSON_DEPTH", "12")
    monkeypatch.setenv("KNOWDO_PARSE_ISOLATION", "off")
    limits = Limits.from_env()
    assert limits.max_json_depth == 12 and limits.isolate is False
    monkeypatch.setenv("KNOWDO_MAX_JSON_DEPTH", "deep")
    with pytest.raises(ValueError, match="KNOWDO_MAX_JSON_DEPTH must be a whole number"):
        Limits.from_env()


REGISTRY = """feeds:
  - id: plain_feed
    format: dhis2-csv
    mapping: {}
  - id: latin_feed
    format: mhsds-csv
    options: {encoding: latin-1}
  - id: last_feed
    format: who-gho-csv
"""


def test_the_registry_line_is_the_encoding_declaration_or_the_feed_entry(tmp_path):
    registry = tmp_path / "registry.yml"
    registry.write_text(REGISTRY)
    assert registry_line(registry, "plain_feed") == (2, "- id: plain_feed")
    assert registry_line(registry, "latin_feed") == (7, "options: {encoding: latin-1}")
    assert registry_line(registry, "missing") is None


def test_the_likely_encoding_is_named_and_the_declared_one_kept(tmp_path):
    text = "code,name\n" + "".join(f"{i},Café crème brûlée déjà vu naïve\n" for i in range(50))
    path = tmp_path / "f.csv"
    path.write_bytes(text.encode("cp1252"))
    registry = tmp_path / "feeds" / "registry.yml"
    registry.parent.mkdir()
    registry.write_text(REGISTRY)
    assert likely_encoding(path) == "cp1252"
    hint = encoding_hint(path, "utf-8-sig", "plain_feed", registry)
    assert "it looks like cp1252" in hint
    assert "feed plain_feed (feeds/registry.yml line 2) declares no encoding, so utf-8" in hint
    assert "options: {encoding: cp1252}" in hint
    hint = encoding_hint(path, "utf-8-sig", "latin_feed", registry)
    assert "feeds/registry.yml line 7 declares it (options: {encoding: latin-1})" in hint
