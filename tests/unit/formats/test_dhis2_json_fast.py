"""The loader's vectorised DHIS2 JSON path gives exactly the rows, rejections and out-of-scope
values of `parse_json`, or leaves the file to it (FastPathUnavailable)."""

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.formats import FastPathUnavailable, OutOfScope, ParseContext, Row
from knowdo.formats import _dhis2_json_fast as fast
from knowdo.formats.dhis2 import COLUMNS, parse_json
from tests.helpers.dhis2_csv_faults import MAPPING, TODAY
from tests.helpers.dhis2_json_docs import ODD_VALUES, values, write  # noqa: F401

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REAL = sorted((FIXTURES / "dhis2_real").glob("*.json")) + [FIXTURES / "dhis2_dataValueSetJ.json"]


# one dataValue each beside the plain ones: cases the vectorised path must route through
# map_value or read exactly as ijson does
def context(mapping=MAPPING) -> ParseContext:
    return ParseContext(mapping=mapping, today=TODAY, defer_duplicate_check=True)


def from_text(name: str, text):
    if text is None:
        return None
    if name == "value":
        return Decimal(text)
    if name == "last_updated":
        return datetime.fromisoformat(text)
    return text


def row_path(path: Path, ctx: ParseContext):
    rows, rejections, outside = [], [], []
    for item in parse_json(path, ctx):
        if isinstance(item, Row):
            rows.append((item.row, *item.values))
        elif isinstance(item, OutOfScope):
            outside.append(item)
        else:
            rejections.append(item)
    return sorted(rows), rejections, outside


def vectorised_path(path: Path, ctx: ParseContext):
    rows, rejections, outside, read = [], [], [], 0
    for chunk in fast.load_tables(path, ctx):
        assert chunk.table.schema == fast.SCHEMA
        table = chunk.table.to_pylist()
        rows += [(r["row_number"], *(from_text(c, r[c]) for c in COLUMNS)) for r in table]
        rejections += chunk.rejections
        outside += chunk.out_of_scope
        read += chunk.records
        assert chunk.periods == {r["period"] for r in table}
    return sorted(rows), rejections, outside, read


def assert_same(path: Path, ctx: ParseContext):
    expected = row_path(path, ctx)
    rows, rejections, outside, read = vectorised_path(path, ctx)
    assert rows == expected[0]
    assert rejections == expected[1]
    assert outside == expected[2]
    return rows, rejections, outside, read


@pytest.fixture
def small_blocks(monkeypatch):
    # blocks of a few hundred bytes: objects, strings and escapes fall across block boundaries
    monkeypatch.setattr(fast, "BLOCK_BYTES", 1500)


@pytest.mark.parametrize("fixture", REAL, ids=lambda p: p.name)
def test_real_exports_give_the_same_result(fixture, small_blocks):
    try:
        assert_same(fixture, context(None))
    except FastPathUnavailable:
        # left to the row parser: it must then be a file the row parser rejects or reads oddly
        pytest.fail(f"{fixture.name}: the vectorised path refused a real export")


@pytest.mark.parametrize(
    ("indent", "bom", "seed"), [(None, False, 1), (2, False, 2), (None, True, 3), ("\t", False, 4)]
)
def test_planted_faults_give_the_same_rows_rejections_and_out_of_scope(
    tmp_path, small_blocks, indent, bom, seed
):
    document = {"dataSet": "ds1", "completeDate": "2020-01-01", "dataValues": values(seed, 700)}
    path = write(tmp_path / "faults.json", document, indent, bom)
    rows, rejections, outside, read = assert_same(path, context())
    assert read == 700
    reasons = {r.reason.split(":")[0].split(" (")[0] for r in rejections}
    assert {"negative count", "value is not a number", "value is missing"} <= reasons
    assert {"period starts in the future", "dataElement is missing"} <= reasons
    unmapped = {i for o in outside for i in o.ids}
    assert ("data_element", "UNKNOWNDE01") in unmapped and ("org_unit", "NoSuchOu999") in unmapped
    assert len(rows) > 500


def test_set_level_defaults_before_the_values(tmp_path, small_blocks):
    items = values(5, 400)
    for item in items:
        item.pop("period", None)
        item.pop("orgUnit", None)
    items[3]["period"] = "201105"  # a value's own period wins over the set's
    document = {"period": "201001", "orgUnit": "Ou000000002", "dataValues": items}
    rows, *_ = assert_same(write(tmp_path / "set.json", document), context())
    assert {r[2] for r in rows} >= {"201001", "201105"}


