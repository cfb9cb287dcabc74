"""A ministry user logs in with a real browser and sees the dashboard draw, with only its rows."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from knowdo.superset_access import (
    apply_access,
    demo_password,
    demo_users,
    ensure_users,
    load_access,
)
from tests.helpers.browser import CANVAS, ERROR_SELECTORS, chromium, log_in, open_as

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ACCESS_FILE = REPO / "superset" / "access.yml"
DASHBOARD = yaml.safe_load(
    (REPO / "superset" / "assets" / "dashboards" / "knowdo_service_use.yaml").read_text()
)
SCREENSHOT_DIR = REPO / ".local" / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def ministry_page(superset, imported):
    spec = load_access(ACCESS_FILE)
    apply_access(superset, ACCESS_FILE, REPO / "superset" / "assets")
    ensure_users(superset, demo_users(spec))
    with chromium() as browser:
        _context, page = open_as(browser, superset.base_url, "ministry_gha", demo_password())
        yield page


def test_ghana_ministry_sees_the_dashboard_draw(ministry_page, superset):
    page = ministry_page
    page.goto(f"{superset.base_url}/superset/dashboard/{DASHBOARD['slug']}/")
    page.wait_for_selector(f"{CANVAS}, {ERROR_SELECTORS}", state="visible")
    errors = [e.inner_text() for e in page.query_selector_all(ERROR_SELECTORS)]
    assert not errors, f"error boxes on the dashboard: {errors}"
    page.wait_for_selector(CANVAS, state="visible")
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(1500)  # let ECharts finish its entry animation before the screenshot

    assert page.get_by_text(DASHBOARD["dashboard_title"]).first.is_visible()
    assert not page.query_selector_all(ERROR_SELECTORS)
    assert page.get_by_text("No results were returned").count() == 0
    # A viewer role: no SQL Lab in the menu, no admin settings.
    assert page.get_by_text("SQL Lab", exact=True).count() == 0

    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "service_use_dashboard_ministry_gha.png"))


def test_a_funder_sees_the_dashboard_but_no_service_use_rows(ministry_page, superset):
    """Deny by default, in the browser: a funder's role has no rule on fct_service_use's owner
    column (it has no funder_id), so the same dashboard opens and its chart says there is no
    data."""
    page = ministry_page
    log_in(page, superset.base_url, "funder_wellcome", demo_password())
    page.goto(f"{superset.base_url}/superset/dashboard/{DASHBOARD['slug']}/")
    page.get_by_text("No results were returned").first.wait_for(state="visible")
    assert page.query_selector_all(CANVAS) == []
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / "service_use_dashboard_funder_wellcome.png"))
