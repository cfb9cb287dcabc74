"""The pandas baseline: `read_csv` + `to_sql(method=None, chunksize=10000)`, as many pipelines do.

Run as its own process by run.py so its wall time and peak RSS are measured alone:
    python pandas_load.py FILE SQLALCHEMY_URL SCHEMA TABLE
Prints the number of rows written.
"""

from __future__ import annotations

import sys

import pandas as pd
from sqlalchemy import create_engine


def main(path: str, url: str, schema: str, table: str) -> int:
    frame = pd.read_csv(path)
    engine = create_engine(url)
    try:
        frame.to_sql(
            table,
            engine,
            schema=schema,
            if_exists="replace",
            index=False,
            method=None,
            chunksize=10000,
        )
    finally:
        engine.dispose()
    return len(frame)


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit("usage: pandas_load.py FILE SQLALCHEMY_URL SCHEMA TABLE")
    print(main(*sys.argv[1:]))
