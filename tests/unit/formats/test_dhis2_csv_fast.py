"""The loader's vectorised DHIS2 CSV path gives exactly the rows and rejections of `parse_csv`."""

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from knowdo.formats import FastPathUnavailable, OutOfScope, ParseContext, Rejection, Row
from knowdo.formats import _dhis2_csv_fast as fast
from knowdo.formats.dhis2 import COLUMNS
from knowdo.formats.dhis2_csv import parse_csv
from tests.helpers.dhis2_csv_faults import (
    HEADER,
    MAPPING,
    ODD_RECORDS,
    TODAY,
    planted_faults_csv,
)

FIXTURES = sorted((Path(__file__).resolve().parents[2] / "fixtures" / "dhis2_csv").glob("*.csv"))
FIXTURE_MAPPING = {
    "data_elements": {"f7n9E0hX8qk": "mh_outpatient_contacts", "Ix2HsbDMLea": "mh_admissions"},
    "org_units": {"DiszpKrYNg8": "GH-AA"},
}


def context(mapping=MAPPING, **options) -> ParseContext:
    # as the loader runs parsers: duplicate keys are its business (in SQL), not the parser's
    return ParseContext(mapping=mapping, options=options, today=TODAY, defer_duplicate_check=True)


def from_text(name: str, text):
    """A vectorised-path cell back in map_value's Python type (the loader sends both as text)."""
    if text is None:
        return None
    if name == "value":
        return Decimal(text)
    if name == "last_updated":
        return datetime.fromisoformat(text)
    return text


def row_path(path: Path, ctx: ParseContext) -> tuple[list[tuple], list[Rejection], int]:
    rows, rejections, read = [], [], 0
    OUT_OF_SCOPE[path, "row"] = []
    for item in parse_csv(path, ctx):
        read = max(read, item.row)
        if isinstance(item, Row):
            rows.append((item.row, *item.values))
        elif isinstance(item, OutOfScope):
            OUT_OF_SCOPE[path, "row"].append(item)
        else:
            rejections.append(item)
    return rows, rejections, read


OUT_OF_SCOPE: dict = {}  # (path, which path) -> the OutOfScope records it gave


def vectorised_path(path: Path, ctx: ParseContext) -> tuple[list[tuple], list[Rejection], int]:
    rows, rejections, read, periods = [], [], 0, set()
    OUT_OF_SCOPE[path, "vectorised"] = []
    for chunk in fast.load_tables(path, ctx):
        assert chunk.table.schema == fast.SCHEMA
        table = chunk.table.to_pylist()
        rows += [(r["row_number"], *(from_text(c, r[c]) for c in COLUMNS)) for r in table]
        rejections += chunk.rejections
        OUT_OF_SCOPE.setdefault((path, "vectorised"), []).extend(chunk.out_of_scope)
        read += chunk.records
        assert chunk.periods == {r["period"] for r in table}
        if table:
            starts = [r["period_start"] for r in table]
            assert (chunk.first_period, chunk.last_period) == (min(starts), max(starts))
        periods |= chunk.periods
    return sorted(rows), rejections, read


def assert_same(path: Path, ctx: ParseContext) -> tuple[list[tuple], list[Rejection]]:
    expected_rows, expected_rejections, expected_read = row_path(path, ctx)
    rows, rejections, read = vectorised_path(path, ctx)
    assert rows == sorted(expected_rows)
    assert rejections == expected_rejections  # field, value, reason and order, several per record
    # out of scope: the same records with the same unmapped ids (in file order on both paths)
    assert OUT_OF_SCOPE[path, "vectorised"] == OUT_OF_SCOPE[path, "row"]
    assert read == expected_read
    return rows, rejections


@pytest.fixture
def small_blocks(monkeypatch):
    # blocks of a few KB, so the planted faults and repeated keys fall in many blocks
    monkeypatch.setattr(fast, "BLOCK_BYTES", 8192)


@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda p: p.name)
def test_real_fixtures_load_the_same(fixture):
    rows, _ = assert_same(fixture, context(FIXTURE_MAPPING))
    assert len(rows) == 3 and rows[1][6] == Decimal(1204)


@pytest.mark.parametrize("shape", [{}, {"newline": "\r\n"}, {"bom": True}, {"seed": 11}])
def test_planted_faults_give_the_same_rows_and_rejections(tmp_path, small_blocks, shape):
    path = planted_faults_csv(tmp_path / "faults.csv", **shape)
    rows, rejections = assert_same(path, context())
    reasons = {r.reason.split(":")[0].split(" (")[0] for r in rejections}
    # the file really exercises the exact path, not only the vectorised one
    assert {
        "negative count",
        "value is not a number",
        "categoryOptionCombo is missing",
        "period starts in the future",
        "value is missing",
    } <= reasons
    # ids outside the mapping are out of scope, never rejections
    assert not any("unknown" in r.reason for r in rejections)
    unmapped = {i for o in OUT_OF_SCOPE[path, "row"] for i in o.ids}
    assert {
        ("data_element", "UNKNOWNDE01"),
        ("org_unit", "NoSuchOu999"),
        ("category_option_combo", "cocX"),
    } <= unmapped
    assert len(rows) > 2500
    loaded = {r[0]: dict(zip(COLUMNS, r[1:])) for r in rows}
    padded = next(v for v in loaded.values() if v["period"] == "201403")
    assert (padded["data_element"], padded["org_unit"], padded["value"]) == (
        "f7n9E0hX8qk",
        "Ou000000001",
        Decimal(8),
    )


