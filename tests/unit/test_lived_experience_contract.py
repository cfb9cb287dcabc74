"""The lived-experience template's contract and its codebook (issue 16).

The codebook of themes is kept once, as the dbt seed lived_experience_codebook; the contract's
theme_code column reads its codes from there (`allowed: {seed: ..., column: ...}`), so an unknown
theme is rejected naming the codebook, and a theme added to the seed is allowed without touching the
contract.
"""

from __future__ import annotations

import csv
import shutil
from datetime import date
from pathlib import Path

import pytest

from knowdo.contracts import (
    CONTRACTS_DIR,
    ContractError,
    load_codelists,
    load_contract,
    load_contracts,
    parse_record,
)

REPO = Path(__file__).resolve().parents[2]
CODEBOOK = REPO / "dbt_project" / "seeds" / "lived_experience_codebook.csv"
CONTRACT = load_contracts(include_drafts=True)["knowdo-lived-experience-csv"]
TODAY = date(2024, 6, 30)
# CFIR 2.0 (Damschroder et al. 2022, Implementation Science 17:75): its five domains; the
# Outcomes Addendum (Implementation Science 17:7) for innovation outcomes.
CFIR_DOMAINS = {
    "innovation",
    "outer_setting",
    "inner_setting",
    "individuals",
    "implementation_process",
    "outcomes_addendum",
}
# The constructs of CFIR 2.0 as the 2022 paper names them (roles of the Individuals domain before
# a colon, with their characteristic), by domain: a codebook placement must be one of them.
CFIR_CONSTRUCTS = {
    "innovation": {
        "Innovation Source",
        "Innovation Evidence-Base",
        "Innovation Relative Advantage",
        "Innovation Adaptability",
        "Innovation Trialability",
        "Innovation Complexity",
        "Innovation Design",
        "Innovation Cost",
    },
    "outer_setting": {
        "Critical Incidents",
        "Local Attitudes",
        "Local Conditions",
        "Partnerships & Connections",
        "Policies & Laws",
        "Financing",
        "External Pressure",
    },
    "inner_setting": {
        "Structural Characteristics: Physical Infrastructure",
        "Structural Characteristics: Information Technology Infrastructure",
        "Structural Characteristics: Work Infrastructure",
        "Relational Connections",
        "Communications",
        "Culture: Human Equality-Centeredness",
        "Culture: Recipient-Centeredness",
        "Culture: Deliverer-Centeredness",
        "Culture: Learning-Centeredness",
        "Tension for Change",
        "Compatibility",
        "Relative Priority",
        "Incentive Systems",
        "Mission Alignment",
        "Available Resources",
        "Access to Knowledge & Information",
    },
    "individuals": {
        f"{role}: {characteristic}"
        for role in ("Innovation Recipients", "Innovation Deliverers")
        for characteristic in ("Need", "Capability", "Opportunity", "Motivation")
    },
    "implementation_process": {
        "Teaming",
        "Assessing Needs: Innovation Deliverers",
        "Assessing Needs: Innovation Recipients",
        "Assessing Context",
        "Planning",
        "Tailoring Strategies",
        "Engaging: Innovation Deliverers",
        "Engaging: Innovation Recipients",
        "Doing",
        "Reflecting & Evaluating",
        "Adapting",
    },
    "outcomes_addendum": {"Innovation Outcomes", "Implementation Outcomes"},
}

RECORD = {
    "organisation_id": "SN-NGO-0007",
    "evidence_id": "DK-2024-031",
    "contributor_id": "P-118",
    "country_code": "SEN",
    "geography_code": "SN-DK",
    "month_collected": "2024-03",
    "intervention_code": "problem_management_plus",
    "stratifier": "sex",
    "group_code": "F",
    "source_kind": "focus_group",
    "contributor_role": "service_user",
    "language": "fr",
    "consent_scope": "publish_quote",
    "theme_code": "stigma",
    "direction": "barrier",
    "quote": "Au quartier, on dit que ceux qui vont là-bas sont fous.",
    "summary": "Fear of being called mad keeps women away.",
}


