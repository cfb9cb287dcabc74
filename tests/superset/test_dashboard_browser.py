"""A real browser opens the dashboard and the ECharts canvas renders without errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = yaml.safe_load(
    (REPO / "superset" / "assets" / "dashboards" / "knowdo_service_use.yaml").read_text()
)
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
SCREENSHOT = REPO / ".local" / "artifacts" / "screenshots" / "service_use_dashboard.png"
# Superset's error boxes: chart-level alerts and the "no chart definition" placeholder.
ERROR_SELECTORS = ".ant-alert-error, [data-test='alert-error'], .missing-chart-container"
CANVAS = ".dashboard-chart canvas"


@pytest.fixture(scope="module")
def page(superset):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: apt-get install chromium (or set KNOWDO_CHROMIUM)")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{superset.base_url}/login/")
        page.fill("#username", superset.username)
        page.fill("#password", superset.password)
        page.click("[data-test='login-button']")
        page.wait_for_url(lambda url: "/login" not in url)
        yield page
        browser.close()


def test_dashboard_draws_the_chart(page, superset, imported, mart_rows):
    page.goto(f"{superset.base_url}/superset/dashboard/{DASHBOARD['slug']}/")
    # Whichever comes first: the chart's canvas or an error box (then fail at once with its text).
    page.wait_for_selector(f"{CANVAS}, {ERROR_SELECTORS}", state="visible")
    errors = [e.inner_text() for e in page.query_selector_all(ERROR_SELECTORS)]
    assert not errors, f"error boxes on the dashboard: {errors}"
    page.wait_for_selector(CANVAS, state="visible")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # let ECharts finish its entry animation before the screenshot

    assert (
        DASHBOARD["dashboard_title"] in page.title()
        or page.get_by_text(DASHBOARD["dashboard_title"]).first.is_visible()
    )
    errors = [e.inner_text() for e in page.query_selector_all(ERROR_SELECTORS)]
    assert not errors, f"error boxes on the dashboard: {errors}"
    assert page.get_by_text("There is no chart definition").count() == 0

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
