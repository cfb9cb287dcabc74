"""Landing and loading against the real cluster (every change rolled back after each test)."""

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from knowdo.formats.dhis2 import COLUMNS
from knowdo.landing import sha256_of
from knowdo.loading import ingest_file
from knowdo.registry import load_registry
from knowdo.synth.dhis2 import org_unit_uid
from tests.helpers import dhis2_csv_faults as faults

pytestmark = pytest.mark.integration


@pytest.fixture
def feed(settings):
    # a feed id of its own so nothing here can be mistaken for the sample ministry's data
    return replace(load_registry(settings.feeds_file)["gha_moh_dhis2"], id="test_loading_feed")


def dhis2_file(path, values):
    path.write_text(json.dumps({"dataValues": values}), encoding="utf-8")
    return path


def value(period="202401", v="12", coc="KdCocF00002"):
    return {
        "dataElement": "KdMhOpdVis1",
        "period": period,
        "orgUnit": org_unit_uid("GH-AA"),
        "categoryOptionCombo": coc,
        "value": v,
    }


def test_file_is_landed_with_hash_and_loaded_once(loader_conn, feed, tmp_path):
    src = dhis2_file(tmp_path / "jan.json", [value(), value(coc="KdCocM00002", v="7")])
    first = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (first.status, first.rows_loaded, first.rows_rejected) == ("loaded", 2, 0)
    assert first.sha256 == sha256_of(src)
    landed = loader_conn.execute(
        "select landing_path, size_bytes from ops.landed_files where file_sha256 = %s",
        (first.sha256,),
    ).fetchone()
    assert (
        sha256_of(__import__("pathlib").Path(landed[0])) == first.sha256
        and landed[1] == src.stat().st_size
    )
    rows = loader_conn.execute(
        "select row_number, file_sha256, value from raw.dhis2_data_values"
        " where batch_id = %s order by row_number",
        (first.batch_id,),
    ).fetchall()
    assert rows == [(1, first.sha256, 12), (2, first.sha256, 7)]

    again = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert again.already_loaded and again.batch_id == first.batch_id
    n = loader_conn.execute(
        "select count(*) from raw.dhis2_data_values where feed_id = %s", (feed.id,)
    ).fetchone()[0]
    assert n == 2


def test_rejected_rows_are_recorded_and_the_rest_loads(loader_conn, feed, tmp_path):
    src = dhis2_file(
        tmp_path / "bad_rows.json",
        [value(), value(period="202402", v="-1"), value(period="202403")],
    )
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 2, 1)
    rejected = loader_conn.execute(
        "select row_number, field, value, reason from ops.rejected_rows where batch_id = %s",
        (result.batch_id,),
    ).fetchall()
    assert (
        len(rejected) == 1
        and rejected[0][:3] == (2, "value", "-1")
        and "negative" in rejected[0][3]
    )


def test_unreadable_file_is_kept_and_marked_failed(loader_conn, feed, tmp_path):
    src = tmp_path / "truncated.json"
    src.write_text(
        '{"dataValues": [{"dataElement": "KdMhOpdVis1", "period": "2024', encoding="utf-8"
    )
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert result.status == "failed" and "not valid JSON" in result.error
    batch = loader_conn.execute(
        "select status, error from ops.load_batches where batch_id = %s", (result.batch_id,)
    ).fetchone()
    assert batch[0] == "failed"
    assert (
        loader_conn.execute(
            "select count(*) from raw.dhis2_data_values where batch_id = %s", (result.batch_id,)
        ).fetchone()[0]
        == 0
    )
    assert (
        loader_conn.execute(
            "select count(*) from ops.landed_files where file_sha256 = %s", (result.sha256,)
        ).fetchone()[0]
        == 1
    )


def test_corrected_resend_supersedes_the_earlier_batch(loader_conn, feed, tmp_path):
    first = ingest_file(
        loader_conn, feed, dhis2_file(tmp_path / "jan.json", [value(v="12")]), tmp_path / "l"
    )
    resend = ingest_file(
        loader_conn, feed, dhis2_file(tmp_path / "jan_v2.json", [value(v="15")]), tmp_path / "l"
    )
    assert resend.superseded == (first.batch_id,)
    status = dict(
        loader_conn.execute(
            "select batch_id, status from ops.load_batches where feed_id = %s", (feed.id,)
        ).fetchall()
    )
    assert status == {first.batch_id: "superseded", resend.batch_id: "loaded"}
    # the earlier rows stay traceable
    assert (
        loader_conn.execute(
            "select count(*) from raw.dhis2_data_values where batch_id = %s", (first.batch_id,)
        ).fetchone()[0]
        == 1
    )


