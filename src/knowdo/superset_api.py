"""A small REST client for Superset: log in, import KnowDo's assets, read chart data.

Runs in the main environment, so it talks HTTP only and never imports Superset. Settings come from
the environment (infra/local/env.sh). `knowdo superset import` is what `make up` runs.

Assets are imported with POST /api/v1/assets/import/ rather than /api/v1/dashboard/import/: the
dashboard importer overwrites only the dashboard and keeps existing databases, datasets and charts
as they were, so edits to their YAML would never reach a running Superset.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
import yaml

from knowdo.config import Settings

BUNDLE_ROOT = "knowdo_assets"  # Superset drops the first folder of every path in the zip
DATABASE_FILE = "databases/knowdo_warehouse.yaml"
_RISON_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-/~]*$")


class SupersetError(RuntimeError):
    """A Superset call failed; the message names the endpoint and the HTTP status."""


def default_assets_dir() -> Path:
    return Settings.from_env().home / "superset" / "assets"


def rison(value: Any) -> str:
    """Encode `value` as Rison, the query-string format of Superset's `q` parameter."""
    if value is True:
        return "!t"
    if value is False:
        return "!f"
    if value is None:
        return "!n"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        if _RISON_ID.match(value):
            return value
        return "'" + value.replace("!", "!!").replace("'", "!'") + "'"
    if isinstance(value, (list, tuple)):
        return "!(" + ",".join(rison(v) for v in value) + ")"
    if isinstance(value, dict):
        return "(" + ",".join(f"{rison(str(k))}:{rison(v)}" for k, v in value.items()) + ")"
    raise TypeError(f"cannot encode {type(value).__name__} as rison")


def warehouse_uri(template: str, host: str, port: str | int, database: str) -> str:
    """Point the database YAML's URI at this deployment's warehouse; user and masked password
    stay."""
    parts = urlsplit(template)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
    return urlunsplit((parts.scheme, netloc, f"/{database}", parts.query, parts.fragment))


def build_bundle(
    assets_dir: Path, host: str, port: str | int, database: str
) -> tuple[bytes, list[str]]:
    """Zip the YAML under `assets_dir` as an import bundle; returns the zip and its relative
    paths."""
    assets_dir = Path(assets_dir)
    files = sorted(
        p for p in assets_dir.rglob("*") if p.is_file() and p.suffix in (".yaml", ".yml")
    )
    if not (assets_dir / "metadata.yaml").is_file():
        raise SupersetError(f"{assets_dir} has no metadata.yaml: not an asset bundle")
    buffer = io.BytesIO()
    names = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for path in files:
            name = path.relative_to(assets_dir).as_posix()
            text = path.read_text(encoding="utf-8")
            if name.startswith("databases/"):
                config = yaml.safe_load(text)
                config["sqlalchemy_uri"] = warehouse_uri(
                    config["sqlalchemy_uri"], host, port, database
                )
                text = yaml.safe_dump(config, sort_keys=False)
            bundle.writestr(f"{BUNDLE_ROOT}/{name}", text)
            names.append(name)
    return buffer.getvalue(), names


