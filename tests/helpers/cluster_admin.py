"""The local cluster's superuser, reached the only way it can be: psql over the Unix socket as the
cluster's OS owner (`postgres` when the stack runs as root, the current user otherwise)."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from psycopg import sql

ENV = os.environ
IS_ROOT = os.geteuid() == 0
LOCAL = Path(ENV["KNOWDO_LOCAL_DIR"])
SOCKET_DIR = Path(ENV.get("KNOWDO_PG_SOCKET_DIR") or LOCAL / "pg" / "run")
PG_PORT = ENV["KNOWDO_PG_PORT"]


def pg_bin(name: str) -> str:
    candidates = [
        shutil.which("pg_config")
        and str(
            Path(
                subprocess.run(
                    ["pg_config", "--bindir"], capture_output=True, text=True, check=False
                ).stdout.strip()
            )
            / name
        )
    ]
    candidates += sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"{name} not found (install the PostgreSQL server binaries: `make setup` does)")


def psql_socket(
    *,
    as_user: str | None,
    query: str,
    db: str = "postgres",
    role: str = "postgres",
    socket_dir: Path = SOCKET_DIR,
    port: str = PG_PORT,
) -> subprocess.CompletedProcess:
    """psql over the socket as OS user `as_user` (None: this process's user)."""
    cmd = [
        pg_bin("psql"),
        "-X",
        "-At",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        str(socket_dir),
        "-p",
        str(port),
        "-U",
        role,
        "-d",
        db,
        "-c",
        query,
    ]
    if as_user is not None:
        cmd = ["runuser", "-u", as_user, "--", *cmd]
    # cwd /: an OS user without access to the checkout must still be able to start psql
    return subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd="/",
        env={**ENV, "PGCONNECT_TIMEOUT": "10", "PGPASSWORD": ""},
    )


def admin_sql(query: str, db: str = "postgres") -> str:
    """A query as the cluster's superuser, the only way in: the cluster's OS owner on the socket."""
    done = psql_socket(as_user="postgres" if IS_ROOT else None, query=query, db=db)
    assert done.returncode == 0, (
        f"the cluster's owner could not administer it over the socket: {done.stderr}"
    )
    return done.stdout.strip()


@contextlib.contextmanager
def role_statement_timeout(role: str, timeout: str) -> Iterator[str]:
    """The login role's own statement_timeout (ALTER ROLE ... SET, what the stack configures) set
    to `timeout` for the block, then put back exactly as it was; yields the value it had.

    For tests whose point is "the role's timeout stops a long statement": they wait a few seconds
    instead of the product's 30. The product's value is asserted by the tests of the role limits.
    """
    ident, lit = sql.Identifier(role).as_string(None), sql.Literal(timeout).as_string(None)
    settings = admin_sql(
        "select coalesce(string_agg(s, E'\\n'), '') from pg_db_role_setting d"
        " join pg_roles r on r.oid = d.setrole, unnest(d.setconfig) s"
        f" where d.setdatabase = 0 and r.rolname = {sql.Literal(role).as_string(None)}"
        " and s like 'statement\\_timeout=%'"
    )
    before = settings.partition("=")[2] if settings else None
    admin_sql(f"alter role {ident} set statement_timeout = {lit}")
    try:
        yield before
    finally:
        admin_sql(
            f"alter role {ident} reset statement_timeout"
            if before is None
            else f"alter role {ident} set statement_timeout = {sql.Literal(before).as_string(None)}"
        )
