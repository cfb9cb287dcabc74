"""The Implementation impact dashboard (issue 15) in a real browser, as an ARC and as a ministry.

Two demo users of superset/access.yml open the dashboard: the Greater Manchester ARC (`arc_gm`: its
ICB QOP is a PCREF and Alcohol Assertive Outreach site) and Colombia's ministry (`ministry_col`: the
sample's community mental health centres). Every chart must draw with no error box, and every
answer of Superset's chart data API the page received — the charts' rows and the native filters'
option lists — must name only the viewer's own sites and projects: the truth is read from the
marts as Superset's own read-only role, which row-level security does not narrow. The
observed-vs-counterfactual line must be the mart's own series for the site the filters picked.

One chart may say "No results" for the ARC, and only because the marts say so: the
difference-in-differences rows of a project whose sites lie in several ARCs carry no arc_code, so
no ARC sees them (fail-closed; docs/impact-methods.md). Screenshots go to
.local/artifacts/screenshots/knowdo-implementation-impact-<user>.png.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from knowdo.superset_access import (
    apply_access,
    default_access_file,
    demo_password,
    demo_users,
    ensure_users,
    load_access,
)
from tests.helpers.browser import ERROR_SELECTORS, chromium, open_as
from tests.superset.conftest import connect_as_superset

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "superset" / "assets"
DASHBOARD = yaml.safe_load(
    (ASSETS / "dashboards" / "knowdo_implementation_impact.yaml").read_text(encoding="utf-8")
)
CHARTS = {
    path.stem: yaml.safe_load(path.read_text(encoding="utf-8"))
    for path in (ASSETS / "charts").glob("impact_*.yaml")
}
COUNTERFACTUAL = yaml.safe_load(
    (
        ASSETS / "datasets" / "knowdo_warehouse" / "mart_implementation_counterfactual.yaml"
    ).read_text(encoding="utf-8")
)
SCREENSHOTS = REPO / ".local" / "artifacts" / "screenshots"
MARTS = ("mart_implementation_impact", "mart_implementation_counterfactual")
# user -> (owner column, its code)
VIEWERS = {
    "arc_gm": ("arc_code", "arc_greater_manchester"),
    "ministry_col": ("country_code", "COL"),
}
# Per chart holder: drawn (canvas or a table row), an error box, or Superset's empty state.
CHART_STATES = """() => [...document.querySelectorAll('.dashboard-component-chart-holder')]
  .filter(h => h.querySelector('[data-test-chart-name]'))
  .map(h => ({
    name: h.querySelector('[data-test-chart-name]').getAttribute('data-test-chart-name'),
    drawn: !!h.querySelector('canvas, table tbody tr'),
    error: !!h.querySelector(".ant-alert-error, [data-test='alert-error']")
      || /Unexpected error/.test(h.innerText),
    empty: /No results/.test(h.innerText),
    text: h.innerText.slice(0, 200),
  }))"""


@pytest.fixture(scope="module")
def truth() -> dict:
    """What each viewer may see, and what exists at all, read from the published marts."""
    with connect_as_superset() as conn:
        for mart in MARTS:
            rows = conn.execute(
                "select count(*) from pg_class where relnamespace = 'marts'::regnamespace"
                " and relname = %s",
                (mart,),
            ).fetchone()[0]
            if not rows or not conn.execute(f"select count(*) from marts.{mart}").fetchone()[0]:
                pytest.fail(
                    f"marts.{mart} is not published or empty: run the pipeline (make up) first"
                )

        def codes(query: str, *params) -> set[str]:
            return {r[0] for r in conn.execute(query, params).fetchall() if r[0] is not None}

        union = (
            "select {c} from marts.mart_implementation_impact {w}"
            " union select {c} from marts.mart_implementation_counterfactual {w}"
        )
        out = {
            "sites": codes(union.format(c="site_code", w="")),
            "projects": codes(union.format(c="project", w="")),
            "owners": codes(union.format(c="arc_code", w=""))
            | codes(union.format(c="country_code", w="")),
            "own": {},
        }
        for user, (column, code) in VIEWERS.items():
            where = f"where {column} = %s"
            out["own"][user] = {
                "sites": codes(union.format(c="site_code", w=where), code, code),
                "projects": codes(union.format(c="project", w=where), code, code),
                "event_rows": dict(
                    conn.execute(
                        f"select project, count(*) from marts.mart_implementation_impact {where}"
                        " and method = 'did' and effect = 'att_event_time'"
                        " and stratifier = 'all' group by project",
                        (code,),
                    ).fetchall()
                ),
            }
        # keyed as the dashboard's filters pick a series: the group by its label (the dataset's
        # own calculated column)
        group_label = next(
            c["expression"] for c in COUNTERFACTUAL["columns"] if c["column_name"] == "group_label"
        )
        out["series"] = {
            (project, site, outcome, group, month.isoformat()): observed
            for project, site, outcome, group, month, observed in conn.execute(
                f"select project, site_code, outcome, {group_label}, month, observed"
                " from marts.mart_implementation_counterfactual where method = 'its'"
            ).fetchall()
        }
    for user, own in out["own"].items():
        assert own["sites"] and own["projects"], f"the sample marts have no row for {user}"
    return out


@pytest.fixture(scope="module")
def password(superset, imported) -> str:
    """Roles, row-level security and the demo users, applied after the import as `make up` does."""
    apply_access(superset)
    ensure_users(superset, demo_users(load_access(default_access_file())))
    return demo_password()


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


def open_dashboard(browser, superset, username: str, password: str, chart_ids: set[int]) -> dict:
    """Open the dashboard as `username`; return what was drawn and every chart-data answer."""
    answers: list[tuple[dict, dict]] = []  # (form_data, response body), in order

    def on_response(response):
        request = response.request
        if "/api/v1/chart/data" not in response.url or request.method != "POST":
            return
        form_data = json.loads(request.post_data or "{}").get("form_data") or {}
        try:
            answers.append((form_data, json.loads(response.text())))
        except ValueError:  # a body that is not JSON is judged by the error boxes
            answers.append((form_data, {"unreadable": response.status}))

    def settled() -> None:
        try:
            page.wait_for_function(
                f"() => {{ const s = ({CHART_STATES})(); return s.length >= {len(CHARTS)}"
                " && s.every(c => c.drawn || c.error || c.empty); }",
                timeout=90_000,
            )
            page.wait_for_load_state("networkidle")
        except Exception as exc:  # playwright's TimeoutError: judged below from what is on screen
            if "Timeout" not in type(exc).__name__:
                raise

    context, page = open_as(browser, superset.base_url, username, password, viewport=(1600, 2600))
    page.on("response", on_response)
    try:
        page.goto(f"{superset.base_url}/superset/dashboard/{DASHBOARD['slug']}/")
        settled()
        # The filters preselect the viewer's first project, outcome, site and group; Superset
        # applies them with "Apply filters" (as on the Country overview), and every chart asks for
        # its data again, for one project. The button stays enabled until all four are applied.
        apply = "[data-test='filter-bar__apply-button']"
        page.click(apply)
        page.wait_for_selector(f"{apply}:disabled", timeout=30_000)
        waited = 0
        while not chart_ids <= {fd.get("slice_id") for fd, _ in filtered(answers)}:
            assert waited < 90_000, f"{username}: charts not asked again after Apply filters"
            page.wait_for_timeout(250)
            waited += 250
        settled()
        page.wait_for_timeout(1000)  # ECharts' entry animation, so the screenshot shows the data
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # the viewport holds the whole dashboard: a full-page capture resizes the page, and
        # Superset then redraws its grid (the picture came out blank)
        page.screenshot(path=str(SCREENSHOTS / f"{DASHBOARD['slug']}-{username}.png"))
        # judged after the screenshot, so the picture shows what the assertions saw
        states = {s["name"]: s for s in page.evaluate(CHART_STATES)}
        errors = [e.inner_text() for e in page.query_selector_all(ERROR_SELECTORS)]
        how_to_read = page.get_by_text("How to read this dashboard").count()
    finally:
        context.close()
    return {"states": states, "errors": errors, "answers": answers, "how_to_read": how_to_read}


def strings_in(value) -> set[str]:
    if isinstance(value, str):
        return {value}
    if isinstance(value, dict):
        return set().union(*(strings_in(v) for v in value.values()), set())
    if isinstance(value, list):
        return set().union(*(strings_in(v) for v in value), set())
    return set()


def rows_of(body: dict) -> list[dict]:
    return [row for result in body.get("result", []) for row in result.get("data") or []]


def filtered(answers):
    """The answers to requests made with the Project filter applied."""
    return [(fd, body) for fd, body in answers if "project" in applied_filters(fd)]


def last_answer(answers, chart_id: int) -> tuple[dict, list[dict]]:
    mine = [(fd, body) for fd, body in filtered(answers) if fd.get("slice_id") == chart_id]
    assert mine, f"the page never asked for chart {chart_id}'s data"
    form_data, body = mine[-1]
    return form_data, rows_of(body)


def applied_filters(form_data: dict) -> dict[str, object]:
    """The native filters' values in a chart's request (column -> value)."""
    out = {}
    for flt in (form_data.get("extra_form_data") or {}).get("filters", []):
        value = (
            flt["val"][0] if isinstance(flt["val"], list) and len(flt["val"]) == 1 else flt["val"]
        )
        out[flt["col"]] = value
    return out


@pytest.mark.parametrize("username", list(VIEWERS))
def test_the_viewer_sees_every_chart_draw_with_only_its_own_rows(
    username, browser, superset, password, truth
):
    ids = {name: superset.find_chart_id(str(chart["uuid"])) for name, chart in CHARTS.items()}
    seen = open_dashboard(browser, superset, username, password, set(ids.values()))
    own = truth["own"][username]

    # --- it draws --------------------------------------------------------------------------------
    assert not seen["errors"], f"{username}: error boxes: {seen['errors']}"
    assert seen["how_to_read"] > 0, "the note on how to read the dashboard is missing"
    states = seen["states"]
    assert set(states) == {c["slice_name"] for c in CHARTS.values()}
    event_form, event_rows = last_answer(seen["answers"], ids["impact_event_study"])
    project = applied_filters(event_form).get("project")
    assert project in own["projects"], (username, project, own["projects"])
    for name, chart in CHARTS.items():
        state = states[chart["slice_name"]]
        assert not state["error"], f"{username}: {name} failed: {state['text']}"
        if name == "impact_event_study" and not own["event_rows"].get(project):
            # the marts give this viewer no event-study row of the project: empty, never foreign
            assert state["empty"] and not event_rows, (username, state["text"])
            continue
        assert state["drawn"] and not state["empty"], f"{username}: {name}: {state['text']}"

    # --- no foreign code in anything the page received -------------------------------------------
    foreign = (
        (truth["sites"] - own["sites"])
        | (truth["projects"] - own["projects"])
        | (truth["owners"] - {VIEWERS[username][1]})
    )
    received = set().union(*(strings_in(body) for _form, body in seen["answers"]))
    assert not received & foreign, f"{username} received foreign codes: {received & foreign}"

    # --- the tables list the viewer's own sites --------------------------------------------------
    _form, site_rows = last_answer(seen["answers"], ids["impact_effect_per_site"])
    assert site_rows and {r["site_code"] for r in site_rows} <= own["sites"]
    _form, caveat_rows = last_answer(seen["answers"], ids["impact_caveats"])
    assert caveat_rows and all(r["site_label"] in own["sites"] | {"all sites"} for r in caveat_rows)
    _form, gap_rows = last_answer(seen["answers"], ids["impact_equity_gap"])
    assert {r["site_code"] for r in gap_rows} <= own["sites"]

    # --- the counterfactual line is the mart's own series for the site the filters picked --------
    form, cf_rows = last_answer(seen["answers"], ids["impact_observed_vs_counterfactual"])
    picked = applied_filters(form)
    assert picked.get("site_code") in own["sites"], (username, picked)
    key = (picked["project"], picked["site_code"], picked["outcome"], picked["group_label"])
    assert picked["group_label"] == "All (site total)", "the site's total is preselected"
    observed = {
        datetime.fromtimestamp(row["month"] / 1000, tz=UTC).date().isoformat(): row["Observed"]
        for row in cf_rows
    }
    expected = {k[-1]: v for k, v in truth["series"].items() if k[:-1] == key}
    assert expected, f"no ITS series in the mart for {key}"
    assert set(observed) == set(expected), key
    for month, value in expected.items():
        assert observed[month] == (None if value is None else pytest.approx(value)), (key, month)
    bands = [r for r in cf_rows if r["Counterfactual"] is not None]
    assert bands and all(
        r["Counterfactual__yhat_lower"] <= r["Counterfactual"] <= r["Counterfactual__yhat_upper"]
        for r in bands
    )
    assert sum(r["Go-live"] is not None for r in cf_rows) == 1, "go-live must be marked once"