@dataclass
class SupersetClient:
    base_url: str
    username: str
    password: str
    timeout: float = 60.0
    session: requests.Session = field(default_factory=requests.Session, repr=False)

    @classmethod
    def from_env(cls) -> SupersetClient:
        settings = Settings.from_env()
        return cls(
            base_url=settings.superset_url.rstrip("/"),
            username=settings.superset_admin_user,
            password=settings.superset_admin_password,
        )

    # --- plumbing ---------------------------------------------------------------------------------
    def request(
        self, method: str, path: str, expect: tuple[int, ...] = (200,), **kwargs: Any
    ) -> Any:
        url = f"{self.base_url}{path}"
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, **kwargs)
        except requests.RequestException as exc:
            raise SupersetError(
                f"{method} {path}: Superset not reachable at {self.base_url} ({exc})"
            ) from exc
        if response.status_code not in expect:
            body = " ".join(response.text.split())[:600]
            raise SupersetError(f"{method} {path} -> HTTP {response.status_code}: {body}")
        if "json" in response.headers.get("Content-Type", ""):
            return response.json()
        return response.text

    def wait_healthy(self, timeout: float = 180.0, refused_for: float = 20.0) -> None:
        """Poll /health until it answers OK; raise after `timeout` seconds, or sooner when nothing
        listens at all for `refused_for` seconds (a server that is down does not come up by waiting;
        one that is starting accepts connections and answers 503 first)."""
        deadline = time.monotonic() + timeout
        refused_since = None
        last = "no answer"
        while True:
            try:
                response = self.session.get(f"{self.base_url}/health", timeout=5)
                refused_since = None
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except requests.ConnectionError as exc:
                last = type(exc).__name__
                refused_since = refused_since or time.monotonic()
                if time.monotonic() - refused_since >= refused_for:
                    raise SupersetError(
                        f"Superset is not running: nothing answers at {self.base_url}"
                        f" (connection refused for {refused_for:.0f}s); start it with"
                        " `bash infra/local/stack.sh start-superset` (or `make up`)"
                    ) from exc
            except requests.RequestException as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise SupersetError(
                    f"GET /health: Superset at {self.base_url} not healthy after"
                    f" {timeout:.0f}s ({last})"
                )
            time.sleep(2)

    def login(self) -> None:
        """JWT for the API plus a CSRF token bound to this session's cookie (needed for writes)."""
        token = self.request(
            "POST",
            "/api/v1/security/login",
            json={
                "username": self.username,
                "password": self.password,
                "provider": "db",
                "refresh": True,
            },
        )["access_token"]
        self.session.headers["Authorization"] = f"Bearer {token}"
        csrf = self.request("GET", "/api/v1/security/csrf_token/")["result"]
        self.session.headers.update({"X-CSRFToken": csrf, "Referer": self.base_url})

    # --- assets -----------------------------------------------------------------------------------
    def import_assets(self, assets_dir: Path | str | None = None) -> list[str]:
        """Import every asset under `assets_dir`, overwriting what exists; returns the imported
        files."""
        settings = Settings.from_env()
        bundle, names = build_bundle(
            Path(assets_dir) if assets_dir else default_assets_dir(),
            host=settings.pg_host,
            port=settings.pg_port,
            database=settings.warehouse_db,
        )
        password = settings.superset_db_password
        if not password:
            raise SupersetError(
                "KNOWDO_SUPERSET_DB_PASSWORD is not set: the warehouse connection needs it"
            )
        self.request(
            "POST",
            "/api/v1/assets/import/",
            files={"bundle": ("knowdo_assets.zip", bundle, "application/zip")},
            data={"passwords": json.dumps({DATABASE_FILE: password}), "overwrite": "true"},
            timeout=300,
        )
        return names

    # --- lookups and data -------------------------------------------------------------------------
    def find_chart_id(self, uuid_or_name: str) -> int:
        column = "uuid" if _is_uuid(uuid_or_name) else "slice_name"
        query = {
            "filters": [{"col": column, "opr": "eq", "value": uuid_or_name}],
            "columns": ["id"],
        }
        result = self.request("GET", "/api/v1/chart/", params={"q": rison(query)})["result"]
        if len(result) != 1:
            raise SupersetError(
                f"GET /api/v1/chart/: {len(result)} charts with {column} = {uuid_or_name!r}"
            )
        return int(result[0]["id"])

    def dashboard(self, id_or_slug: int | str) -> dict[str, Any]:
        return self.request("GET", f"/api/v1/dashboard/{id_or_slug}")["result"]

    def chart_data(self, chart_id: int, force: bool = True) -> list[dict[str, Any]]:
        """Run the chart's saved query_context and return its rows (one dict per row)."""
        path = f"/api/v1/chart/{chart_id}/data/"
        payload = self.request("GET", path, params={"force": "true"} if force else None)
        rows = []
        for query in payload.get("result", []):
            if query.get("error"):
                raise SupersetError(f"GET {path}: query failed: {query['error']}")
            rows.extend(query.get("data") or [])
        return rows


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="knowdo superset", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    imp = sub.add_parser(
        "import", help="import superset/assets into the running Superset (overwrite)"
    )
    imp.add_argument("--assets-dir", type=Path, default=None)
    imp.add_argument("--wait", type=float, default=180.0, help="seconds to wait for /health first")
    wait = sub.add_parser("wait", help="wait until Superset answers /health")
    wait.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)

    client = SupersetClient.from_env()
    try:
        if args.command == "wait":
            client.wait_healthy(args.timeout)
            print(f"Superset healthy at {client.base_url}")
            return 0
        client.wait_healthy(args.wait)
        client.login()
        names = client.import_assets(args.assets_dir)
        print(f"imported {len(names)} asset files into {client.base_url}:")
        for name in names:
            print(f"  {name}")
        for path in sorted((args.assets_dir or default_assets_dir()).glob("dashboards/*.yaml")):
            slug = yaml.safe_load(path.read_text(encoding="utf-8")).get("slug")
            if slug:
                dash = client.dashboard(slug)
                url = f"{client.base_url}/superset/dashboard/{slug}/"
                print(f"dashboard {dash['dashboard_title']!r}: {url}")
    except SupersetError as exc:
        print(f"knowdo superset: {exc}", file=sys.stderr)
        return 1
    return 0
