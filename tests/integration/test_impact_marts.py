"""Issue 15 item 3: the impact marts on the sample, through the code the transform runs.

In a scratch warehouse on the project's cluster: the sample feeds ingested as the ingest DAG does
(knowdo.pipeline.ingest_feed), dbt builds fct_service_use, the current registry and the two impact
marts (empty, with their contracts), then knowdo.pipeline.impact_marts, the transform's
`impact_marts` task, writes their rows and runs their dbt tests, and the quality gate's suites for
the two marts pass. The effects the generator planted (knowdo.synth.implementation.PLANTED) are
recovered in the mart, and the projects where nothing was planted show nothing.
"""

from __future__ import annotations

import os

import pandas as pd
import pytest

from knowdo.db import connect
from knowdo.synth import implementation
from tests.conftest import REPO
from tests.helpers.scratch_warehouse import create_scratch_warehouse, run, scratch_settings

pytestmark = pytest.mark.integration
SCRATCH_DB = os.environ.get("KNOWDO_TEST_IMPACT_DB", "knowdo_test_impact_marts")
DBT = str(REPO / ".venvs" / "dbt" / "bin" / "dbt")
DBT_ARGS = ("--project-dir", str(REPO / "dbt_project"), "--profiles-dir", str(REPO / "dbt_project"))
MARTS = ("mart_implementation_impact", "mart_implementation_counterfactual")
PLANTED_PROJECTS = {project for project, *_ in implementation.PLANTED}


@pytest.fixture(scope="module")
def marts(cluster):
    from knowdo.pipeline import impact_marts

    env = create_scratch_warehouse(SCRATCH_DB)
    run([DBT, "run-operation", "create_stats_functions", *DBT_ARGS], env)
    selected = [f"+{m}" for m in MARTS]
    run([DBT, "build", "--full-refresh", *DBT_ARGS, "--select", *selected,
         "--exclude-resource-type", "test", "unit_test"], env)  # fmt: skip
    with scratch_settings(SCRATCH_DB) as settings:
        counts = impact_marts("test_impact_marts", settings, env=env)
        with connect(settings.transformer_url) as conn:
            frames = {
                m: pd.read_sql_query(f"select * from marts_candidate.{m}", conn) for m in MARTS
            }
        yield settings, counts, frames


def test_the_step_writes_what_it_counts_and_the_dbt_tests_pass(marts):
    _settings, counts, frames = marts
    assert counts["mart_implementation_impact"] == len(frames["mart_implementation_impact"]) > 0
    assert (
        counts["mart_implementation_counterfactual"]
        == len(frames["mart_implementation_counterfactual"])
        > 0
    )
    impact = frames["mart_implementation_impact"]
    # nothing run-specific: a rerun on the same data publishes identical rows (tests/faults compare
    # the warehouse after a fault with a clean run)
    assert "run_id" not in impact.columns
    registry_projects = {p.code for p in implementation.PROJECTS}
    assert set(impact["project"]) == registry_projects


def test_the_planted_effects_are_recovered_in_the_mart(marts):
    _settings, _counts, frames = marts
    impact = frames["mart_implementation_impact"]
    projects = {p.code: p for p in implementation.PROJECTS}
    for project, indicator, group, multiplier in implementation.PLANTED:
        for site in projects[project].sites:
            rows = impact[
                (impact["project"] == project)
                & (impact["site_code"] == site.code)
                & (impact["outcome"] == indicator)
                & (impact["method"] == "its")
                & (impact["effect"] == "level_change")
                & (impact["group_name"] == (group or "all"))
            ]
            assert len(rows) == 1, (project, site.code, indicator, group)
            row = rows.iloc[0]
            assert row["status"] == "estimated", row["caution"]
            assert row["lower_95"] < multiplier < row["upper_95"], row.to_dict()
            assert not row["lower_95"] <= 1 <= row["upper_95"], row.to_dict()


def test_the_gap_to_the_reference_group_narrowed_where_pcref_lowered_detentions(marts):
    _settings, _counts, frames = marts
    impact = frames["mart_implementation_impact"]
    gap = impact[
        (impact["project"] == "pcref")
        & (impact["outcome"] == "mha_people_detained")
        & (impact["method"] == "gap_change")
        & (impact["group_name"] == "black")
        & (impact["effect"] == "rate_ratio_change")
    ]
    assert len(gap) == len(next(p for p in implementation.PROJECTS if p.code == "pcref").sites)
    for row in gap.itertuples():
        assert row.lower_95 < 0.85 < row.upper_95 < 1, row
        assert row.verdict == "narrowed"


def test_nothing_is_found_where_nothing_was_planted(marts):
    _settings, _counts, frames = marts
    impact = frames["mart_implementation_impact"]
    headline = impact[
        ~impact["project"].isin(PLANTED_PROJECTS)
        & (impact["status"] == "estimated")
        & (impact["stratifier"] == "all")
        & impact["effect"].isin(["level_change", "att_simple"])
    ]
    assert len(headline) > 0
    null = headline["scale"].map(lambda s: 0.0 if s.startswith("difference") else 1.0)
    misses = headline[(headline["lower_95"] > null) | (headline["upper_95"] < null)]
    # the site totals of projects with nothing planted: at 95%, about one in twenty may miss by
    # chance; more than a quarter missing would be a method finding effects in noise
    assert len(misses) <= max(1, len(headline) // 4), misses.to_dict("records")


def test_the_counterfactual_marks_go_live_and_the_gate_suites_pass(marts):
    from knowdo.quality import run_gate

    settings, _counts, frames = marts
    cf = frames["mart_implementation_counterfactual"]
    pcref = cf[(cf["project"] == "pcref") & (cf["method"] == "its") & (cf["group_name"] == "all")]
    assert set(pcref["go_live_month"].astype(str)) == {"2023-04-01"}
    assert pcref["after_go_live"].any() and (~pcref["after_go_live"]).any()
    result = run_gate("marts_candidate", settings=settings, layers=("marts",))
    for table in MARTS:
        mine = [o for o in result.outcomes if o.table == table]
        assert mine, f"the gate did not audit {table}"
        failures = [f.line() for o in mine for f in o.failures]
        assert all(o.success for o in mine) and not failures, failures
        assert mine[0].evaluated > 5  # its own suite ran, not only the house conventions
