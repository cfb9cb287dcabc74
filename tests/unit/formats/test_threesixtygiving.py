"""360Giving grants: a real JSON package from GrantNav's test data and a CSV in the column-title
convention (BOM, CRLF, quoted newline, thousands separators, formula text)."""

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FORMATS, FileRejected, ParseContext, Rejection, Row
from knowdo.formats.threesixtygiving import COLUMNS, parse_csv, parse_json

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "threesixtygiving"
REAL_JSON = FIXTURES / "awefw001p00000zgyHZAAY.json"
CSV = FIXTURES / "grants-knowdo-test.csv"


def as_dict(row: Row) -> dict:
    return {c: getattr(v, "obj", v) for c, v in zip(COLUMNS, row.values)}


def write_json(tmp_path, doc, name="grants.json"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def grant(**fields):
    base = {
        "id": "360G-T-1",
        "title": "t",
        "currency": "GBP",
        "amountAwarded": 10,
        "awardDate": "2024-01-31",
    }
    return {**base, **fields}


def test_real_package_every_grant_is_read():
    items = list(parse_json(REAL_JSON, ParseContext()))
    assert len(items) == 154 and all(isinstance(i, Row) for i in items)
    assert [i.row for i in items] == list(range(1, 155))
    rows = [as_dict(i) for i in items]
    assert sum(r["amount_awarded"] for r in rows) == Decimal("16589361.49")
    assert {r["currency"] for r in rows} == {"GBP"}
    assert len({r["grant_id"] for r in rows}) == 154


def test_real_package_first_grant_values():
    first = as_dict(next(iter(parse_json(REAL_JSON, ParseContext()))))
    assert {k: first[k] for k in COLUMNS[:11]} == {
        "grant_id": "360G-ABCT-0065I000002yzGKQAY",
        "title": "A grant to Access to Justice Foundation",
        "description": first["description"],
        "currency": "GBP",
        "amount_awarded": 100000,
        "award_date": date(2020, 4, 28),
        "recipient_org_id": "GB-CHC-1126147",
        "recipient_org_name": "Access to Justice Foundation",
        "funding_org_id": "GB-CHC-1000147",
        "funding_org_name": "A B Charitable Trust",
        "grant_programme_title": "Human Rights, particularly access to justice",
    }
    # the publisher's own mojibake is kept verbatim (raw is what was sent)
    assert first["description"].startswith(
        "A restricted grant of \u00c2\u00a3100,000 towards wave 1"
    )
    assert first["beneficiary_country_codes"] is None and first["classifications"] is None
    # everything else is kept: regrant type, organisations whole, GrantNav's additional data
    assert first["extra"]["regrantType"] == "FRG030"
    assert first["extra"]["recipientOrganization"] == [
        {"id": "GB-CHC-1126147", "name": "Access to Justice Foundation"}
    ]
    assert first["extra"]["additional_data"]["recipientOrgInfos"][0]["charityNumber"] == "1126147"
    assert "id" not in first["extra"] and "amountAwarded" not in first["extra"]


def test_real_package_grant_with_decimal_amount_locations_and_planned_dates():
    rows = {r["grant_id"]: r for r in map(as_dict, parse_json(REAL_JSON, ParseContext()))}
    dcms = rows["360G-cabinetoffice-G2-GA-202106432865-20-21"]
    assert dcms["amount_awarded"] == Decimal("702428.4") and dcms["award_date"] == date(2020, 4, 7)
    calton = rows["360G-FoundationScotland-A383999"]
    assert (calton["recipient_org_id"], calton["funding_org_id"]) == (None, "GB-SC-SC022910")
    assert calton["beneficiary_country_codes"] == ["GB"]
    assert (calton["planned_start_date"], calton["planned_end_date"]) == (
        date(2015, 12, 7),
        date(2015, 12, 21),
    )
    assert calton["extra"]["recipientIndividual"]  # a grant to an individual: kept as sent
    # the grant programme " " is blank, not a title
    assert rows["360G-WilliamGrantFdn-FR-000000402"]["grant_programme_title"] is None


def test_json_extra_serialises_numbers_as_json_numbers():
    first = next(iter(parse_json(REAL_JSON, ParseContext())))
    extra = first.values[COLUMNS.index("extra")]
    assert '"latitude": 54.99166879514234' in extra.dumps(extra.obj)


def test_json_contract_breaches_are_rejected_and_the_rest_loads(tmp_path):
    doc = {
        "grants": [
            grant(id="G-1", awardDate="31/01/2024", amountAwarded="1,500"),
            grant(id=""),
            grant(id="G-3", amountAwarded="ten"),
            grant(id="G-4", amountAwarded=-5),
            grant(id="G-5", awardDate="2024-13-01"),
            grant(id="G-6", awardDate=None),
            grant(id="G-1"),
            grant(id="G-8", plannedDates=[{"startDate": "soon"}]),
            "not an object",
            grant(id="G-10", amountAwarded=0.5),
        ]
    }
    items = list(parse_json(write_json(tmp_path, doc), ParseContext()))
    rows = [as_dict(i) for i in items if isinstance(i, Row)]
    assert [(r["grant_id"], r["amount_awarded"], r["award_date"]) for r in rows] == [
        ("G-1", Decimal(1500), date(2024, 1, 31)),
        ("G-10", Decimal("0.5"), date(2024, 1, 31)),
    ]
    rejections = [(i.row, i.field, i.value) for i in items if isinstance(i, Rejection)]
    assert rejections == [
        (2, "id", None),
        (3, "amountAwarded", "ten"),
        (4, "amountAwarded", "-5"),
        (5, "awardDate", "2024-13-01"),
        (6, "awardDate", None),
        (7, "id", "G-1"),
        (8, "plannedDates.startDate", "soon"),
        (9, None, "not an object"),
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"grants": [{"id": "G-1", "amountAwarded": 1', "not valid JSON"),
        ("Identifier,Title\nG-1,x\n", "not valid JSON"),
        ('{"dataValues": []}', "no 'grants' array"),
        ("[]", "no 'grants' array"),
    ],
)
def test_unreadable_json_packages_are_rejected(tmp_path, text, message):
    with pytest.raises(FileRejected, match=message):
        list(parse_json(write_json(tmp_path, text), ParseContext()))


def test_an_empty_grants_array_is_a_valid_empty_package(tmp_path):
    assert list(parse_json(write_json(tmp_path, {"grants": []}), ParseContext())) == []


def test_csv_in_the_column_title_convention():
    items = list(parse_csv(CSV, ParseContext()))
    rows = {r["grant_id"]: r for r in (as_dict(i) for i in items if isinstance(i, Row))}
    assert list(rows) == ["360G-KDTEST-0001", "360G-KDTEST-0002", "360G-KDTEST-0008"]
    first = rows["360G-KDTEST-0001"]  # the byte-order mark is not part of "Identifier"
    assert first["description"] == "Weekly peer support groups.\nDelivered with schools in Salford."
    assert (first["amount_awarded"], first["award_date"]) == (Decimal(1500), date(2024, 4, 1))
    assert (first["recipient_org_id"], first["recipient_org_name"]) == (
        "GB-CHC-1000001",
        "Example Mind",
    )
    assert (first["funding_org_id"], first["funding_org_name"]) == (
        "GB-GOR-KD1",
        "KnowDo Test Fund",
    )
    assert first["grant_programme_title"] == "Children and young people"
    assert first["beneficiary_country_codes"] == ["GB"]  # 'GB' and 'gb' are one country
    assert (first["planned_start_date"], first["planned_end_date"]) == (
        date(2024, 5, 1),
        date(2025, 4, 30),
    )
    assert first["classifications"] == [
        {"vocabulary": "KnowDo area of need", "code": "cyp", "title": "Children and young people"}
    ]
    assert first["extra"]["Recipient Org:Charity Number"] == "1000001"
    assert first["extra"]["Planned Dates:Duration (months)"] == "12"
    assert first["extra"]["Beneficiary Location:1:Name"] == "Manchester"
    assert "Identifier" not in first["extra"] and "Classifications:0:Code" not in first["extra"]

    formula = rows["360G-KDTEST-0002"]
    assert formula["title"] == "=cmd|' /C calc'!A0"  # stored verbatim, as inert text
    assert formula["amount_awarded"] == Decimal("2250.50")
    assert rows["360G-KDTEST-0008"]["amount_awarded"] == Decimal(1500000)
    assert rows["360G-KDTEST-0008"]["award_date"] == date(2024, 8, 1)


def test_csv_rejections_name_the_column_titles():
    rejections = [i for i in parse_csv(CSV, ParseContext()) if isinstance(i, Rejection)]
    assert [(r.row, r.field, r.value) for r in rejections] == [
        (3, "Identifier", None),
        (4, "Amount Awarded", "lots"),
        (5, "Amount Awarded", "-100"),
        (6, "Award Date", "31/02/2024"),
        (7, "Identifier", "360G-KDTEST-0001"),
    ]
    assert rejections[1].reason == "Amount Awarded 'lots' is not a number"
    assert "negative" in rejections[2].reason and "not a date" in rejections[3].reason
    assert "duplicate grant identifier" in rejections[4].reason


def test_csv_without_the_required_columns_is_rejected(tmp_path):
    path = tmp_path / "grants.csv"
    path.write_text("Identifier,Title,Amount\r\nG-1,x,5\r\n", encoding="utf-8")
    with pytest.raises(FileRejected, match="missing column.*Amount Awarded, Award Date"):
        list(parse_csv(path, ParseContext()))


def test_csv_in_a_declared_encoding(tmp_path):
    path = tmp_path / "grants.csv"
    path.write_bytes(
        "Identifier,Title,Amount Awarded,Award Date\r\nG-1,Caf\xe9 club,5,01/02/2024\r\n".encode(
            "latin-1"
        )
    )
    (row,) = parse_csv(path, ParseContext(options={"encoding": "latin-1"}))
    assert as_dict(row)["title"] == "Caf\u00e9 club"
    with pytest.raises(FileRejected, match="not valid utf-8"):
        list(parse_csv(path, ParseContext()))


def test_formats_are_registered_and_sniffed():
    assert (
        FORMATS["360giving-json"].raw_table
        == FORMATS["360giving-csv"].raw_table
        == ("raw.threesixtygiving_grants")
    )
    assert detect_format(REAL_JSON) == "360giving-json"
    assert detect_format(CSV) == "360giving-csv"
