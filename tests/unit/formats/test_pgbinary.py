"""The binary COPY encoder: every value it cannot encode with certainty is handed back for the CSV
route (tests/integration/test_pgbinary_matches_postgres.py checks the bytes against PostgreSQL)."""

from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from knowdo.formats._pgbinary import encode, session_zone, timestamp_micros


def test_values_not_certain_here_are_left_for_the_csv_route():
    table = pa.table(
        {
            "row": pa.array(range(8), pa.int64()),
            "value": ["7", "1E+3", "-5", "+5", ".5", "1" * 65, "12.50", None],
            "stamp": [
                "2024-03-31 01:30:00",
                "2024-10-27 01:30:00",
                "2024-06-01 12:00:00",
                None,
                "not a time",
                None,
                "2024-01-01 00:00:00+02:00",
                None,
            ],
        }
    )
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
    rebuilt = pa.table(
        {"t": values[2:7], "v": numbers[2:7], "n": pa.array(range(2, 7), pa.int64())}
    )
    assert bytes(encode(rebuilt, types, None)[0]) == expected


def test_a_block_whose_fields_all_have_one_width_is_one_matrix():
    table = pa.table({"t": ["ab", "cd"], "n": pa.array([1, 2], pa.int64())})
    data, _ = encode(table, ["text", "bigint"], None)
    row = b"\x00\x02" + b"\x00\x00\x00\x02" + b"%s" + b"\x00\x00\x00\x08" + b"\x00" * 7 + b"%s"
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
        moment = datetime(1990, 1, 1) + timedelta(
            seconds=rng.randint(0, 40 * 365 * 86400),
            microseconds=rng.choice([0, rng.randint(0, 999999)]),
        )
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
        b"\x00\x01"
        + (
            b"\xff\xff\xff\xff"
            if m is None
            else b"\x00\x00\x00\x08" + m.to_bytes(8, "big", signed=True)
        )
        for m in kept
    )
    assert bytes(data) == reference
