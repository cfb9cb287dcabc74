"""Values and an encoder call shared by the unit and integration tests of the binary COPY
encoder."""

import pyarrow as pa

from knowdo.formats._pgbinary import encode

NUMERICS = [
    "0",
    "7",
    "1234",
    "12.50",
    "0.001",
    "99999999999",
    "0.0000",
    "10000",
    "007",
    "100000000.00010",
    "1.0001",
    "123456789012345678901234567890.123456789",
    "5000",
    "0.5",
    "00000",
    None,
]
TEXTS = ["", "abc", "Clinique Ménière 診療所", 'say "hi",\nthen go', "\\.", None]
STAMPS = [
    "2025-01-15 10:00:00",
    "2025-01-15 10:00:00.123000",
    "2014-02-01 10:00:00+03:00",
    "2014-02-01 10:00:00+00:00",
    "1999-12-31 23:59:59.999999+00:00",
    "2024-07-01 00:00:00",
    "2012-01-17 10:21:05",
    None,
]


def encoded(values, arrow_type: pa.DataType, pg_type: str, zone=None) -> tuple[bytes, int]:
    data, rest = encode(pa.table({"v": pa.array(values, arrow_type)}), [pg_type], zone)
    return bytes(data), rest.num_rows