def codebook() -> list[dict[str, str]]:
    with CODEBOOK.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def problems(**changes):
    return [
        (p.field, p.reason) for p in parse_record(CONTRACT, {**RECORD, **changes}, TODAY).problems
    ]


def test_the_contract_has_the_fields_the_issue_lists():
    assert CONTRACT.raw_table == "raw.template_lived_experience"
    assert CONTRACT.period_column == "month_collected"
    assert set(CONTRACT.grain) >= {"organisation_id", "evidence_id", "theme_code"}
    codes = {c.name: c.allowed.codes for c in CONTRACT.columns if c.allowed}
    assert codes["consent_scope"] == {"publish_quote", "aggregate_only", "internal_only"}
    assert codes["direction"] == {"barrier", "facilitator"}
    assert {"service_user", "carer", "family_member", "staff", "community_member"} <= codes[
        "contributor_role"
    ]
    assert {"interview", "focus_group", "survey_free_text", "service_user_panel"} <= codes[
        "source_kind"
    ]
    assert {"en", "fr", "es", "ar"} <= codes["language"] and len(codes["language"]) == 183
    assert CONTRACT.column("quote").type == "text" and CONTRACT.column("summary").type == "text"


def test_the_contract_is_a_draft_until_the_feed_is_wired():
    """No raw table, sample file or feed exists yet: the template is not served as a format."""
    assert CONTRACT.draft
    assert "knowdo-lived-experience-csv" not in load_contracts()
    from knowdo.formats import FORMATS

    assert "knowdo-lived-experience-csv" not in FORMATS


def test_a_status_other_than_active_or_draft_is_refused(tmp_path):
    text = (CONTRACTS_DIR / "lived-experience.v1.yml").read_text(encoding="utf-8")
    shutil.copy(CONTRACTS_DIR / "codelists.yml", tmp_path / "codelists.yml")
    (tmp_path / "lived-experience.v1.yml").write_text(
        text.replace("status: draft", "status: beta"), encoding="utf-8"
    )
    with pytest.raises(ContractError, match="'status' must be one of active, draft, got 'beta'"):
        load_contract(tmp_path / "lived-experience.v1.yml")


def test_a_valid_record_has_no_problems():
    assert problems() == []


def test_the_theme_codes_are_the_codebooks():
    assert CONTRACT.column("theme_code").allowed.codes == {r["theme_code"] for r in codebook()}


def test_an_unknown_theme_is_rejected_naming_the_codebook():
    (found,) = problems(theme_code="stigmatisation")
    field, reason = found
    assert field == "theme_code"
    assert "lived_experience_codebook" in reason
    assert "dbt_project/seeds/lived_experience_codebook.csv" in reason
    assert "did you mean 'stigma'" in reason
    assert problems(theme_code="Stigma") == [
        ("theme_code", "'Stigma' is not an allowed code: codes are case-sensitive, write 'stigma'")
    ]


def test_a_theme_added_to_the_codebook_is_allowed_without_touching_the_contract(
    tmp_path, monkeypatch
):
    seeds = tmp_path / "dbt_project" / "seeds"
    seeds.mkdir(parents=True)
    rows = codebook()
    rows.append({**rows[0], "theme_code": "housing", "theme_name": "Housing"})
    with (seeds / CODEBOOK.name).open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    monkeypatch.setenv("KNOWDO_DBT_PROJECT_DIR", str(tmp_path / "dbt_project"))
    contract = load_contract(CONTRACTS_DIR / "lived-experience.v1.yml", load_codelists())
    assert not parse_record(contract, {**RECORD, "theme_code": "housing"}, TODAY).problems
    assert problems(theme_code="housing") != []  # the checkout's codebook has no such theme


