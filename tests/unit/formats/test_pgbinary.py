"""The binary COPY encoder: byte for byte what PostgreSQL itself sends for the same values, and
every value it cannot encode with certainty handed back for the CSV route."""

from datetime import date
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from knowdo.formats._pgbinary import SIGNATURE, TRAILER, encode, session_zone, timestamp_micros

NUMERICS = ["0", "7", "1234", "12.50", "0.001", "99999999999", "0.0000", "10000", "007",
            "100000000.00010", "1.0001", "123456789012345678901234567890.123456789", "5000",
            "0.5", "00000", None]
TEXTS = ["", "abc", "Clinique Ménière 診療所", 'say "hi",\nthen go', "\\.", None]
STAMPS = ["2025-01-15 10:00:00", "2025-01-15 10:00:00.123000", "2014-02-01 10:00:00+03:00",
          "2014-02-01 10:00:00+00:00", "1999-12-31 23:59:59.999999+00:00", "2024-07-01 00:00:00",
          "2012-01-17 10:21:05", None]


def postgres_bytes(conn, values, pg_type: str) -> bytes:
    """What PostgreSQL sends for `values`::pg_type in COPY (format binary), tuples only."""
    with conn.cursor() as cur, cur.copy(
        f"copy (select v::{pg_type} from unnest(%s::text[]) with ordinality as t(v, i) order by i)"
        " to stdout (format binary)", ([None if v is None else str(v) for v in values],)
    ) as copy:
        data = b"".join(bytes(block) for block in copy)
    assert data.startswith(SIGNATURE) and data.endswith(TRAILER)
    return data[len(SIGNATURE):-len(TRAILER)]


def encoded(values, arrow_type: pa.DataType, pg_type: str, zone=None) -> tuple[bytes, int]:
    data, rest = encode(pa.table({"v": pa.array(values, arrow_type)}), [pg_type], zone)
    return bytes(data), rest.num_rows


@pytest.mark.integration
@pytest.mark.parametrize("values, arrow_type, pg_type", [
    (NUMERICS, pa.string(), "numeric"),
    (TEXTS, pa.string(), "text"),
    ([0, 1, -1, 2**63 - 1, -(2**63), 123456789, None], pa.int64(), "bigint"),
    ([True, False, None], pa.bool_(), "boolean"),
    ([date(2000, 1, 1), date(1999, 12, 31), date(2024, 2, 29), date(1970, 1, 1), None],
     pa.date32(), "date"),
])
def test_each_type_is_encoded_as_postgresql_sends_it(loader_conn, values, arrow_type, pg_type):
    data, left = encoded(values, arrow_type, pg_type)
    assert left == 0
    assert data == postgres_bytes(loader_conn, values, pg_type)


@pytest.mark.integration
@pytest.mark.parametrize("zone_name", ["Etc/UTC", "Europe/London", "America/Sao_Paulo"])
def test_timestamps_are_read_in_the_session_time_zone_as_postgresql_reads_them(loader_conn,
                                                                                zone_name):
    loader_conn.execute(f"set local timezone = '{zone_name}'")
    zone = session_zone(loader_conn.info.parameter_status("TimeZone"))
    assert zone == ZoneInfo(zone_name)
    data, left = encoded(STAMPS, pa.string(), "timestamp with time zone", zone)
    assert left == 0
    assert data == postgres_bytes(loader_conn, STAMPS, "timestamptz")


@pytest.mark.integration
def test_a_table_of_several_columns_is_one_tuple_per_row(loader_conn):
    table = pa.table({"n": pa.array([1, None], pa.int64()), "t": ["a", None],
                      "v": ["12.50", None], "d": pa.array([date(2012, 1, 1), None], pa.date32())})
    data, rest = encode(table, ["bigint", "text", "numeric", "date"], None)
    with loader_conn.cursor() as cur, cur.copy(
        "copy (select * from (values (1::bigint, 'a'::text, 12.50::numeric, '2012-01-01'::date),"
        " (null, null, null, null)) as v) to stdout (format binary)") as copy:
        reference = b"".join(bytes(block) for block in copy)
    assert bytes(data) == reference[len(SIGNATURE):-len(TRAILER)] and rest.num_rows == 0


def test_values_not_certain_here_are_left_for_the_csv_route():
    table = pa.table({"row": pa.array(range(8), pa.int64()),
                      "value": ["7", "1E+3", "-5", "+5", ".5", "1" * 65, "12.50", None],
                      "stamp": ["2024-03-31 01:30:00", "2024-10-27 01:30:00", "2024-06-01 12:00:00",
                                None, "not a time", None, "2024-01-01 00:00:00+02:00", None]})
    zone = ZoneInfo("Europe/London")  # 2024-03-31 01:30 does not exist, 2024-10-27 01:30 twice
    data, rest = encode(table, ["bigint", "numeric", "timestamp with time zone"], zone)
    assert rest.column("row").to_pylist() == [0, 1, 2, 3, 4, 5]
    assert len(bytes(data)) > 0  # rows 6 and 7


