"""A small client for the Airflow 3 REST API (v2), used by `make up` and the tests."""

from __future__ import annotations

import time
from typing import Any

import requests

TOKEN_REFRESH_S = 600  # log in again after this long (Airflow's JWTs live longer)


class AirflowAPIError(RuntimeError):
    pass


class AirflowClient:
    def __init__(self, base_url: str, username: str, password: str, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.username, self.password, self.timeout = username, password, timeout
        self.session = requests.Session()
        # None until the first login: a monotonic clock starts near zero at boot, so a "logged in at
        # 0.0" sentinel would read as a fresh token for the machine's first ten minutes
        self._token_at: float | None = None

    def _token_fresh(self) -> bool:
        return self._token_at is not None and time.monotonic() - self._token_at < TOKEN_REFRESH_S

    def _auth(self) -> None:
        if self._token_fresh():
            return
        r = self.session.post(
            f"{self.base_url}/auth/token",
            json={"username": self.username, "password": self.password},
            timeout=self.timeout,
        )
        if r.status_code not in (200, 201):
            raise AirflowAPIError(
                f"POST /auth/token: HTTP {r.status_code}: {r.text[:300]} "
                "(check KNOWDO_AIRFLOW_ADMIN_USER / KNOWDO_AIRFLOW_ADMIN_PASSWORD)"
            )
        self.session.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        self._token_at = time.monotonic()

    def request(self, method: str, path: str, **kwargs) -> Any:
        self._auth()
        r = self.session.request(
            method, f"{self.base_url}/api/v2{path}", timeout=self.timeout, **kwargs
        )
        if r.status_code >= 400:
            raise AirflowAPIError(f"{method} /api/v2{path}: HTTP {r.status_code}: {r.text[:300]}")
        return r.json() if r.content else None

    def healthy(self) -> bool:
        try:
            r = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
            return r.ok and r.json().get("scheduler", {}).get("status") == "healthy"
        except (requests.RequestException, ValueError):
            return False

    def dag(self, dag_id: str) -> dict | None:
        try:
            return self.request("GET", f"/dags/{dag_id}")
        except AirflowAPIError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise

    def import_errors(self) -> list[dict]:
        return self.request("GET", "/importErrors").get("import_errors", [])

    def unpause(self, dag_id: str) -> None:
        self.request("PATCH", f"/dags/{dag_id}", json={"is_paused": False})

    def trigger(self, dag_id: str, conf: dict | None = None) -> dict:
        return self.request(
            "POST", f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}}
        )

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.request("GET", f"/dags/{dag_id}/dagRuns/{run_id}")

    def latest_runs(self, dag_id: str, limit: int = 5) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns", params={"order_by": "-run_after", "limit": limit}
        ).get("dag_runs", [])

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.request(
            "GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 500}
        ).get("task_instances", [])
