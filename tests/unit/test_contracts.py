"""Template contracts: loading (and refusing malformed ones), every record rule, no drift from
SQL."""

import csv
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.contracts import (
    CONTRACTS_DIR,
    SQL_TYPES,
    ContractError,
    load_codelists,
    load_contract,
    load_contracts,
    parse_record,
)

REPO = Path(__file__).resolve().parents[2]
# a template added later gets its own migration (issue 15: 056_implementation_registry.sql); the
# raw tables of every template are read from all of them
MIGRATIONS = sorted((REPO / "src" / "knowdo" / "sql").glob("*.sql"))
TODAY = date(2024, 6, 30)
CONTRACTS = load_contracts()
CODELISTS = load_codelists()


def contract(name):
    return CONTRACTS[f"knowdo-{name}-csv"]


# --- loading --------------------------------------------------------------------------------


def test_every_template_has_a_contract_with_its_format_and_raw_table():
    assert {c.name: (c.format_name, c.raw_table, c.major) for c in CONTRACTS.values()} == {
        "ministry-budget": ("knowdo-ministry-budget-csv", "raw.template_ministry_budget", 1),
        "ngo-service-use": ("knowdo-ngo-service-use-csv", "raw.template_ngo_service_use", 1),
        "ngo-outcomes": ("knowdo-ngo-outcomes-csv", "raw.template_ngo_outcomes", 1),
        "population": ("knowdo-population-csv", "raw.template_population", 1),
        "prevalence": ("knowdo-prevalence-csv", "raw.template_prevalence", 1),
        "implementation-registry": (
            "knowdo-implementation-registry-csv",
            "raw.template_implementation_registry",
            1,
        ),
    }


def test_contracts_declare_the_ranges_the_instruments_and_counts_need():
    outcomes = contract("ngo-outcomes")
    assert (outcomes.column("mean_score_before").min, outcomes.column("mean_score_before").max) == (
        0,
        27,
    )
    assert outcomes.column("people_assessed").unit == "count"
    assert outcomes.column("people_assessed").suppressible
    assert [r.check for r in outcomes.rules][:2] == [
        "people_reliably_improved <= people_assessed",
        "people_recovered <= people_assessed",
    ]
    prevalence = contract("prevalence")
    assert (
        prevalence.column("prevalence_percent").min,
        prevalence.column("prevalence_percent").max,
    ) == (0, 100)
    assert contract("population").column("population").min == 1
    assert not contract("population").column("ethnicity").required


def test_code_lists_embed_iso_and_knowdo_codes():
    assert {"GHA", "SEN", "COL", "GBR"} <= CODELISTS["iso3_countries"].codes
    assert len(CODELISTS["iso3_countries"].codes) == 249
    currencies = CODELISTS["iso4217_currencies"].codes
    assert {"GHS", "XOF", "USD", "INR", "EGP"} <= currencies and "XAU" not in currencies
    assert CODELISTS["stratifier_groups"].codes_by["sex"] == {"F", "M"}
    assert len(CODELISTS["mhin_areas_of_need"].codes) == 8


GOOD_CONTRACT = """\
name: sample
version: 1.2.0
description: A contract for tests.
grain: [code]
columns:
  - name: code
    type: code
    required: true
    allowed: [a, b]
    description: A code.
  - name: n
    type: integer
    unit: count
    required: true
    min: 0
    description: A count.
  - name: m
    type: integer
    unit: count
    required: false
    description: Another count.
rules:
  - check: "m <= n"
    message: m exceeds n
"""


def write_contract(tmp_path, text, name="sample.v1.yml"):
    shutil.copy(CONTRACTS_DIR / "codelists.yml", tmp_path / "codelists.yml")
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_contract_loads(tmp_path):
    loaded = load_contract(write_contract(tmp_path, GOOD_CONTRACT))
    assert (loaded.version, loaded.format_name, loaded.grain) == (
        "1.2.0",
        "knowdo-sample-csv",
        ("code",),
    )
    assert loaded.rules[0].columns == ("m", "n")


