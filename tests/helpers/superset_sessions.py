"""Logged-in Superset clients for tests that send many requests as many users.

- `Logins`: one log-in per user, reused by every test of a module, and logged in again before its
  access token expires (Superset's JWT lives 15 minutes).
- `in_parallel`: the same user's requests a few at a time. Superset runs 2 gunicorn workers with 4
  threads each (infra/local/stack.sh) and the warehouse runs each query in its own backend, so a
  few requests at once take about the time of the slowest rather than the sum. Results come back in
  the order of the items, so the caller asserts on them exactly as if it had sent them one by one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from knowdo.superset_access import demo_password
from knowdo.superset_api import SupersetClient

T = TypeVar("T")
R = TypeVar("R")

# requests in flight at once per user: Superset's 8 request threads, shared by 2 processes on a
# 2-core machine, gain nothing from more
THREADS = 4
# log in again after this long (the access token lives 15 minutes; a test may take minutes)
RELOGIN_AFTER_S = 10 * 60


def login_as(base: SupersetClient, username: str) -> SupersetClient:
    """A new session logged in as a demo user, through Superset's own log-in API."""
    client = SupersetClient(base.base_url, username, demo_password())
    client.login()
    return client


class Logins:
    """username -> a client logged in as that user when first asked for, then reused until its
    token is RELOGIN_AFTER_S old."""

    def __init__(self, base: SupersetClient):
        self.base = base
        self._clients: dict[str, tuple[float, SupersetClient]] = {}

    def __getitem__(self, username: str) -> SupersetClient:
        at, client = self._clients.get(username, (float("-inf"), None))
        if client is None or time.monotonic() - at > RELOGIN_AFTER_S:
            at, client = time.monotonic(), login_as(self.base, username)
            self._clients[username] = (at, client)
        return client


def _twin(client: SupersetClient) -> SupersetClient:
    """The same log-in (token, CSRF token, cookies) in a requests.Session of its own: one
    Session is not meant to be shared between threads."""
    twin = SupersetClient(client.base_url, client.username, client.password, client.timeout)
    twin.session.headers.update(client.session.headers)
    twin.session.cookies.update(client.session.cookies)
    return twin


def in_parallel(
    client: SupersetClient, call: Callable[[SupersetClient, T], R], items: Iterable[T]
) -> list[R]:
    """[call(client, item) for item in items], THREADS at a time, each thread with its own session
    of the same log-in; an exception in any call is raised here."""
    items = list(items)
    local = threading.local()

    def run(item: T) -> R:
        if not hasattr(local, "client"):
            local.client = _twin(client)
        return call(local.client, item)

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(run, items))
