"""Publish: swap audited candidate marts into `marts` in one transaction (write-audit-publish).

Readers of `marts` see either the previous version of every mart or the new version of every mart,
never a mix: all swaps commit together, and each table is replaced under an exclusive lock.
"""

from __future__ import annotations

import logging

from psycopg import sql

from knowdo.config import Settings
from knowdo.db import connect

log = logging.getLogger(__name__)


def publish(tables: list[str], settings: Settings | None = None,
            source_schema: str = "marts_candidate", target_schema: str = "marts") -> dict[str, int]:
    """Copy each candidate table into the target schema, replacing the published one atomically."""
    settings = settings or Settings.from_env()
    counts: dict[str, int] = {}
    with connect(settings.transformer_url) as conn, conn.transaction():
        conn.execute("set local lock_timeout = '60s'")
        for table in tables:
            src = sql.Identifier(source_schema, table)
            new = sql.Identifier(target_schema, f"{table}__publishing")
            dst = sql.Identifier(target_schema, table)
            conn.execute(sql.SQL("drop table if exists {}").format(new))
            conn.execute(sql.SQL("create table {} (like {} including all)").format(new, src))
            counts[table] = conn.execute(sql.SQL("insert into {} select * from {}").format(new, src)).rowcount
            conn.execute(sql.SQL("drop table if exists {}").format(dst))
            conn.execute(sql.SQL("alter table {} rename to {}").format(new, sql.Identifier(table)))
            conn.execute(sql.SQL("grant select on {} to knowdo_marts_reader").format(dst))
            log.info("published %s.%s (%s rows)", target_schema, table, counts[table])
    return counts
