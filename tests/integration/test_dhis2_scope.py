"""Real DHIS2 and DATIM exports into the real cluster: ids outside a feed's mapping are counted as
out of scope (ops.load_batches.rows_out_of_scope, ops.out_of_scope_ids), never written to
ops.rejected_rows, with the same counts on the vectorised CSV path, the CSV row path and DHIS2
JSON; every DHIS2 period type reaches raw with its first and last day; migration 052 upgrades a
warehouse that already holds data. Every change is rolled back after each test."""

import csv
import json
from collections import Counter
from datetime import date
from pathlib import Path

import pytest

from knowdo.db import migration_files
from knowdo.loading import ingest_file
from knowdo.registry import Feed

pytestmark = pytest.mark.integration

REAL = Path(__file__).resolve().parents[1] / "fixtures" / "dhis2_real"
DATIM = REAL / "datim_test-data.csv"
BOOLEANS = REAL / "dhis2-core_dataValueSetBooleanTest.csv"
ELEMENTS = ["sfl3EJj4Gvv", "TbG5gCQH78Q", "q2mgsjDtNft", "HClygqtgRlE"]


def records(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def datim_feed(feed_id: str, fmt: str = "dhis2-csv") -> Feed:
    units = sorted({r["ou"] for r in records(DATIM)})[::2]
    return Feed(
        id=feed_id,
        publisher_name="DATIM test export",
        publisher_kind="funder",
        domain="service_use",
        format=fmt,
        source={"folder": "x", "glob": "*"},
        mapping={
            "data_elements": {de: f"ind_{i}" for i, de in enumerate(ELEMENTS)},
            "org_units": {ou: f"GEO-{i}" for i, ou in enumerate(units)},
        },
    )


def expected_out_of_scope(feed: Feed) -> tuple[int, Counter]:
    ids: Counter = Counter()
    rows = 0
    for r in records(DATIM):
        missing = (
            [("data_element", r["de"])] if r["de"] not in feed.mapping["data_elements"] else []
        )
        if r["ou"] not in feed.mapping["org_units"]:
            missing.append(("org_unit", r["ou"]))
        ids.update(missing)
        rows += bool(missing)
    return rows, ids


def batch_state(conn, batch_id: int) -> dict:
    columns = ("status", "rows_read", "rows_loaded", "rows_rejected", "rows_out_of_scope")
    batch = dict(
        zip(
            columns,
            conn.execute(
                f"select {', '.join(columns)} from ops.load_batches where batch_id = %s",
                (batch_id,),
            ).fetchone(),
        )
    )
    batch["ids"] = Counter(
        {
            (kind, source_id): count
            for kind, source_id, count in conn.execute(
                "select id_kind, source_id, row_count from ops.out_of_scope_ids"
                " where batch_id = %s",
                (batch_id,),
            )
        }
    )
    batch["rejected"] = conn.execute(
        "select count(*) from ops.rejected_rows where batch_id = %s", (batch_id,)
    ).fetchone()[0]
    batch["raw"] = conn.execute(
        "select count(*) from raw.dhis2_data_values where batch_id = %s", (batch_id,)
    ).fetchone()[0]
    return batch


def as_json(path: Path, out: Path) -> Path:
    names = {
        "de": "dataElement",
        "pe": "period",
        "ou": "orgUnit",
        "coc": "categoryOptionCombo",
        "acoc": "attributeOptionCombo",
        "value": "value",
    }
    values = [{names[k]: v for k, v in r.items() if v != ""} for r in records(path)]
    out.write_text(json.dumps({"dataValues": values}), encoding="utf-8")
    return out


def test_a_datim_export_loads_its_scope_and_counts_the_rest_on_every_path(loader_conn, tmp_path):
    states = {}
    for path_name, fmt, vectorised in (
        ("fast", "dhis2-csv", True),
        ("rows", "dhis2-csv", False),
        ("json", "dhis2-json", True),
        ("json_rows", "dhis2-json", False),  # issue 13: dhis2-json has a vectorised path too
    ):
        feed = datim_feed(f"test_scope_{path_name}", fmt)
        source = DATIM if fmt == "dhis2-csv" else as_json(DATIM, tmp_path / "datim.json")
        result = ingest_file(loader_conn, feed, source, tmp_path / "landing", vectorised=vectorised)
        assert result.vectorised == vectorised
        state = batch_state(loader_conn, result.batch_id)
        assert result.rows_out_of_scope == state["rows_out_of_scope"]
        states[path_name] = state

    rows_outside, ids = expected_out_of_scope(datim_feed("x"))
    expected = {
        "status": "loaded",
        "rows_read": 1000,
        "rows_loaded": 1000 - rows_outside,
        "rows_rejected": 0,
        "rows_out_of_scope": rows_outside,
        "ids": ids,
        "rejected": 0,
        "raw": 1000 - rows_outside,
    }
    assert 0 < rows_outside < 1000
    assert states["fast"] == states["rows"] == states["json"] == states["json_rows"] == expected


def test_out_of_scope_rows_never_reach_rejected_rows_while_bad_values_do(loader_conn, tmp_path):
    feed = Feed(
        id="test_scope_booleans",
        publisher_name="dhis2-core test",
        publisher_kind="ministry",
        domain="service_use",
        format="dhis2-csv",
        source={"folder": "x", "glob": "*"},
        mapping={
            "data_elements": {
                "jH26dja2f30": {"indicator": "yes_no", "value_type": "BOOLEAN"},
                "jH26dja2f31": {"indicator": "ticked", "value_type": "TRUE_ONLY"},
            },
            "org_units": {"DiszpKrYNg8": "GH-AA"},
        },
    )
    result = ingest_file(loader_conn, feed, BOOLEANS, tmp_path / "landing")
    state = batch_state(loader_conn, result.batch_id)
    # the file repeats three keys (element, period, org unit): one row each loads, the repeats
    # are duplicate-key rejections; four values are not booleans; row 9 is out of scope
    assert (state["rows_loaded"], state["rows_rejected"], state["rows_out_of_scope"]) == (3, 14, 1)
    assert state["ids"] == Counter({("org_unit", "BdfsJfj87js"): 1})
    rejected = {
        n: reason
        for n, reason in loader_conn.execute(
            "select row_number, reason from ops.rejected_rows where batch_id = %s",
            (result.batch_id,),
        )
    }
    assert 9 not in rejected
    assert {n for n, r in rejected.items() if r.startswith("value is not a")} == {11, 12, 17, 18}
    assert {n for n, r in rejected.items() if r.startswith("duplicate key")} == {
        2,
        4,
        5,
        6,
        7,
        8,
        10,
        14,
        15,
        16,
    }
    values = dict(
        loader_conn.execute(
            "select row_number, value from raw.dhis2_data_values where batch_id = %s",
            (result.batch_id,),
        ).fetchall()
    )
    assert values == {1: 1, 3: 0, 13: 1}  # true, false, and TRUE_ONLY's 1


def test_every_period_type_reaches_raw_with_its_first_and_last_day(loader_conn, tmp_path):
    periods = {
        "20190115": ("day", date(2019, 1, 15), date(2019, 1, 15)),
        "2020W53": ("week", date(2020, 12, 28), date(2021, 1, 3)),
        "2019SunW1": ("week_sunday", date(2018, 12, 30), date(2019, 1, 5)),
        "2019BiW3": ("biweek", date(2019, 1, 28), date(2019, 2, 10)),
        "201901B": ("bimonth", date(2019, 1, 1), date(2019, 2, 28)),
        "2019S2": ("sixmonth", date(2019, 7, 1), date(2019, 12, 31)),
        "2019AprilS2": ("sixmonth_april", date(2019, 10, 1), date(2020, 3, 31)),
        "2019NovS1": ("sixmonth_november", date(2018, 11, 1), date(2019, 4, 30)),
        "2019July": ("financial_july", date(2019, 7, 1), date(2020, 6, 30)),
        "2015Oct": ("financial_october", date(2015, 10, 1), date(2016, 9, 30)),
        "2019Nov": ("financial_november", date(2018, 11, 1), date(2019, 10, 31)),
    }
    path = tmp_path / "periods.csv"
    path.write_text(
        "de,pe,ou,coc,acoc,value\n"
        + "".join(
            f'"f7n9E0hX8qk","{p}","DiszpKrYNg8","","","{i}"\n' for i, p in enumerate(periods)
        ),
        encoding="utf-8",
    )
    feed = Feed(
        id="test_scope_periods",
        publisher_name="p",
        publisher_kind="ministry",
        domain="service_use",
        format="dhis2-csv",
        source={"folder": "x", "glob": "*"},
        mapping={"data_elements": {"f7n9E0hX8qk": "mh"}, "org_units": {"DiszpKrYNg8": "G"}},
    )
    result = ingest_file(loader_conn, feed, path, tmp_path / "landing")
    assert (result.rows_loaded, result.rows_rejected) == (len(periods), 0)
    stored = {
        p: (t, s, e)
        for p, t, s, e in loader_conn.execute(
            "select period, period_type, period_start, period_end from raw.dhis2_data_values"
            " where batch_id = %s",
            (result.batch_id,),
        )
    }
    assert stored == periods
    first, last = loader_conn.execute(
        "select period_start, period_end from ops.load_batches where batch_id = %s",
        (result.batch_id,),
    ).fetchone()
    assert (first, last) == (date(2015, 10, 1), date(2020, 12, 28))  # earliest and latest start


def test_migration_052_upgrades_a_warehouse_that_already_holds_batches(loader_conn):
    """Set 052's objects aside inside the test's transaction, leave a batch loaded the old way,
    apply 052 again as `knowdo db migrate` would: the batch counts 0 rows out of scope and keeps
    its rows."""
    (sql,) = [text for name, text in migration_files() if name == "052_dhis2_scope.sql"]
    # (dbt's staging views depend on the new columns: they are set aside by renaming, which
    # views survive, rather than dropped)
    loader_conn.execute("drop table ops.out_of_scope_ids")
    loader_conn.execute(
        "alter table ops.load_batches rename column rows_out_of_scope"
        " to rows_out_of_scope_set_aside"
    )
    loader_conn.execute(
        "alter table raw.dhis2_data_values rename column period_end to period_end_set_aside"
    )
    loader_conn.execute(
        "alter table raw.dhis2_data_values drop constraint dhis2_data_values_period_type_check"
    )
    loader_conn.execute(
        "alter table raw.dhis2_data_values add constraint"
        " dhis2_data_values_period_type_check"
        " check (period_type in ('month', 'quarter', 'year'))"
    )
    loader_conn.execute(
        "insert into ops.landed_files values ('old-sha', 'old_feed', 'old.json', 1,"
        " '/nowhere', now())"
    )
    batch_id = loader_conn.execute(
        "insert into ops.load_batches (feed_id, file_sha256, file_name, format, status, rows_read,"
        " rows_loaded, rows_out_of_scope_set_aside) values ('old_feed', 'old-sha', 'old.json',"
        " 'dhis2-json', 'loaded', 1, 1, 0)"
        " returning batch_id"
    ).fetchone()[0]
    loader_conn.execute(
        "insert into raw.dhis2_data_values (batch_id, file_sha256, row_number, feed_id,"
        " data_element, period, org_unit, value, indicator_code, geography_code, period_start,"
        " period_type) values (%s, 'old-sha', 1, 'old_feed', 'de', '2019Q1', 'ou', 3, 'i', 'g',"
        " '2019-01-01', 'quarter')",
        (batch_id,),
    )

    loader_conn.execute(sql)
    loader_conn.execute(sql)  # idempotent

    assert loader_conn.execute(
        "select rows_out_of_scope, rows_loaded from ops.load_batches where batch_id = %s",
        (batch_id,),
    ).fetchone() == (0, 1)
    assert loader_conn.execute(
        "select period_type, period_end from raw.dhis2_data_values where batch_id = %s", (batch_id,)
    ).fetchone() == ("quarter", None)
    loader_conn.execute(
        "insert into ops.out_of_scope_ids values (%s, 'org_unit', 'x', 2)", (batch_id,)
    )
    with pytest.raises(Exception, match="id_kind"), loader_conn.transaction():
        loader_conn.execute(
            "insert into ops.out_of_scope_ids values (%s, 'other', 'x', 2)", (batch_id,)
        )
