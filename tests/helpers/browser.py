"""Headless Chromium (the system package) driven by Playwright, logged in to Superset."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api

CHROMIUM = os.environ.get("KNOWDO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Superset's error boxes: chart-level alerts and the "no chart definition" placeholder.
ERROR_SELECTORS = ".ant-alert-error, [data-test='alert-error'], .missing-chart-container"
CANVAS = ".dashboard-chart canvas"


@contextlib.contextmanager
def chromium() -> Iterator[sync_api.Browser]:
    """The system's Chromium; a missing browser fails the test (never skips it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} missing: `make test` installs it (apt-get install chromium), "
            "or set KNOWDO_CHROMIUM"
        )
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: sync_api.Page, base_url: str, username: str, password: str) -> sync_api.Page:
    """Log `page` in to Superset as `username` (clearing any earlier session first)."""
    page.set_default_timeout(60_000)
    # One more try when the login form does not move on: on a loaded CI machine a gunicorn worker of
    # Superset can miss the first POST (CI stop 20: one login of 1,500 tests timed out). A second
    # timeout fails the test with what the page showed.
    for attempt in (1, 2):
        page.context.clear_cookies()
        page.goto(f"{base_url}/login/")
        page.fill("#username", username)
        page.fill("#password", password)
        page.click("[data-test='login-button']")
        try:
            page.wait_for_url(lambda url: "/login" not in url)
            return page
        except sync_api.TimeoutError:
            if attempt == 2:
                text = page.inner_text("body")[:500] if page.query_selector("body") else ""
                pytest.fail(
                    f"log-in as {username} did not leave {page.url} twice in 60 s: {text!r}"
                )
    return page


def open_as(
    browser: sync_api.Browser,
    base_url: str,
    username: str,
    password: str,
    viewport: tuple[int, int] = (1400, 900),
) -> tuple[sync_api.BrowserContext, sync_api.Page]:
    """A fresh browser context logged in as `username`."""
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    return context, log_in(context.new_page(), base_url, username, password)