def test_a_second_major_version_gets_its_own_format_and_table(tmp_path):
    loaded = load_contract(
        write_contract(tmp_path, GOOD_CONTRACT.replace("1.2.0", "2.0.0"), name="sample.v2.yml")
    )
    assert (loaded.format_name, loaded.raw_table) == (
        "knowdo-sample-v2-csv",
        "raw.template_sample_v2",
    )


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "type: integer\n    unit: count\n    required: true",
            "type: integr\n    unit: count\n    required: true",
            "columns[1] 'n': unknown type 'integr'",
        ),
        ("    description: A count.\n", "", "columns[1] 'n': missing required field 'description'"),
        (
            "allowed: [a, b]",
            "allowed: {codelist: planets}",
            "columns[0] 'code'.allowed: unknown code list 'planets'",
        ),
        ("allowed: [a, b]", "allowed: [1, 2]", "code 1 must be quoted text"),
        ("allowed: [a, b]", "unit: count", "'unit' applies only to integer/decimal columns"),
        (
            "    allowed: [a, b]\n",
            "",
            "columns[0] 'code': a code column needs 'allowed' or 'pattern'",
        ),
        (
            "unit: count\n    required: true\n    min: 0",
            "unit: boxes\n    required: true\n    min: 0",
            "columns[1] 'n': 'unit' must be one of",
        ),
        ("min: 0", "min: 5\n    max: 1", "columns[1] 'n': min 5 is above max 1"),
        ("required: false", "required: maybe", "columns[2] 'm': 'required' must be true or false"),
        ("name: m\n", "name: n\n", "columns[2] 'n': column defined twice"),
        ("name: m\n", "name: batch_id\n", "'batch_id' is reserved"),
        (
            "  - name: m\n",
            "  - name: m\n    colour: red\n",
            "columns[2] 'm': unknown field(s) colour",
        ),
        ("version: 1.2.0", "version: '1.2'", "'version' must be semantic"),
        ("version: 1.2.0", "version: 2.0.0", "belongs in sample.v2.yml"),
        ("grain: [code]", "grain: [code, region]", "grain names unknown column 'region'"),
        ("grain: [code]", "grain: [code]\ncolums: []", "unknown field(s) colums"),
        ('check: "m <= n"', 'check: "m <= total"', "rules[0].check: unknown column 'total'"),
        ('check: "m <= n"', 'check: "m <= code"', "cannot compare a number with a text"),
        (
            'check: "m <= n"',
            'check: "m + 1 <= n"',
            "only column names, numbers and 'text' may be compared",
        ),
        (
            'check: "m <= n"',
            "check: \"__import__('os').system('true')\"",
            "must be comparisons joined by",
        ),
        (
            'check: "m <= n"',
            'check: "m.real <= n"',
            "only column names, numbers and 'text' may be compared",
        ),
        ('check: "m <= n"', 'check: "m in n"', "only <, <=, >, >=, ==, != may be used"),
        ('check: "m <= n"', 'check: "m <="', "is not a valid expression"),
        ("    message: m exceeds n\n", "", "rules[0]: missing required field 'message'"),
        ("description: A contract for tests.", "description: [unclosed", "not valid YAML"),
    ],
)
def test_a_malformed_contract_is_refused_naming_file_and_field(tmp_path, old, new, message):
    assert old in GOOD_CONTRACT
    path = write_contract(tmp_path, GOOD_CONTRACT.replace(old, new, 1))
    with pytest.raises(ContractError) as exc:
        load_contract(path)
    assert str(exc.value).startswith("sample.v1.yml: ") and message in str(exc.value), str(
        exc.value
    )
    assert "\n" not in str(exc.value)


def test_a_rule_expression_is_never_executed(tmp_path):
    marker = tmp_path / "executed"
    text = GOOD_CONTRACT.replace('check: "m <= n"', f"check: \"open('{marker}', 'w') == 1\"")
    with pytest.raises(ContractError):
        load_contract(write_contract(tmp_path, text))
    assert not marker.exists()


# --- validating records ---------------------------------------------------------------------

OUTCOME = {
    "organisation_id": "KD-NGO-0042",
    "country_code": "GHA",
    "period": "2024-03",
    "intervention_code": "problem_management_plus",
    "instrument": "PHQ-9",
    "stratifier": "sex",
    "group_code": "F",
    "people_assessed": "120",
    "mean_score_before": "15.1",
    "mean_score_after": "9.0",
    "people_reliably_improved": "70",
    "people_recovered": "52",
}


