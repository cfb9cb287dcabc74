"""The ingest benchmark's generated feed: accepted whole by the real parser, and its raw-shaped copy
holds exactly the rows the loader would COPY (so `psql \\copy` of it is a fair baseline)."""

from __future__ import annotations

import csv
import importlib.util
import sys
from datetime import date
from pathlib import Path

import yaml

from knowdo.formats import FORMATS, ParseContext, Rejection, Row
from knowdo.registry import load_registry

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench" / "ingest"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_ingest_{name}", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


feedgen = _load("feedgen")


def _parse(tmp_path: Path, rows: int) -> tuple[list[Row | Rejection], Path]:
    source, raw_copy, registry = tmp_path / "f.csv", tmp_path / "f.raw.csv", tmp_path / "r.yml"
    feedgen.write_feed(rows, source, raw_copy)
    feedgen.write_registry(registry, rows)
    feed = load_registry(registry)[feedgen.FEED_ID]
    ctx = ParseContext(
        mapping=feed.mapping, options=feed.options, today=date(2026, 1, 1), feed_id=feed.id
    )
    return list(FORMATS[feed.format].parse(source, ctx)), raw_copy


def test_every_generated_row_is_accepted_by_the_dhis2_csv_parser(tmp_path):
    # more rows than one org unit holds, ending part-way through the last one
    rows = feedgen.ROWS_PER_ORG_UNIT * 2 + 37
    items, _ = _parse(tmp_path, rows)
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert rejections == []
    assert len(items) == rows
    keys = {row.values[:5] for row in items}
    assert len(keys) == rows  # unique keys: the loader's duplicate check rejects nothing


def _as_copy_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return value.isoformat(sep=" ") if hasattr(value, "hour") else str(value)


def test_raw_shaped_copy_holds_what_the_loader_would_copy(tmp_path):
    items, raw_copy = _parse(tmp_path, 500)
    with raw_copy.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == feedgen.RAW_COLUMNS
        copied = list(reader)
    assert len(copied) == len(items)
    for row, line in zip(items, copied, strict=True):
        assert line[2:4] == [str(row.row), feedgen.FEED_ID]
        assert line[4:] == [_as_copy_text(v) for v in row.values]


def test_raw_columns_match_the_raw_table_the_loader_fills():
    from knowdo.loading import BATCH_COLUMNS

    assert feedgen.RAW_COLUMNS == BATCH_COLUMNS + FORMATS["dhis2-csv"].columns


def test_generation_is_deterministic_and_exact_in_size(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    feedgen.write_feed(1234, first)
    feedgen.write_feed(1234, second)
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_text(encoding="utf-8").splitlines()) == 1 + 1234


def test_registry_maps_every_org_unit_the_feed_uses():
    rows = feedgen.ROWS_PER_ORG_UNIT * 3 + 1
    mapped = feedgen.registry(rows)["feeds"][0]["mapping"]["org_units"]
    used = {feedgen.org_unit_id(ou) for _, ou, *_ in feedgen.keys(rows)}
    assert used == set(mapped)
    assert len(mapped) == 4
    assert yaml.safe_load(yaml.safe_dump(feedgen.registry(10)))["feeds"][0]["format"] == "dhis2-csv"


def test_last_line_reads_rates_and_ratios_of_the_medians():
    run = _load("run")
    result = run.SizeResult(
        rows=1000,
        ingest_s=[2.0, 1.0, 4.0],
        ingest_rss_mb=[50.0, 60.4, 55.0],
        psql_s=[0.5, 0.25, 1.0],
        pandas_s=[10.0],
    )
    # medians: ingest 2 s -> 500 rows/s; psql 0.5 s -> 2000 rows/s; pandas 100 rows/s
    assert run.last_line(result) == ("ingest_vs_copy=0.250 ingest_vs_pandas=5.0 peak_rss_mb=60")


def test_pandas_is_extrapolated_at_the_measured_rate_and_marked():
    run = _load("run")
    measured = run.SizeResult(rows=1000, pandas_s=[10.0])
    larger = run.SizeResult(rows=5000)
    run.extrapolate_pandas(larger, measured)
    assert larger.pandas_s == [50.0]
    assert larger.pandas_extrapolated_from == 1000


def test_peak_rss_is_the_measured_process_own_not_the_parent_interpreter():
    run = _load("run")
    small = run.run_measured(["/bin/true"], {})
    large = run.run_measured(
        [sys.executable, "-c", "block = bytearray(200 * 2**20); block[::4096] = b'x' * 51200"], {}
    )
    assert small.returncode == 0 and large.returncode == 0
    assert small.rss_mb < 20  # a fork of this interpreter would start at its ~40 MB or more
    assert 200 <= large.rss_mb < 400
