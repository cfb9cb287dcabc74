"""The quality gate's pure parts: suites as code, house conventions, run-time parameters, the
report."""

from __future__ import annotations

import json

import pytest

from knowdo.quality import (
    ExpectationFailure,
    GateError,
    GateResult,
    SuiteOutcome,
    convention_expectations,
    load_conventions,
    load_suites,
    merge_expectations,
    parameter_names,
    resolve_parameters,
)


def test_every_suite_file_is_a_valid_gx_suite(settings):
    from great_expectations.core.expectation_suite import ExpectationSuite

    suites = load_suites(settings)
    assert {(s.layer, s.table) for s in suites} >= {
        ("raw", "dhis2_data_values"),
        ("marts", "fct_service_use"),
    }
    for suite in suites:
        spec = {k: v for k, v in suite.spec.items() if k in ("name", "meta", "notes")}
        gx_suite = ExpectationSuite(**spec, expectations=suite.spec["expectations"])
        assert len(gx_suite.expectations) == len(suite.spec["expectations"]), suite.name


def test_suites_hold_no_credentials(settings):
    for path in (settings.gx_dir).rglob("*.json"):
        text = path.read_text(encoding="utf-8").lower()
        assert "password" not in text and "postgresql://" not in text, path


def test_conventions_apply_by_column_name(settings):
    rules = load_conventions(settings)
    got = convention_expectations(rules, ["population", "funding_share_pct", "value", "share_of_x"])
    columns = {(e["type"], e["kwargs"].get("column")) for e in got}
    assert ("expect_column_values_to_be_between", "population") in columns
    assert ("expect_column_values_to_be_between", "funding_share_pct") in columns
    assert ("expect_column_values_to_be_between", "value") not in columns
    share = next(e for e in got if e["kwargs"].get("column") == "funding_share_pct")
    assert (share["kwargs"]["min_value"], share["kwargs"]["max_value"]) == (0, 100)
    # every table gets the row-count tolerance against the published version
    assert any("published_row_count" in parameter_names(e) for e in got)


def test_merge_does_not_duplicate_an_expectation_the_suite_already_has():
    own = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"column": "denominator", "min_value": 1},
        }
    ]
    extra = [
        {
            "type": "expect_column_values_to_be_between",
            "kwargs": {"min_value": 1, "column": "denominator"},
        },
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]
    merged = merge_expectations(own, extra)
    assert [e["type"] for e in merged] == [
        "expect_column_values_to_be_between",
        "expect_table_row_count_to_be_between",
    ]


def test_parameter_names_ignore_functions_and_numbers():
    exp = {
        "type": "x",
        "kwargs": {"min_value": {"$PARAMETER": "trunc(published_row_count * 0.5)"}, "max_value": 3},
    }
    assert parameter_names(exp) == {"published_row_count"}


def test_an_expectation_without_its_parameter_is_skipped_and_says_why():
    tolerance = {
        "type": "expect_table_row_count_to_be_between",
        "kwargs": {"min_value": {"$PARAMETER": "trunc(published_row_count * 0.5)"}},
    }
    plain = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a"}}
    reasons = {"published_row_count": "nothing published yet in marts.t (first publication)"}
    kept, notes = resolve_parameters([tolerance, plain], {"published_row_count": None}, reasons)
    assert kept == [plain]
    assert notes == [
        (
            "skipped expect_table_row_count_to_be_between: nothing published yet in"
            " marts.t (first publication)"
        )
    ]
    kept, notes = resolve_parameters([tolerance, plain], {"published_row_count": 840}, reasons)
    assert kept == [tolerance, plain] and notes == []


def test_parameter_expression_evaluates_in_gx():
    from great_expectations.core.suite_parameters import parse_suite_parameter

    assert (
        parse_suite_parameter("trunc(published_row_count * 0.5)", {"published_row_count": 841})
        == 420
    )
    assert (
        parse_suite_parameter("trunc(published_row_count * 2)", {"published_row_count": 841})
        == 1682
    )


