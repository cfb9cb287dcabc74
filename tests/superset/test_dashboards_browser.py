"""A real browser opens each KnowDo dashboard as the viewer it is made for.

Each dashboard is opened by a demo user of superset/access.yml (row-level security applies): the
Country overview, Funding flows and Data health by the Ghana ministry (`ministry_gha`), England ARC
equity by the Greater Manchester ARC (`arc_gm`). Every chart must draw (an ECharts canvas or svg, or
a table) with no error box and no "No results"; the screenshots go to
.local/artifacts/screenshots/<slug>.png (docs/screenshots/ holds the README's copies).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from knowdo.superset_access import demo_password
from tests.helpers.browser import ERROR_SELECTORS, chromium
from tests.helpers.browser import open_as as _open_as

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "superset" / "assets" / "dashboards"
SCREENSHOTS = REPO / ".local" / "artifacts" / "screenshots"
# Who each dashboard is for; the ministry of Ghana is the only country with service-use data in the
# sample feeds, and ARC rows are keyed by arc_code, which a ministry role never sees.
VIEWERS = {
    "knowdo-country-overview": "ministry_gha",
    "knowdo-funding-flows": "ministry_gha",
    "knowdo-data-health": "ministry_gha",
    "knowdo-arc-equity": "arc_gm",
}
# Per chart holder: drawn (canvas, svg or a table), failed (an error box) or still loading.
CHART_STATES = """() => [...document.querySelectorAll('.dashboard-component-chart-holder')]
  .filter(h => h.querySelector('[data-test-chart-name]'))
  .map(h => ({
    name: h.querySelector('[data-test-chart-name]').getAttribute('data-test-chart-name'),
    drawn: !!h.querySelector('canvas, svg.echarts, .echarts-for-react svg, table tbody tr'),
    error: !!h.querySelector(".ant-alert-error, [data-test='alert-error']")
      || /Unexpected error|No results/.test(h.innerText),
    text: h.innerText.slice(0, 200),
  }))"""


def dashboard_configs() -> dict[str, dict]:
    configs = {}
    for path in sorted(DASHBOARDS.glob("*.yaml")):
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        if config["slug"] in VIEWERS:
            configs[config["slug"]] = config
    return configs


def test_every_dashboard_has_a_viewer():
    assert set(dashboard_configs()) == set(VIEWERS)


@pytest.fixture(scope="module")
def demo_users(superset, imported):
    """Roles, row-level security and the demo users, applied after the import as `make up` does."""
    result = subprocess.run(
        [sys.executable, "-m", "knowdo", "superset-access", "apply", "--demo-users"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=os.environ.copy(),
    )
    assert result.returncode == 0, f"superset_access apply failed: {result.stderr[-2000:]}"
    return demo_password()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def open_as(browser, base_url: str, username: str, password: str):
    # Tall enough that every chart is in view: Superset only draws charts that are on screen.
    return _open_as(browser, base_url, username, password, viewport=(1600, 2600))


@pytest.mark.parametrize("slug", list(VIEWERS))
def test_dashboard_draws_every_chart(slug, browser, superset, demo_users):
    config = dashboard_configs()[slug]
    expected = sorted(
        node["meta"]["sliceName"]
        for node in config["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    )
    context, page = open_as(browser, superset.base_url, VIEWERS[slug], demo_users)
    try:
        page.goto(f"{superset.base_url}/superset/dashboard/{slug}/")
        page.wait_for_selector(f".dashboard-component-chart-holder, {ERROR_SELECTORS}")
        # Wait until every chart has either drawn or failed (or give up), then judge.
        try:
            page.wait_for_function(
                f"() => {{ const s = ({CHART_STATES})(); return s.length >= {len(expected)}"
                " && s.every(c => c.drawn || c.error); }",
                timeout=90_000,
            )
            page.wait_for_load_state("networkidle")
        except Exception as exc:  # playwright's TimeoutError: judged below from what is on screen
            if "Timeout" not in type(exc).__name__:
                raise
        page.wait_for_timeout(1500)  # ECharts' entry animation, so the screenshot shows the data
        states = page.evaluate(CHART_STATES)
        errors = [e.inner_text() for e in page.query_selector_all(ERROR_SELECTORS)]

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{slug}.png"), full_page=True)
    finally:
        context.close()

    assert not errors, f"{slug} as {VIEWERS[slug]}: error boxes: {errors}"
    assert sorted(s["name"] for s in states) == expected
    failed = {s["name"]: s["text"] for s in states if s["error"] or not s["drawn"]}
    assert not failed, (
        f"{slug} as {VIEWERS[slug]}: charts that did not draw: {failed} ('No results': this viewer"
        " may see no row of the chart's mart under row-level security, or the mart is empty)"
    )


def test_admin_sees_the_national_charts_one_country_at_a_time(browser, superset, demo_users):
    """The admin sees every country: the Country overview's required Country filter (first country
    preselected; Superset applies it with "Apply filters") makes each national chart one country,
    and before that the per-group CI series stay empty rather than mixing countries in one line."""
    slug = "knowdo-country-overview"
    chart = yaml.safe_load(
        (REPO / "superset" / "assets" / "charts" / "service_use_by_sex_national.yaml").read_text()
    )
    chart_id = superset.find_chart_id(str(chart["uuid"]))
    series: list[list[str]] = []  # the chart's series names, per data response, in order

    def on_response(response):
        request = response.request
        if "/api/v1/chart/data" not in response.url or request.method != "POST":
            return
        form_data = json.loads(request.post_data or "{}").get("form_data") or {}
        if form_data.get("slice_id") != chart_id:
            return
        (result,) = response.json()["result"]
        series.append([c for c in result["colnames"] if c != "period_start"])

    context, page = open_as(browser, superset.base_url, superset.username, superset.password)
    page.on("response", on_response)
    try:
        page.goto(f"{superset.base_url}/superset/dashboard/{slug}/")
        page.wait_for_selector(".dashboard-component-chart-holder")
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)
        before = len(series)
        page.click("[data-test='filter-bar__apply-button']")
        page.wait_for_timeout(1000)
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(1500)
        states = {s["name"]: s for s in page.evaluate(CHART_STATES)}
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{slug}-admin.png"), full_page=True)
    finally:
        context.close()
    ci = states["Outpatient contacts per 100,000 by sex, with 95% CI (national)"]
    assert ci["drawn"] and not ci["error"], ci["text"]
    assert len(series) > before, "the chart was not queried again with the Country filter"
    # after the filter: "<country>, Female" and "<country>, Male" of ONE country
    countries = {name.split(", ")[-2] for name in series[-1] if ", " in name}
    assert len(countries) == 1, series[-1]