def test_duplicate_keys_are_rejected_in_the_database_after_copy(loader_conn, feed, tmp_path):
    src = dhis2_file(
        tmp_path / "dups.json",
        [value(v="12"), value(v="13"), value(period="202402"), value(v="14")],
    )
    result = ingest_file(loader_conn, feed, src, tmp_path / "landing")
    assert (result.rows_loaded, result.rows_rejected) == (2, 2)
    kept = loader_conn.execute(
        "select row_number, value from raw.dhis2_data_values where batch_id = %s"
        " order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert kept == [(1, 12), (3, 12)]
    reasons = loader_conn.execute(
        "select row_number, reason from ops.rejected_rows where batch_id = %s order by row_number",
        (result.batch_id,),
    ).fetchall()
    assert [r[0] for r in reasons] == [2, 4] and all(
        "duplicate key" in r[1] and "(row 1)" in r[1] for r in reasons
    )
    batch = loader_conn.execute(
        "select rows_loaded, rows_rejected from ops.load_batches where batch_id = %s",
        (result.batch_id,),
    ).fetchone()
    assert batch == (2, 2)


# --- DHIS2 CSV: the vectorised path loads exactly what the row path loads ------------------------
CSV_FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dhis2_csv" / "dataValueSet.csv"
RAW_COLUMNS = ("row_number", *COLUMNS)


@pytest.fixture
def csv_feeds(feed):
    """Two feeds over the same mapping (a file's bytes load once per feed): one per path."""
    mapping = {
        **faults.MAPPING,
        "org_units": {**faults.ORG_UNITS, "DiszpKrYNg8": "GH-AA"},
        "data_elements": faults.ELEMENTS,
        "category_option_combos": {**faults.COMBOS, "HllvX50cXC0": None},
    }
    base = replace(feed, format="dhis2-csv", mapping=mapping, options={})
    return replace(base, id="test_loading_rows"), replace(base, id="test_loading_vectorised")


def loaded_state(conn, result):
    raw = conn.execute(
        f"select {', '.join(RAW_COLUMNS)} from raw.dhis2_data_values"
        " where batch_id = %s order by row_number",
        (result.batch_id,),
    ).fetchall()
    rejected = conn.execute(
        "select row_number, field, value, reason from ops.rejected_rows"
        " where batch_id = %s order by 1, 2, 3, 4",
        (result.batch_id,),
    ).fetchall()
    batch = conn.execute(
        "select status, rows_read, rows_loaded, rows_rejected, periods,"
        " period_start, period_end from ops.load_batches where batch_id = %s",
        (result.batch_id,),
    ).fetchone()
    return raw, rejected, batch


def load_both_ways(conn, feeds, path, landing):
    by_rows = ingest_file(conn, feeds[0], path, landing, vectorised=False)
    vectorised = ingest_file(conn, feeds[1], path, landing)
    assert not by_rows.vectorised
    assert (vectorised.rows_read, vectorised.rows_loaded, vectorised.rows_rejected) == (
        by_rows.rows_read,
        by_rows.rows_loaded,
        by_rows.rows_rejected,
    )
    assert loaded_state(conn, vectorised) == loaded_state(conn, by_rows)
    return vectorised


def test_vectorised_csv_load_equals_the_row_load_on_the_real_fixture(
    loader_conn, csv_feeds, tmp_path
):
    vectorised = load_both_ways(loader_conn, csv_feeds, CSV_FIXTURE, tmp_path / "landing")
    assert vectorised.vectorised and (vectorised.rows_loaded, vectorised.rows_rejected) == (3, 0)


@pytest.mark.parametrize(
    "shape", [{"records": 30_000}, {"records": 3000, "newline": "\r\n", "bom": True}]
)
def test_vectorised_csv_load_equals_the_row_load_with_planted_faults(
    loader_conn, csv_feeds, tmp_path, shape
):
    path = faults.planted_faults_csv(tmp_path / "faults.csv", **shape)
    vectorised = load_both_ways(loader_conn, csv_feeds, path, tmp_path / "landing")
    assert vectorised.vectorised
    reasons = [
        r[0]
        for r in loader_conn.execute(
            "select reason from ops.rejected_rows where batch_id = %s", (vectorised.batch_id,)
        )
    ]
    # repeated keys far apart (other blocks) and a repeat with a NULL attributeOptionCombo
    assert sum("duplicate key" in r for r in reasons) > 10
    assert (
        loader_conn.execute(
            "select count(*) from raw.dhis2_data_values where batch_id = %s and period = '201404'"
            " and attribute_option_combo is null",
            (vectorised.batch_id,),
        ).fetchone()[0]
        == 1
    )
    assert vectorised.rows_loaded > 0.8 * shape["records"]


def test_a_record_pyarrow_cannot_read_late_in_the_file_falls_back_whole(
    loader_conn, csv_feeds, tmp_path
):
    path = faults.planted_faults_csv(tmp_path / "late_fault.csv", records=30_000)
    with path.open("a", encoding="utf-8") as fh:  # ~2.5 MB in: blocks were already sent to COPY
        fh.write("f7n9E0hX8qk,201909,Ou000000002,cocF,aoc,4,,,,,one cell too many\n")
    vectorised = load_both_ways(loader_conn, csv_feeds, path, tmp_path / "landing")
    assert not vectorised.vectorised  # the savepoint dropped what the attempt had copied
    assert (
        loader_conn.execute(
            "select count(*) from raw.dhis2_data_values where batch_id = %s", (vectorised.batch_id,)
        ).fetchone()[0]
        == vectorised.rows_loaded
    )
    assert (
        loader_conn.execute(
            "select reason from ops.rejected_rows"
            " where batch_id = %s and reason like '%%more cell%%'",
            (vectorised.batch_id,),
        ).fetchone()
        is not None
    )


def test_copy_csv_gives_postgresql_null_and_empty_string_apart(loader_conn):
    import pyarrow as pa

    from knowdo.formats._arrow import copy_csv

    comments = [None, "", 'say "hi",\nthen go', "\\."]
    table = pa.table(
        {
            "batch_id": pa.array([-1] * 4, pa.int64()),
            "file_sha256": ["x"] * 4,
            "row_number": pa.array(range(4), pa.int64()),
            "feed_id": ["f"] * 4,
            "data_element": ["de"] * 4,
            "period": ["201201"] * 4,
            "org_unit": ["ou"] * 4,
            "comment": comments,
            "indicator_code": ["i"] * 4,
            "geography_code": ["g"] * 4,
            "period_start": pa.array([date(2012, 1, 1)] * 4, pa.date32()),
            "period_type": ["month"] * 4,
        }
    )
    with (
        loader_conn.cursor() as cur,
        cur.copy(
            f"copy raw.dhis2_data_values ({', '.join(table.column_names)})"
            " from stdin with (format csv)"
        ) as copy,
    ):
        copy.write(copy_csv(table))
    back = loader_conn.execute(
        "select comment from raw.dhis2_data_values where batch_id = -1 order by row_number"
    ).fetchall()
    assert [r[0] for r in back] == comments


# --- binary COPY (the default) loads exactly what COPY of CSV loads ------------------------------
VALUE_SHAPES = [
    "0",
    "7",
    '"1,234"',
    "12.50",
    "0.001",
    "99999999999",
    "-5",
    "",
    "007",
    "1.0001",
    "10000",
    "0.0000",
    '"12,34,5"',
    "1e3",
    "+5",
    ".5",
    "1.",
    "123456789.123456789",
    "1" * 70,
]
STAMP_SHAPES = [
    "",
    "2025-01-15T10:00:00.000",
    "2025-01-15T10:00:00",
    "2025-01-15",
    "2014-02-01T10:00:00+03:00",
    "2014-02-01T10:00:00Z",
    "2014-02-01T10:00:00.123+01:00",
    "2024-03-31T01:30:00",
    "2024-10-27T01:30:00",
    "2014-13-01T00:00:00",
]


def value_shapes_csv(path: Path) -> Path:
    """Every value shape with every timestamp shape, and comments of every kind of text."""
    comments = ["", "Clinique Ménière 診療所", '"two\nlines, ""quoted"""', "plain"]
    lines = [faults.HEADER]
    units = iter(faults.ORG_UNITS)
    for i, stamp in enumerate(STAMP_SHAPES):
        unit = next(units)
        for j, value in enumerate(VALUE_SHAPES):
            lines.append(
                f"f7n9E0hX8qk,{2015 + j // 12}{j % 12 + 1:02d},{unit},cocF,aoc,{value},"
                f"admin,{stamp},{comments[(i + j) % len(comments)]},"
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def raw_as_text_differ(conn, first: int, second: int) -> list:
    """Rows of one batch not in the other (either way, duplicates counted), every column as text,
    so '12.50' and '12.5' differ although the numbers are equal."""
    text = ", ".join(f"{c}::text" for c in RAW_COLUMNS)
    return conn.execute(
        f"(select {text} from raw.dhis2_data_values where batch_id = %(a)s except all"
        f" select {text} from raw.dhis2_data_values where batch_id = %(b)s) union all"
        f" (select {text} from raw.dhis2_data_values where batch_id = %(b)s except all"
        f" select {text} from raw.dhis2_data_values where batch_id = %(a)s)",
        {"a": first, "b": second},
    ).fetchall()


@pytest.mark.parametrize("zone", ["Etc/UTC", "Europe/London"])
@pytest.mark.parametrize("source", ["fixture", "faults", "value_shapes"])
def test_binary_copy_loads_exactly_what_csv_copy_loads(
    loader_conn, csv_feeds, tmp_path, zone, source
):
    path = {
        "fixture": lambda: CSV_FIXTURE,
        "faults": lambda: faults.planted_faults_csv(tmp_path / "faults.csv", records=30_000),
        "value_shapes": lambda: value_shapes_csv(tmp_path / "shapes.csv"),
    }[source]()
    loader_conn.execute(f"set local timezone = '{zone}'")
    by_csv = ingest_file(loader_conn, csv_feeds[0], path, tmp_path / "landing", copy_format="csv")
    by_binary = ingest_file(
        loader_conn, csv_feeds[1], path, tmp_path / "landing", copy_format="binary"
    )
    assert by_csv.vectorised and by_binary.vectorised and by_binary.rows_loaded > 0
    assert raw_as_text_differ(loader_conn, by_csv.batch_id, by_binary.batch_id) == []
    assert loaded_state(loader_conn, by_binary)[1:] == loaded_state(loader_conn, by_csv)[1:]
    assert (
        loader_conn.execute(
            "select count(*) from raw.dhis2_data_values where batch_id = %s", (by_binary.batch_id,)
        ).fetchone()[0]
        == by_binary.rows_loaded
    )


def test_value_shapes_load_as_the_row_path_loads_them(loader_conn, csv_feeds, tmp_path):
    """The binary default against the row parser itself, on every value and timestamp shape."""
    path = value_shapes_csv(tmp_path / "shapes.csv")
    vectorised = load_both_ways(loader_conn, csv_feeds, path, tmp_path / "landing")
    by_rows = loader_conn.execute(
        "select batch_id from ops.load_batches where feed_id = %s", (csv_feeds[0].id,)
    ).fetchone()[0]
    assert raw_as_text_differ(loader_conn, by_rows, vectorised.batch_id) == []
    loaded = dict(
        loader_conn.execute(
            "select value::text, count(*) from raw.dhis2_data_values"
            " where batch_id = %s group by 1",
            (vectorised.batch_id,),
        ).fetchall()
    )
    assert {"0", "7", "1234", "12.50", "0.001", "99999999999", "0.0000"} <= set(loaded)


def test_an_unknown_copy_format_is_refused(loader_conn, csv_feeds, tmp_path):
    with pytest.raises(ValueError, match="copy_format must be binary or csv, not 'parquet'"):
        ingest_file(
            loader_conn, csv_feeds[0], CSV_FIXTURE, tmp_path / "landing", copy_format="parquet"
        )
    assert (
        loader_conn.execute(
            "select count(*) from ops.load_batches where feed_id = %s", (csv_feeds[0].id,)
        ).fetchone()[0]
        == 0
    )