def test_summary_names_failed_expectations_examples_and_notes():
    failure = ExpectationFailure(
        "expect_column_values_to_be_between",
        "value",
        "rate within 0..100000",
        2,
        [250000.5, 120000],
    )
    result = GateResult(
        "marts_candidate",
        [
            SuiteOutcome("fct_x", "fct_x", False, 20, [failure], notes=["skipped y: because"]),
            SuiteOutcome("raw_y", "y", True, 5, [], layer="raw", schema="raw"),
        ],
        "/docs/index.html",
    )
    text = result.summary()
    assert not result.success
    assert result.failed_expectations == ["expect_column_values_to_be_between"]
    assert "marts_candidate.fct_x: suite fct_x FAILED (19/20 expectations met)" in text
    assert (
        "expect_column_values_to_be_between on value (2 rows): rate within 0..100000;"
        " e.g. [250000.5, 120000]" in text
    )
    assert "note: skipped y: because" in text
    assert "raw.y: suite raw_y passed (5/5 expectations met)" in text
    assert text.endswith("Data Docs: /docs/index.html")
    assert result.mart_tables() == ["fct_x"]


def test_a_gate_that_audited_nothing_does_not_pass():
    assert not GateResult("marts_candidate", [], None).success


def test_duplicate_suite_names_are_refused(tmp_path, settings):
    from dataclasses import replace

    for layer in ("raw", "marts"):
        (tmp_path / "suites" / layer).mkdir(parents=True)
        (tmp_path / "suites" / layer / "t.json").write_text(
            json.dumps({"name": "same", "expectations": []})
        )
    with pytest.raises(GateError, match="suite name 'same' is already used"):
        load_suites(replace(settings, gx_dir=tmp_path))


def test_a_broken_suite_file_is_named(tmp_path, settings):
    from dataclasses import replace

    (tmp_path / "suites" / "marts").mkdir(parents=True)
    (tmp_path / "suites" / "marts" / "bad.json").write_text("{ not json")
    with pytest.raises(GateError, match=r"bad\.json: not valid JSON"):
        load_suites(replace(settings, gx_dir=tmp_path))


def test_a_suite_can_opt_out_of_a_convention_by_id():
    from knowdo.quality import convention_expectations

    rules = [
        {
            "id": "not_empty",
            "every_table": True,
            "expectation": {
                "type": "expect_table_row_count_to_be_between",
                "kwargs": {"min_value": 1},
            },
        },
        {
            "id": "positive_population",
            "column_matches": "^population$",
            "expectation": {
                "type": "expect_column_values_to_be_between",
                "kwargs": {"min_value": 1},
            },
        },
    ]
    assert len(convention_expectations(rules, ["population"])) == 2
    kept = convention_expectations(rules, ["population"], skip=["not_empty"])
    assert [e["type"] for e in kept] == ["expect_column_values_to_be_between"]


def test_every_raw_table_a_format_fills_has_a_raw_suite(settings):
    from knowdo.pipeline import raw_tables

    suites = {s.table for s in load_suites(settings) if s.layer == "raw"}
    assert {t.split(".", 1)[1] for t in raw_tables()} <= suites


def test_raw_suites_name_completeness_and_where_rows_came_from(settings):
    """Each raw suite checks completeness per submitter and period, and its row queries return
    feed_id and batch_id so a failure can name the file (or says why a query is per feed)."""
    for suite in (s for s in load_suites(settings) if s.layer == "raw"):
        descriptions = [e["kwargs"].get("description", "") for e in suite.spec["expectations"]]
        assert any("completeness per" in d for d in descriptions), suite.name
        for e in suite.spec["expectations"]:
            query = e["kwargs"].get("unexpected_rows_query")
            if query:
                columns = query.split(" from ")[0]
                assert "feed_id" in columns or columns.endswith("select *"), (
                    suite.name,
                    query[:80],
                )


def test_failures_name_the_feeds_and_batches_of_their_rows():
    from knowdo.quality import batches_of

    rows = [
        {"feed_id": "gha_moh_dhis2", "batch_id": 12, "row_number": 4},
        {"feed_id": "gha_moh_dhis2", "batch_id": 12, "row_number": 9},
        {"feed_id": "rou_moh_dhis2", "batch_id": 3},
        {"feed_id": "wellcome", "batch_id": None},
        "not a row",
        {"value": 5},
    ]
    assert batches_of(rows) == ["gha_moh_dhis2 batch 12", "rou_moh_dhis2 batch 3", "wellcome"]
    many = [{"feed_id": f"f{i:02d}", "batch_id": i} for i in range(12)]
    assert batches_of(many, limit=10)[-1] == "and 2 more"
    failure = ExpectationFailure(
        "unexpected_rows_expectation",
        None,
        "sessions >= people reached",
        1,
        [{"feed_id": "ngo", "batch_id": 7}],
        ["ngo batch 7"],
    )
    assert failure.line() == (
        "unexpected_rows_expectation (1 rows) in ngo batch 7: sessions >="
        " people reached; e.g. [{'feed_id': 'ngo', 'batch_id': 7}]"
    )
