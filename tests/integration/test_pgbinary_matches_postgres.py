"""The binary COPY encoder, byte for byte what PostgreSQL itself sends for the same values (the
project's cluster answers `copy ... to stdout (format binary)`)."""

from datetime import date
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from knowdo.formats._pgbinary import SIGNATURE, TRAILER, encode, session_zone
from tests.helpers.pgbinary import NUMERICS, STAMPS, TEXTS, encoded

pytestmark = pytest.mark.integration


def postgres_bytes(conn, values, pg_type: str) -> bytes:
    """What PostgreSQL sends for `values`::pg_type in COPY (format binary), tuples only."""
    with (
        conn.cursor() as cur,
        cur.copy(
            f"copy (select v::{pg_type} from unnest(%s::text[]) with ordinality as t(v, i)"
            " order by i) to stdout (format binary)",
            ([None if v is None else str(v) for v in values],),
        ) as copy,
    ):
        data = b"".join(bytes(block) for block in copy)
    assert data.startswith(SIGNATURE) and data.endswith(TRAILER)
    return data[len(SIGNATURE) : -len(TRAILER)]


@pytest.mark.parametrize(
    "values, arrow_type, pg_type",
    [
        (NUMERICS, pa.string(), "numeric"),
        (TEXTS, pa.string(), "text"),
        ([0, 1, -1, 2**63 - 1, -(2**63), 123456789, None], pa.int64(), "bigint"),
        ([True, False, None], pa.bool_(), "boolean"),
        (
            [date(2000, 1, 1), date(1999, 12, 31), date(2024, 2, 29), date(1970, 1, 1), None],
            pa.date32(),
            "date",
        ),
    ],
)
def test_each_type_is_encoded_as_postgresql_sends_it(loader_conn, values, arrow_type, pg_type):
    data, left = encoded(values, arrow_type, pg_type)
    assert left == 0
    assert data == postgres_bytes(loader_conn, values, pg_type)


@pytest.mark.parametrize("zone_name", ["Etc/UTC", "Europe/London", "America/Sao_Paulo"])
def test_timestamps_are_read_in_the_session_time_zone_as_postgresql_reads_them(
    loader_conn, zone_name
):
    loader_conn.execute(f"set local timezone = '{zone_name}'")
    zone = session_zone(loader_conn.info.parameter_status("TimeZone"))
    assert zone == ZoneInfo(zone_name)
    data, left = encoded(STAMPS, pa.string(), "timestamp with time zone", zone)
    assert left == 0
    assert data == postgres_bytes(loader_conn, STAMPS, "timestamptz")


def test_a_table_of_several_columns_is_one_tuple_per_row(loader_conn):
    table = pa.table(
        {
            "n": pa.array([1, None], pa.int64()),
            "t": ["a", None],
            "v": ["12.50", None],
            "d": pa.array([date(2012, 1, 1), None], pa.date32()),
        }
    )
    data, rest = encode(table, ["bigint", "text", "numeric", "date"], None)
    with (
        loader_conn.cursor() as cur,
        cur.copy(
            "copy (select * from (values"
            " (1::bigint, 'a'::text, 12.50::numeric, '2012-01-01'::date),"
            " (null, null, null, null)) as v) to stdout (format binary)"
        ) as copy,
    ):
        reference = b"".join(bytes(block) for block in copy)
    assert bytes(data) == reference[len(SIGNATURE) : -len(TRAILER)] and rest.num_rows == 0
