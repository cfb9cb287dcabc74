"""Loading the real service-use, outcome and reference files into their raw tables (rolled back)."""

from pathlib import Path

import pytest

from knowdo.loading import ingest_file
from knowdo.registry import Feed

pytestmark = pytest.mark.integration

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def feed(feed_id, fmt, kind="reference", domain="reference", mapping=None, **options):
    return Feed(
        id=feed_id,
        publisher_name="Test publisher",
        publisher_kind=kind,
        domain=domain,
        format=fmt,
        source={},
        mapping=mapping or {},
        options=options,
    )


def batch_rows(conn, table, batch_id, columns):
    return conn.execute(
        f"select {columns} from {table} where batch_id = %s order by row_number", (batch_id,)
    ).fetchall()


def rejected(conn, batch_id):
    return conn.execute(
        "select row_number, field, value, reason from ops.rejected_rows"
        " where batch_id = %s order by row_number",
        (batch_id,),
    ).fetchall()


def test_who_gho_exports_load_every_fact(loader_conn, tmp_path):
    gho = feed("test_who_gho", "who-gho-csv")
    for name, count in (("MH_6.csv", 146), ("GHED_GGHE-DCHE_SHA2011.csv", 4637)):
        result = ingest_file(loader_conn, gho, FIXTURES / "who_gho" / name, tmp_path / "landing")
        assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", count, 0)
    ghana = loader_conn.execute(
        "select indicator_code, period, value_numeric::text, is_suppressed from raw.who_gho_values"
        " where feed_id = %s and country_code = 'GHA' and period in (2016, 2021) order by 1, 2",
        (gho.id,),
    ).fetchall()
    assert ghana == [
        ("GHED_GGHE-DCHE_SHA2011", 2016, "38.35555", False),
        ("GHED_GGHE-DCHE_SHA2011", 2021, "54.38338", False),
        ("MH_6", 2016, "0.05801", False),
    ]
    # both files in one feed: MH_6's years are not superseded by the GHED file
    statuses = loader_conn.execute(
        "select status from ops.load_batches where feed_id = %s", (gho.id,)
    ).fetchall()
    assert statuses == [("loaded",), ("loaded",)]


def test_talking_therapies_monthly_and_annual_load_with_suppressed_cells_null(
    loader_conn, tmp_path
):
    tt = feed(
        "test_nhs_tt",
        "nhs-talking-therapies-csv",
        kind="arc",
        domain="service_use",
        reporting_period="2024-25",
    )
    monthly = ingest_file(
        loader_conn, tt, FIXTURES / "nhs" / "measures_monthly_2025-09.csv", tmp_path / "landing"
    )
    assert (monthly.status, monthly.rows_read, monthly.rows_loaded) == ("loaded", 6, 6)
    values = batch_rows(
        loader_conn,
        "raw.nhs_talking_therapies_measures",
        monthly.batch_id,
        "measure_id, measure_value, is_suppressed, raw_value",
    )
    assert values[0] == ("M001", 154572, False, "154572")
    assert values[4] == ("M005", None, True, "*")

    annual = ingest_file(
        loader_conn, tt, FIXTURES / "nhs" / "measures_annual_2024-25.csv", tmp_path / "landing"
    )
    assert (annual.status, annual.rows_read, annual.rows_loaded, annual.rows_rejected) == (
        "loaded",
        6,
        264,
        0,
    )
    summary = loader_conn.execute(
        "select count(*) filter (where is_suppressed), count(*) filter (where is_suppressed and"
        " measure_value is not null), count(*) filter (where measure_value = 0),"
        " min(reporting_period_start), max(reporting_period_end)"
        " from raw.nhs_talking_therapies_measures where batch_id = %s",
        (annual.batch_id,),
    ).fetchone()
    assert summary[:3] == (88, 0, 0)
    assert (summary[3].isoformat(), summary[4].isoformat()) == ("2024-04-01", "2025-03-31")
    periods = loader_conn.execute(
        "select periods from ops.load_batches where batch_id = %s", (annual.batch_id,)
    ).fetchone()[0]
    assert periods == ["2024-04-01/2025-03-31"]


def test_mhsds_files_load_and_record_their_rejections(loader_conn, tmp_path):
    mhsds = feed("test_mhsds", "mhsds-csv", kind="arc", domain="service_use", encoding="latin-1")
    may = ingest_file(
        loader_conn,
        mhsds,
        FIXTURES / "nhs" / "mhsds_monthly_2025-05_latin1.csv",
        tmp_path / "landing",
    )
    assert (may.status, may.rows_read, may.rows_loaded, may.rows_rejected) == ("loaded", 5, 3, 2)
    assert [r[:3] for r in rejected(loader_conn, may.batch_id)] == [
        (4, "MEASURE_VALUE", "104.2"),
        (5, "MEASURE_VALUE", "-15"),
    ]
    loaded = batch_rows(
        loader_conn,
        "raw.mhsds_measures",
        may.batch_id,
        "secondary_level_description, measure_value, is_suppressed",
    )
    assert loaded == [
        ("Ménière's disease and vertigo service", 1385, False),
        ("Ménière's disease and vertigo service", None, True),
        ("NONE", None, True),
    ]  # NHS writes NONE for "no secondary level"; kept

    utf8 = feed("test_mhsds_utf8", "mhsds-csv", kind="arc", domain="service_use")
    june = ingest_file(
        loader_conn, utf8, FIXTURES / "nhs" / "mhsds_monthly_2025-06.csv", tmp_path / "landing"
    )
    assert (june.status, june.rows_loaded, june.rows_rejected) == ("loaded", 8, 0)
    national = batch_rows(
        loader_conn,
        "raw.mhsds_measures",
        june.batch_id,
        "reporting_period_start::text, measure_id, measure_value, is_suppressed",
    )
    assert national[0] == ("2025-06-01", "MHS01", 1512345, False)
    assert sum(1 for r in national if r[3] and r[2] is None) == 3


def test_dhis2_csv_loads_into_the_dhis2_table(loader_conn, tmp_path):
    dhis2 = feed(
        "test_dhis2_csv",
        "dhis2-csv",
        kind="ministry",
        domain="service_use",
        mapping={
            "data_elements": {"f7n9E0hX8qk": "mh_outpatient_contacts"},
            "org_units": {"DiszpKrYNg8": "GH-AA"},
        },
    )
    result = ingest_file(
        loader_conn, dhis2, FIXTURES / "dhis2_csv" / "dataValueSet.csv", tmp_path / "landing"
    )
    # the third value's data element is not in this feed's mapping: out of scope, not rejected
    assert (result.status, result.rows_loaded, result.rows_rejected) == ("loaded", 2, 0)
    assert result.rows_out_of_scope == 1
    assert batch_rows(
        loader_conn, "raw.dhis2_data_values", result.batch_id, "period, value, indicator_code"
    ) == [("201201", 10, "mh_outpatient_contacts"), ("201202", 1204, "mh_outpatient_contacts")]
    assert rejected(loader_conn, result.batch_id) == []
    assert loader_conn.execute(
        "select id_kind, source_id, row_count from ops.out_of_scope_ids where batch_id = %s",
        (result.batch_id,),
    ).fetchall() == [("data_element", "Ix2HsbDMLea", 1)]
