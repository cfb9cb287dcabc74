"""A real browser opens the dashboard and the ECharts canvas renders without errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.helpers.browser import CANVAS, ERROR_SELECTORS, chromium, open_as

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = yaml.safe_load(
    (REPO / "superset" / "assets" / "dashboards" / "knowdo_service_use.yaml").read_text()
)
SCREENSHOT = REPO / ".local" / "artifacts" / "screenshots" / "service_use_dashboard.png"


@pytest.fixture(scope="module")
def page(superset):
    with chromium() as browser:
        _context, page = open_as(browser, superset.base_url, superset.username, superset.password)
        yield page


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