def problems(name, record, **changes):
    found = parse_record(contract(name), {**record, **changes}, TODAY).problems
    return [(p.field, p.reason) for p in found]


def reasons(name, record, **changes):
    return " | ".join(r for _, r in problems(name, record, **changes))


def test_a_valid_record_has_no_problems_and_typed_values():
    parsed = parse_record(contract("ngo-outcomes"), OUTCOME, TODAY)
    assert parsed.problems == [] and parsed.suppressed == []
    assert parsed.values["period"] == date(2024, 3, 1)
    assert parsed.values["people_assessed"] == 120 and isinstance(
        parsed.values["people_assessed"], int
    )
    assert parsed.values["mean_score_before"] == Decimal("15.1")


@pytest.mark.parametrize(
    ("column", "text", "expected"),
    [
        ("people_assessed", "-1", "-1 is below the minimum of 0 (a count cannot be negative)"),
        ("people_assessed", "12.5", "'12.5' is not a whole number"),
        ("people_assessed", "twelve", "'twelve' is not a number"),
        ("mean_score_before", "27.5", "27.5 is above the maximum of 27"),
        ("mean_score_before", "15%", "not a number (write numbers without units or symbols)"),
        ("period", "03/2024", "is not a month (expected YYYY-MM"),
        ("period", "2024-13", "is not a month"),
        ("period", "2024-07", "'2024-07' is in the future (received 2024-06-30)"),
        ("country_code", "XYZ", "'XYZ' is not in code list iso3_countries"),
        ("country_code", "gha", "codes are case-sensitive, write 'GHA'"),
        ("instrument", "BDI-II", "'BDI-II' is not in code list instruments"),
        ("group_code", "0-14", "'0-14' is not a group of stratifier 'sex' (allowed: F, M)"),
        ("intervention_code", "Problem Management+", "does not have the expected form"),
        ("organisation_id", "=cmd|' /C calc'!A0", "does not have the expected form"),
        ("people_assessed", "12345678901234567890", "is implausibly large"),
        ("mean_score_before", "1e40", "is implausibly large"),
        ("intervention_code", "pm\x00plus", "contains a NUL character"),
        ("country_code", "", "country_code is required but empty"),
        ("instrument", "NA", "instrument is required: 'NA' (not available) is not allowed here"),
    ],
)
def test_each_kind_of_fault_is_named_with_its_column(column, text, expected):
    found = problems("ngo-outcomes", OUTCOME, **{column: text})
    assert len(found) == 1 and found[0][0] == column and expected in found[0][1], found


def test_numbers_accept_thousands_separators_and_spaces():
    parsed = parse_record(
        contract("ngo-outcomes"),
        {**OUTCOME, "people_assessed": " 1,250 ", "people_reliably_improved": "1,200"},
        TODAY,
    )
    assert parsed.problems == [] and parsed.values["people_assessed"] == 1250


def test_suppression_markers_become_missing_and_are_listed_never_zero():
    for marker in ("*", "-", "N/A", "NA", "NULL", ""):
        parsed = parse_record(
            contract("ngo-outcomes"), {**OUTCOME, "people_recovered": marker}, TODAY
        )
        assert parsed.problems == [], marker
        assert parsed.values["people_recovered"] is None and parsed.suppressed == [
            "people_recovered"
        ]


def test_an_optional_column_may_be_empty_or_absent():
    record = {
        "geography_code": "GH-AA",
        "year": "2024",
        "sex": "F",
        "age_band": "0-14",
        "population": "1,004,300",
        "source": "GSS",
    }
    assert problems("population", record) == []
    assert problems("population", record, ethnicity="", imd_decile="NA") == []
    assert problems("population", record, imd_decile="3") == []
    assert "'11' is not in code list stratifier_groups (imd_decile)" in reasons(
        "population", record, imd_decile="11"
    )


