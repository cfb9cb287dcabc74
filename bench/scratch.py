"""What the benchmarks share: their scratch database (never the warehouse), created like any
warehouse by `infra/local/stack.sh init-db` (roles, schemas, grants, loader tables), and its
URLs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# the warehouse's own URLs: unset for init-db, so it builds them for the scratch database
WAREHOUSE_URL_SETTINGS = (
    "KNOWDO_WAREHOUSE_URL",
    "KNOWDO_GX_WAREHOUSE_URL",
    "KNOWDO_TRANSFORMER_URL",
)
ROLES = {  # role -> (user, password setting, local default)
    "loader": ("knowdo_loader", "KNOWDO_LOADER_PASSWORD", "knowdo-loader-local"),
    "transformer": (
        "knowdo_transformer",
        "KNOWDO_TRANSFORMER_PASSWORD",
        "knowdo-transformer-local",
    ),
}


class BenchError(Exception):
    """A step of a benchmark failed; the message is one sentence for the user."""


def pg_address() -> tuple[str, str]:
    """(host, port) of the project's cluster, from the stack's settings or their local defaults."""
    return (
        os.environ.get("KNOWDO_PG_HOST") or "127.0.0.1",
        os.environ.get("KNOWDO_PG_PORT") or "55432",
    )


def role_credentials(role: str) -> tuple[str, str]:
    """(user, password) of one of the warehouse roles (`loader`, `transformer`)."""
    user, password_setting, default = ROLES[role]
    return user, os.environ.get(password_setting) or default


def role_url(db: str, role: str, scheme: str = "postgresql") -> str:
    """URL of `db` as one of the warehouse roles (`loader`, `transformer`), from the stack's
    settings (infra/local/env.sh) or their local defaults."""
    (host, port), (user, password) = pg_address(), role_credentials(role)
    return f"{scheme}://{user}:{password}@{host}:{port}/{db}"


def init_scratch_db(db: str) -> None:
    """Create (or bring up to date) the scratch database `db`; BenchError says why it could not."""
    env = {k: v for k, v in os.environ.items() if k not in WAREHOUSE_URL_SETTINGS}
    env["KNOWDO_WAREHOUSE_DB"] = db
    done = subprocess.run(
        ["bash", str(REPO / "infra/local/stack.sh"), "init-db"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        detail = " ".join((done.stderr or done.stdout).split())[-300:]
        raise BenchError(f"could not prepare the scratch database {db}: {detail}")