def test_mapping_without_combos_and_a_deleted_column(tmp_path, small_blocks):
    lines = ["dataElement,period,orgUnit,categoryOptionCombo,value,deleted,created"]
    flags = ["true", "no", "YES", "1", "0", " Yes ", "", "y"]
    lines += [
        f"f7n9E0hX8qk,2020{m:02d},Ou000000003,any{m},{m},{flags[m % len(flags)]},"
        f"2020-0{m % 9 + 1}-02"
        for m in range(1, 13)
    ]
    lines += ["f7n9E0hX8qk,202101,Ou000000003,,,TRUE,", "f7n9E0hX8qk,202102,Ou000000003,,,false,"]
    path = tmp_path / "no_combos.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    mapping = {k: v for k, v in MAPPING.items() if k != "category_option_combos"}
    rows, rejections = assert_same(path, context(mapping))
    assert len(rows) == 13 and [r.field for r in rejections] == ["value"]
    assert sum(r[7] for r in rows) == 7  # deleted: YES, 1, " Yes ", true, YES, 1 and TRUE


def test_every_odd_record_has_as_many_cells_as_the_header():
    # else pyarrow would refuse the file and these tests would compare the row path with itself
    import csv

    width = len(HEADER.split(","))
    assert all(len(next(csv.reader([r.replace("\n", " ")]))) == width for r in ODD_RECORDS)


@pytest.mark.parametrize(
    ("content", "options"),
    [
        (HEADER + "\nf7n9E0hX8qk,201201,Ou000000001,cocF,aoc,1,,,,,extra\n", {}),  # a cell too many
        (HEADER + "\nf7n9E0hX8qk,201201,Ou000000001,cocF\n", {}),  # cells too few
        (
            HEADER + "\nf7n9E0hX8qk,201201,Ou000000001,cocF,aoc,1,,,M\xe9ni\xe8re,\n",
            {},
        ),  # not UTF-8
        (HEADER + "\nf7n9E0hX8qk,201201,Ou000000001,cocF,aoc,1,,,ok,\n", {"encoding": "latin-1"}),
        (
            HEADER.replace(",", ";") + "\nf7n9E0hX8qk;201201;Ou000000001;cocF;aoc;1;;;;\n",
            {"delimiter": ";;"},
        ),
        ("dataelement,period,orgunit\nf7n9E0hX8qk,201201,Ou000000001\n", {}),  # header rejected
        ("", {}),
    ],
)
def test_what_pyarrow_would_read_differently_is_left_to_the_row_parser(tmp_path, content, options):
    path = tmp_path / "odd.csv"
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(FastPathUnavailable):
        list(fast.load_tables(path, context(**options)))


def test_a_nul_byte_after_the_first_block_is_left_to_the_row_parser(tmp_path, small_blocks):
    path = planted_faults_csv(tmp_path / "nul.csv")
    path.write_bytes(path.read_bytes() + b"f7n9E0hX8qk,201201,Ou000000001,cocF,aoc,1,,,a\x00b,\n")
    with pytest.raises(FastPathUnavailable):
        list(fast.load_tables(path, context()))


def test_a_declared_semicolon_delimiter_is_read(tmp_path):
    path = tmp_path / "semi.csv"
    path.write_text(
        HEADER.replace(",", ";") + "\nf7n9E0hX8qk;201201;Ou000000001;cocF;aoc;1,5;;;a, b;\n",
        encoding="utf-8",
    )
    rows, _ = assert_same(path, context(delimiter=";"))
    assert rows[0][6] == Decimal(15) and rows[0][10] == "a, b"


def test_exact_rows_convert_to_the_schema():
    # the rows map_value loads keep their Python values' text form
    row = (
        1,
        "de",
        "201201",
        "ou",
        None,
        None,
        Decimal("1E+3"),
        True,
        None,
        datetime(2024, 1, 2, 3, 4, 5),
        None,
        "ind",
        "geo",
        None,
        None,
        date(2012, 1, 1),
        "month",
        date(2012, 1, 31),
    )
    table = fast._as_table([row])
    assert table.schema == fast.SCHEMA
    (out,) = table.to_pylist()
    assert out["value"] == "1E+3" and out["last_updated"] == "2024-01-02 03:04:05"
    assert out["deleted"] is True and out["period_start"] == date(2012, 1, 1)
    assert out["period_end"] == date(2012, 1, 31)
    assert fast._as_table([]).num_rows == 0 and isinstance(fast._as_table([]), pa.Table)