@pytest.mark.parametrize(
    ("allowed", "message"),
    [
        ("{seed: no_such_seed, column: theme_code}", "seed no_such_seed: no such file"),
        ("{seed: lived_experience_codebook, column: code}", "has no column 'code'"),
        ("{seed: Bad-Name, column: theme_code}", "'seed' must name a dbt seed"),
        ("{seed: lived_experience_codebook, colour: x}", "unknown field(s) colour"),
    ],
)
def test_a_contract_naming_a_missing_seed_or_column_is_refused(tmp_path, allowed, message):
    text = (CONTRACTS_DIR / "lived-experience.v1.yml").read_text(encoding="utf-8")
    text = text.replace("{seed: lived_experience_codebook, column: theme_code}", allowed)
    shutil.copy(CONTRACTS_DIR / "codelists.yml", tmp_path / "codelists.yml")
    (tmp_path / "lived-experience.v1.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ContractError) as exc:
        load_contract(tmp_path / "lived-experience.v1.yml")
    assert str(exc.value).startswith("lived-experience.v1.yml: columns[") and message in str(
        exc.value
    ), str(exc.value)


def test_other_codes_and_the_group_within_its_stratifier_are_checked():
    assert [f for f, _ in problems(consent_scope="public")] == ["consent_scope"]
    assert [f for f, _ in problems(direction="neutral")] == ["direction"]
    assert [f for f, _ in problems(language="fre")] == ["language"]
    assert [f for f, _ in problems(group_code="25-49")] == ["group_code"]
    assert [f for f, _ in problems(month_collected="2024-07")] == ["month_collected"]
    assert [f for f, _ in problems(quote="")] == ["quote"]


# --- the codebook -----------------------------------------------------------------------------


def test_the_codebook_holds_the_issues_themes_each_defined_and_placed_in_cfir_2():
    rows = codebook()
    codes = [r["theme_code"] for r in rows]
    assert len(codes) == len(set(codes))
    # the themes issue 16 names: access and waiting, cost, stigma, trust, cultural and language
    # fit, family, workforce, digital access, outcome experienced
    assert {
        "access_waiting",
        "cost",
        "stigma",
        "trust",
        "cultural_language_fit",
        "family",
        "workforce",
        "digital_access",
        "outcome_experienced",
    } <= set(codes)
    for r in rows:
        assert r["theme_name"] and len(r["definition"]) > 30 and r["cfir_note"], r["theme_code"]
        assert r["cfir_domain"] in CFIR_DOMAINS, r
        assert r["cfir_construct"] in CFIR_CONSTRUCTS[r["cfir_domain"]], r
    # every CFIR 2.0 determinant domain is used; outcomes only in the addendum
    assert {r["cfir_domain"] for r in rows} == CFIR_DOMAINS
    assert {r["theme_code"] for r in rows if r["cfir_domain"] == "outcomes_addendum"} == {
        "outcome_experienced"
    }


def test_a_rejected_quote_names_the_column_and_reason_never_the_text():
    long_quote = "Mon nom est Fatou Diop, 77 123 45 67. " * 120  # over max_length 4000
    (found,) = parse_record(CONTRACT, {**RECORD, "quote": long_quote}, TODAY).problems
    assert found.field == "quote" and "longer than 4000 characters" in found.reason
    assert found.value == f"(withheld: personal data, {len(long_quote)} characters)"
    assert "Fatou" not in found.reason + found.value
    assert CONTRACT.column("summary").personal_data
    assert not CONTRACT.column("evidence_id").personal_data


def test_personal_data_applies_to_text_columns_only(tmp_path):
    text = (CONTRACTS_DIR / "lived-experience.v1.yml").read_text(encoding="utf-8")
    text = text.replace(
        "    allowed: [barrier, facilitator]\n",
        "    allowed: [barrier, facilitator]\n    personal_data: true\n",
    )
    shutil.copy(CONTRACTS_DIR / "codelists.yml", tmp_path / "codelists.yml")
    (tmp_path / "lived-experience.v1.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ContractError, match="'personal_data' applies only to text columns"):
        load_contract(tmp_path / "lived-experience.v1.yml")