@pytest.mark.parametrize(
    "content",
    [
        # the set's period after the values, which lack one: only a second pass could know
        (
            '{"dataValues": [{"dataElement": "f7n9E0hX8qk", "orgUnit": "Ou000000001",'
            ' "value": "1"}], "period": "201201"}'
        ),
        # an explicit null where the set gives a default (the row parser keeps the null)
        (
            '{"period": "201201", "dataValues": [{"dataElement": "f7n9E0hX8qk", "period": null,'
            ' "orgUnit": "Ou000000001", "value": "1"}]}'
        ),
        '{"dataValues": [{"value": 5}]}',  # a number where DHIS2 writes a string
        '{"dataValues": [{"value": "1", "value": "2"}]}',  # a repeated field
        '{"dataValues": [{"value": "1"} {"value": "2"}]}',  # a missing comma
        '{"dataValues": [{"value": "1"},, {"value": "2"}]}',
        '{"dataValues": [{"value": "1"},]}',
        '{"dataValues": [{"value": "1"}, 5]}',  # an entry not an object
        '{"dataValues": [[{"value": "1"}]]}',
        '{"dataValues": [{"value": "1"}]',  # truncated
        '{"dataValues": [{"value": "1"}]} x',  # trailing garbage
        '{"dataValues": {"value": "1"}}',
        '[{"dataValues": [{"value": "1"}]}]',
        '{"other": [1], "dataValues": [{"value": "1"}]}',  # not the first array: row parser
        '{"dataValues": [{"value": "a\\ud800b"}]}',  # a lone surrogate escape
        '{"dataValues": [{"value": "1"}], "dataValues": []}',
        '{"dataValues": [{"value": "1", "deleted": "true"}]}',
        '{"dataValues": [{"value": "1", "followup": NaN}]}',  # pyarrow takes it, ijson not
        '{"dataValues": [{"value": "1", "followup": -Infinity}]}',
        '{"dataValues": [{"value": "1"}]}'.replace("1", "\x01"),  # a raw control character
    ],
)
def test_what_pyarrow_would_read_differently_is_left_to_the_row_parser(tmp_path, content):
    path = tmp_path / "odd.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(FastPathUnavailable):
        list(fast.load_tables(path, context()))


def test_bytes_that_are_not_utf8_are_left_to_the_row_parser(tmp_path, small_blocks):
    document = {"dataValues": values(6, 50)}
    raw = json.dumps(document).encode("utf-8").replace(b'"admin"', b'"adm\xe9n"', 1)
    path = tmp_path / "latin.json"
    path.write_bytes(raw)
    with pytest.raises(FastPathUnavailable):
        list(fast.load_tables(path, context()))


def test_a_guarded_bound_is_left_to_the_row_parser(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text('{"dataValues": [{"x": ' + "[" * 100 + "]" * 100 + "}]}", encoding="utf-8")
    with pytest.raises(FastPathUnavailable):
        list(fast.load_tables(path, context()))


def test_an_empty_array_gives_no_rows(tmp_path):
    path = write(tmp_path / "empty.json", {"dataSet": "x", "dataValues": []})
    assert list(fast.load_tables(path, context())) == []


@pytest.mark.parametrize(
    "content",
    [
        '{"completeDate": "2020-02-03", "dataValues": [{"value": "1"}]}',
        '{"dataValues": [{"value": "1"}], "completeDate": "2020-02-03T10:00:00+02:00"}',
        '{"completeDate": "2020-02-03", "dataValues": [], "completeDate": "2021-01-01"}',
        '{"completeDate": 20200203, "dataValues": [{"value": "1"}]}',
        '{"dataValues": [{"value": "1"}]}',
        '{"completeDate": "not a date", "dataValues": [{"value": "1"}]}',
    ],
)
def test_submitted_at_reads_what_ijson_reads(tmp_path, content):
    # (asked by the loader once a file has loaded, so of well-formed files only)
    from knowdo.formats import dhis2_json as dhis2

    path = tmp_path / "set.json"
    path.write_text(content, encoding="utf-8")
    try:
        expected = dhis2._complete_date(dhis2._set_defaults(path).get("completeDate"))
    except Exception:  # noqa: BLE001 - the row parser's own outcome for a broken file
        expected = None
    assert dhis2.submitted_at(path) == expected


def _bad_inputs():
    from tests.helpers.badinputs import load_manifest

    return [e for e in load_manifest() if e["format"] == "dhis2-json"]


@pytest.mark.parametrize(
    "entry", _bad_inputs(), ids=lambda e: e.get("file") or e.get("generate") or "entry"
)
def test_the_bad_input_corpus_gives_the_row_parsers_outcome_or_is_left_to_it(entry, tmp_path):
    """Every DHIS2 JSON file of tests/fixtures/bad: the vectorised path never loads a file the row
    parser fails, and what it loads is what the row parser gives (the loader's own bounds on the
    row path - field length, surrogates - are the row parser's, reached by the fall back)."""
    from dataclasses import replace

    from knowdo.formats import FileRejected
    from knowdo.formats._bounds import bounded_parse
    from tests.helpers.badinputs import context as feed_context
    from tests.helpers.badinputs import materialise

    path = materialise(entry, tmp_path)
    ctx = replace(feed_context("dhis2-json", entry.get("feed"), path.name), today=TODAY)
    ctx = replace(ctx, defer_duplicate_check=True)
    try:
        expected = list(bounded_parse(parse_json, COLUMNS, json=True)(path, ctx))
    except FileRejected:
        expected = None
    try:
        chunks = list(fast.load_tables(path, ctx))
    except FastPathUnavailable:
        return  # the loader falls back to the row parser: its outcome by construction
    assert expected is not None, "the vectorised path loaded a file the row parser fails"
    rows = sorted(r for c in chunks for r in c.table.column("row_number").to_pylist())
    assert rows == sorted(i.row for i in expected if isinstance(i, Row))
    assert [r for c in chunks for r in c.rejections] == [
        i for i in expected if not isinstance(i, (Row, OutOfScope))
    ]
    assert [o for c in chunks for o in c.out_of_scope] == [
        i for i in expected if isinstance(i, OutOfScope)
    ]
