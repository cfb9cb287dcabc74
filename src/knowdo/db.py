"""Warehouse connections and the loader's schema migrations (src/knowdo/sql/NNN_*.sql)."""

from __future__ import annotations

from importlib import resources

import psycopg

from knowdo.config import Settings


def connect(url: str | None = None, **kwargs) -> psycopg.Connection:
    """A psycopg 3 connection; the loader's URL unless another is given."""
    return psycopg.connect(url or Settings.from_env().warehouse_url, **kwargs)


def migration_files() -> list[tuple[str, str]]:
    files = sorted(
        (f.name, f.read_text(encoding="utf-8"))
        for f in resources.files("knowdo.sql").iterdir()
        if f.name.endswith(".sql")
    )
    return files


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not yet recorded in ops.schema_migrations, each in its
    own transaction."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute(
            "create table if not exists ops.schema_migrations ("
            " version text primary key, applied_at timestamptz not null default now())"
        )
    done = {r[0] for r in conn.execute("select version from ops.schema_migrations")}
    for name, sql in migration_files():
        if name in done:
            continue
        with conn.transaction():
            conn.execute(sql)
            conn.execute("insert into ops.schema_migrations (version) values (%s)", (name,))
        applied.append(name)
    return applied