def test_population_takes_the_high_level_and_the_detailed_ons_2021_ethnic_groups():
    """population 1.1.0: ONS 2021 detailed groups (White British the reference of PCREF), each
    detailed code named in ref_stratifier_groups with a high-level group that is also allowed."""
    record = {
        "geography_code": "QOP",
        "year": "2024",
        "sex": "F",
        "age_band": "25-49",
        "population": "120000",
        "source": "ONS",
    }
    assert contract("population").version == "1.1.0"
    for code in ("white", "white_british", "asian_pakistani", "black_caribbean", "not_stated"):
        assert problems("population", record, ethnicity=code) == [], code
    assert "is not in code list stratifier_groups (ethnicity, ethnicity_detailed)" in reasons(
        "population", record, ethnicity="White British"
    )
    seed = REPO / "dbt_project" / "seeds" / "ref_stratifier_groups.csv"
    with seed.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["stratifier"] == "ethnicity_detailed"]
    high_level = CODELISTS["stratifier_groups"].codes_by["ethnicity"]
    assert {r["group_code"] for r in rows} == CODELISTS["stratifier_groups"].codes_by[
        "ethnicity_detailed"
    ]
    assert {r["parent_group_code"] for r in rows} <= high_level
    assert [r["group_code"] for r in rows if r["is_reference"] == "true"] == ["white_british"]


def test_a_column_may_take_the_codes_of_several_keys_of_a_code_list(tmp_path):
    both = GOOD_CONTRACT_WITH_KEYED_CODE.format(key="[sex, age_band]")
    loaded = load_contract(write_contract(tmp_path, both))
    assert {"F", "M", "0-14", "50+"} <= loaded.column("group").allowed.codes
    unknown = GOOD_CONTRACT_WITH_KEYED_CODE.format(key="[sex, colour]")
    with pytest.raises(ContractError, match="code list stratifier_groups has no key 'colour'"):
        load_contract(write_contract(tmp_path, unknown))


GOOD_CONTRACT_WITH_KEYED_CODE = """\
name: sample
version: 1.0.0
description: A contract for tests.
grain: [group]
columns:
  - name: group
    type: code
    required: true
    allowed: {{codelist: stratifier_groups, key: {key}}}
    description: A group.
"""


def test_years_are_four_digits_within_range_and_not_future_where_declared():
    record = {
        "geography_code": "GHA",
        "year": "2021",
        "condition": "depression",
        "sex": "all",
        "age_band": "all",
        "prevalence_percent": "5.9",
        "lower_percent": "5.1",
        "upper_percent": "6.8",
        "source": "IHME GBD 2021",
    }
    assert problems("prevalence", record) == []
    assert "'21' is not a year" in reasons("prevalence", record, year="21")
    assert "1989 is below the minimum of 1990" in reasons("prevalence", record, year="1989")
    assert "2025 is in the future" in reasons("prevalence", record, year="2025")
    # budgets are published before their year begins: fiscal years ahead are fine
    budget = {
        "country_code": "GHA",
        "fiscal_year": "2025",
        "budget_line": "MH/01",
        "area_of_need": "general",
        "amount": "1,000",
        "currency": "GHS",
        "amount_type": "allocated",
    }
    assert problems("ministry-budget", budget) == []


def test_text_is_kept_verbatim_and_length_is_bounded():
    budget = {
        "country_code": "GHA",
        "fiscal_year": "2024",
        "budget_line": "  =SUM(A1:A9) ",
        "area_of_need": "general",
        "amount": "10",
        "currency": "GHS",
        "amount_type": "spent",
    }
    parsed = parse_record(contract("ministry-budget"), budget, TODAY)
    assert parsed.problems == [] and parsed.values["budget_line"] == "  =SUM(A1:A9) "
    assert "longer than 200 characters" in reasons("ministry-budget", budget, budget_line="x" * 201)


def test_a_date_column_reads_iso_and_day_month_year(tmp_path):
    text = GOOD_CONTRACT.replace(
        "rules:",
        "  - name: seen_on\n    type: date\n    required: false\n    not_future: true\n"
        "    description: A day.\nrules:",
    )
    dated = load_contract(write_contract(tmp_path, text), CODELISTS)
    base = {"code": "a", "n": "1"}
    assert parse_record(dated, {**base, "seen_on": "2024-02-29"}, TODAY).values["seen_on"] == date(
        2024, 2, 29
    )
    assert parse_record(dated, {**base, "seen_on": "29/02/2024"}, TODAY).values["seen_on"] == date(
        2024, 2, 29
    )
    assert (
        "is not a date"
        in parse_record(dated, {**base, "seen_on": "30/02/2024"}, TODAY).problems[0].reason
    )
    assert (
        "in the future"
        in parse_record(dated, {**base, "seen_on": "2024-07-01"}, TODAY).problems[0].reason
    )