def test_naive_timestamps_need_a_zone_python_can_read():
    assert session_zone("<+03>-03") is None and session_zone(None) is None
    assert timestamp_micros("2000-01-01 00:00:00", None) is None
    assert timestamp_micros("2000-01-01 00:00:00+00:00", None) == 0
    assert timestamp_micros("2000-01-01 01:00:00", ZoneInfo("Europe/Paris")) == 0
    assert timestamp_micros("2000-01-01 00:00:00.000001+00:00", None) == 1
    assert timestamp_micros("1999-12-31 23:59:59.999999+00:00", None) == -1


def test_an_empty_block_and_a_block_with_nothing_certain_encode_nothing():
    table = pa.table({"value": pa.array(["-1"], pa.string())})
    data, rest = encode(table, ["numeric"], None)
    assert bytes(data) == b"" and rest.num_rows == 1
    data, rest = encode(table.slice(0, 0), ["numeric"], None)
    assert bytes(data) == b"" and rest.num_rows == 0


def test_sliced_and_chunked_columns_encode_as_whole_ones():
    values = ["12.50", None, "7", "abc", "0.001", "", "99999999999", "Ménière"]
    numbers = ["12.50", None, "7", "3", "0.001", "0", "99999999999", "1"]
    whole = pa.table({"t": values, "v": numbers, "n": pa.array(range(8), pa.int64())})
    types = ["text", "numeric", "bigint"]
    expected = bytes(encode(whole.slice(2, 5), types, None)[0])
    chunked = pa.concat_tables([whole.slice(0, 4), whole.slice(4)]).slice(2, 5)
    assert chunked.column("t").num_chunks == 2
    assert bytes(encode(chunked, types, None)[0]) == expected
    rebuilt = pa.table({"t": values[2:7], "v": numbers[2:7],
                        "n": pa.array(range(2, 7), pa.int64())})
    assert bytes(encode(rebuilt, types, None)[0]) == expected


def test_a_block_whose_fields_all_have_one_width_is_one_matrix():
    table = pa.table({"t": ["ab", "cd"], "n": pa.array([1, 2], pa.int64())})
    data, _ = encode(table, ["text", "bigint"], None)
    row = (b"\x00\x02" + b"\x00\x00\x00\x02" + b"%s" + b"\x00\x00\x00\x08" + b"\x00" * 7 + b"%s")
    assert bytes(data) == row % (b"ab", b"\x01") + row % (b"cd", b"\x02")


@pytest.mark.parametrize("odd", [False, True])
@pytest.mark.parametrize("zone_name", ["Etc/UTC", "Europe/London", "Asia/Kolkata"])
def test_timestamps_read_in_bulk_equal_those_read_one_by_one(zone_name, odd):
    import random
    from datetime import datetime, timedelta, timezone

    rng = random.Random(3)
    zone = ZoneInfo(zone_name)
    texts = []
    for _ in range(3000):
        moment = datetime(1990, 1, 1) + timedelta(seconds=rng.randint(0, 40 * 365 * 86400),
                                                  microseconds=rng.choice([0, rng.randint(0, 999999)]))
        kind = rng.random()
        if kind < 0.4:
            offset = timezone(timedelta(minutes=rng.choice([-570, -60, 0, 60, 180, 330, 765])))
            moment = moment.replace(tzinfo=offset)
        texts.append(moment.isoformat(sep=" ") if kind < 0.95 else moment.date().isoformat())
    texts += [None, "2024-02-30 10:00:00", "not a time", "2024-03-31 01:30:00"] if odd else [None]
    data, rest = encode(pa.table({"t": texts}), ["timestamp with time zone"], zone)
    expected = [timestamp_micros(t, zone) if t else None for t in texts]
    certain = [t is None or m is not None for t, m in zip(texts, expected)]
    assert rest.column("t").to_pylist() == [t for t, ok in zip(texts, certain) if not ok]
    kept = [m for t, m, ok in zip(texts, expected, certain) if ok]
    reference = b"".join(
        b"\x00\x01" + (b"\xff\xff\xff\xff" if m is None else b"\x00\x00\x00\x08"
                       + m.to_bytes(8, "big", signed=True)) for m in kept)
    assert bytes(data) == reference