def test_cross_field_rules():
    assert problems("ngo-outcomes", OUTCOME, people_recovered="121") == [
        ("people_recovered,people_assessed", "people_recovered exceeds people_assessed")
    ]
    assert problems("ngo-outcomes", OUTCOME, people_reliably_improved="121") == [
        (
            "people_reliably_improved,people_assessed",
            "people_reliably_improved exceeds people_assessed",
        )
    ]
    # equal is allowed
    assert problems("ngo-outcomes", OUTCOME, people_recovered="120") == []


def test_a_conditional_rule_applies_only_when_its_condition_holds():
    assert problems("ngo-outcomes", OUTCOME, mean_score_before="24") == []  # PHQ-9: up to 27
    assert problems("ngo-outcomes", OUTCOME, instrument="GAD-7", mean_score_before="24") == [
        ("mean_score_before,mean_score_after", "GAD-7 scores range from 0 to 21")
    ]
    assert problems("ngo-outcomes", OUTCOME, instrument="GAD-7", mean_score_before="21") == []


def test_a_rule_with_a_missing_value_checks_only_what_it_can():
    record = {
        "geography_code": "GHA",
        "year": "2021",
        "condition": "anxiety",
        "sex": "M",
        "age_band": "all",
        "prevalence_percent": "4.2",
        "source": "IHME GBD 2021",
    }
    assert problems("prevalence", record, lower_percent="", upper_percent="") == []
    assert problems("prevalence", record, lower_percent="", upper_percent="4.5") == []
    assert problems("prevalence", record, lower_percent="", upper_percent="3.9") != []
    assert problems("prevalence", record, lower_percent="4.3", upper_percent="") != []
    # a suppressed count is never compared
    assert problems("ngo-outcomes", OUTCOME, people_assessed="*", people_recovered="500") == []


def test_every_problem_of_a_record_is_reported_not_only_the_first():
    found = problems(
        "ngo-outcomes", OUTCOME, country_code="XX", period="2024-99", people_assessed="-4"
    )
    assert [f for f, _ in found] == ["period", "people_assessed", "country_code"]


# --- the migration matches the contracts ----------------------------------------------------


def _migration_tables() -> dict[str, list[tuple[str, str, bool]]]:
    sql = "\n".join(path.read_text(encoding="utf-8") for path in MIGRATIONS)
    tables = {}
    for name, body in re.findall(
        r"create table if not exists (raw\.template_\w+) \((.*?)\n\);", sql, re.DOTALL
    ):
        columns = []
        for line in body.strip().splitlines():
            m = re.match(r"\s*(\w+)\s+([a-z\[\]]+)(.*?),?\s*$", line)
            columns.append((m[1], m[2], "not null" in m[3]))
        tables[name] = columns
    return tables


def test_the_migration_creates_exactly_the_contracts_columns():
    tables = _migration_tables()
    assert set(tables) == {c.raw_table for c in CONTRACTS.values()}
    for c in CONTRACTS.values():
        expected = [
            ("batch_id", "bigint", True),
            ("file_sha256", "text", True),
            ("row_number", "bigint", True),
            ("feed_id", "text", True),
        ]
        expected += [
            (col.name, SQL_TYPES[col.type], col.required and not col.suppressible)
            for col in c.columns
        ]
        expected.append(("contract_version", "text", True))
        if c.has_suppressible:
            expected.append(("suppressed_columns", "text[]", True))
        assert tables[c.raw_table] == expected, c.name


def test_the_template_formats_write_the_migrations_columns():
    from knowdo.formats import FORMATS

    tables = _migration_tables()
    for c in CONTRACTS.values():
        spec = FORMATS[c.format_name]
        assert spec.raw_table == c.raw_table
        assert list(spec.columns) == [name for name, _, _ in tables[c.raw_table]][4:]
