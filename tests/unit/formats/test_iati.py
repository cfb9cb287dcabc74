"""IATI activity XML: the official 2.03 example, handcrafted 2.01/2.02 files and hostile files."""

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from knowdo.checking import detect_format
from knowdo.formats import FORMATS, FileRejected, ParseContext, Rejection, Row, iati
from knowdo.formats.iati import COLUMNS, parse_xml

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "iati"
REAL = FIXTURES / "activity-standard-example-annotated.xml"


def parse(path, **options):
    return list(parse_xml(path, ParseContext(options=options)))


def as_dict(row: Row) -> dict:
    """Column name -> value, with jsonb values unwrapped."""
    return {c: getattr(v, "obj", v) for c, v in zip(COLUMNS, row.values)}


def rows_by_id(items) -> dict[str, dict]:
    return {as_dict(i)["iati_identifier"]: as_dict(i) for i in items if isinstance(i, Row)}


def write(tmp_path, text, name="f.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_official_example_activity_is_read_completely():
    (item,) = parse(REAL)
    assert isinstance(item, Row) and item.row == 1
    a = as_dict(item)
    assert a["iati_identifier"] == "AA-AAA-123456789-ABC123"
    assert (a["iati_version"], a["default_currency"], a["activity_status"]) == ("2.03", "USD", "2")
    assert a["title"] == "Activity title"  # the first narrative, not the French or Spanish one
    assert (a["reporting_org_ref"], a["reporting_org_name"], a["reporting_org_type"]) == (
        "AA-AAA-123456789",
        "Organisation name",
        "40",
    )
    assert a["participating_orgs"] == [
        {"ref": "BB-BBB-123456789", "name": "Name of Agency B", "role": "1", "type": "40"},
        {"ref": "CC-CCC-123456789", "name": "Name of Agency C", "role": "2", "type": "10"},
        {"ref": "AA-AAA-123456789", "name": "Name of Agency A", "role": "3", "type": "21"},
    ]
    assert a["sectors"] == [
        {"vocabulary": "2", "code": "111", "percentage": Decimal(50)},
        {"vocabulary": "2", "code": "112", "percentage": Decimal(50)},
        {"vocabulary": "99", "code": "A1", "percentage": Decimal(100)},
    ]
    assert a["recipient_countries"] == [
        {"code": "AF", "percentage": Decimal(25)},
        {"code": "AG", "percentage": Decimal(25)},
    ]
    assert a["recipient_regions"] == [
        {"code": "489", "vocabulary": "1", "percentage": Decimal(25)},
        {"code": "A1", "vocabulary": "99", "percentage": Decimal(25)},
    ]
    # countries and regions together make 100 and each sector vocabulary makes 100: no warnings
    assert a["warnings"] == []
    (transaction,) = a["transactions"]
    assert {
        k: transaction[k]
        for k in (
            "type",
            "date",
            "value",
            "currency",
            "value_date",
            "provider_org_ref",
            "receiver_org_ref",
            "description",
        )
    } == {
        "type": "1",
        "date": "2012-01-01",
        "value": Decimal(1000),
        "currency": "EUR",
        "value_date": "2012-01-01",
        "provider_org_ref": "BB-BBB-123456789",
        "receiver_org_ref": "AA-AAA-123456789",
        "description": "Transaction description text",
    }
    assert transaction["sectors"] == [{"vocabulary": "2", "code": "111", "percentage": None}]
    assert a["is_mental_health"] is False
    assert a["activity_date_start"] == date(2012, 4, 28)  # actual start (type 2) over planned
    assert a["last_updated_datetime"] == datetime(2014, 9, 10, 7, 15, 37, tzinfo=UTC)


def test_jsonb_values_serialise_decimals_as_json_numbers():
    (item,) = parse(REAL)
    sectors = item.values[COLUMNS.index("sectors")]
    assert sectors.dumps(sectors.obj).startswith(
        '[{"vocabulary": "2", "code": "111", "percentage": 50}'
    )


def test_version_2_01_mental_health_and_alcohol_sectors_and_empty_attributes():
    items = parse(FIXTURES / "activities-2.01-mental-health.xml")
    assert all(isinstance(i, Row) for i in items) and [i.row for i in items] == [1, 2, 3]
    by_id = rows_by_id(items)
    mh = by_id["GB-GOV-1-300123"]
    assert mh["iati_version"] == "2.01" and mh["is_mental_health"] is True
    assert mh["sectors"][0] == {"vocabulary": "1", "code": "12340", "percentage": Decimal(60)}
    assert [t["value"] for t in mh["transactions"]] == [Decimal(250000), Decimal("125000.50")]
    assert mh["transactions"][1]["currency"] is None  # as sent; default_currency applies later
    assert mh["activity_date_start"] == date(2016, 1, 1)  # planned start when no actual start
    assert by_id["GB-GOV-1-300124"]["is_mental_health"] is True  # 12330 alcohol/drugs
    assert by_id["GB-GOV-1-300124"]["warnings"] == [
        {
            "field": "recipient-country/recipient-region",
            "reason": "recipient-country/recipient-region percentages add up to 90, not 100",
        }
    ]

    empty = by_id["GB-GOV-1-300125"]
    assert empty["is_mental_health"] is False
    assert empty["recipient_countries"] == [{"code": "TZ", "percentage": None}]
    assert empty["sectors"] == [{"vocabulary": "1", "code": "12220", "percentage": None}]
    (t,) = empty["transactions"]
    assert (t["value"], t["currency"], t["date"], t["value_date"]) == (None, None, None, None)
    assert empty["warnings"] == [] and empty["activity_date_start"] is None


def test_version_2_02_categories_transaction_sectors_bad_values_and_duplicates():
    items = parse(FIXTURES / "activities-2.02-categories.xml")
    rejections = [i for i in items if isinstance(i, Rejection)]
    assert [(r.row, r.field, r.value) for r in rejections] == [
        (3, "transaction/value", "ten thousand"),
        (4, "iati-identifier", "XM-DAC-41114-NCD-1"),
    ]
    assert "not a number" in rejections[0].reason and "duplicate" in rejections[1].reason
    by_id = rows_by_id(items)
    assert set(by_id) == {"XM-DAC-41114-NCD-1", "XM-DAC-41114-MH-2"}
    # a 3-digit DAC category 123 covers all NCDs: not mental health unless the feed says so
    assert by_id["XM-DAC-41114-NCD-1"]["is_mental_health"] is False
    # sector reported per transaction (allowed by IATI) still marks the activity
    assert by_id["XM-DAC-41114-MH-2"]["is_mental_health"] is True
    assert by_id["XM-DAC-41114-MH-2"]["transactions"][0]["recipient_countries"] == [
        {"code": "CO", "percentage": None}
    ]


def test_configured_sector_codes_choose_what_counts_as_mental_health():
    opted_in = rows_by_id(
        parse(FIXTURES / "activities-2.02-categories.xml", mental_health_sector_codes=["123"])
    )
    assert opted_in["XM-DAC-41114-NCD-1"]["is_mental_health"] is True
    # with only the 3-digit category listed, the 5-digit 12340 no longer counts
    assert opted_in["XM-DAC-41114-MH-2"]["is_mental_health"] is False
    # YAML may give codes as numbers; a 5-digit code never matches vocabulary 2
    as_numbers = rows_by_id(
        parse(FIXTURES / "activities-2.02-categories.xml", mental_health_sector_codes=[12340])
    )
    assert as_numbers["XM-DAC-41114-MH-2"]["is_mental_health"] is True
    assert as_numbers["XM-DAC-41114-NCD-1"]["is_mental_health"] is False


def test_sector_percentages_are_checked_per_vocabulary_and_missing_shares_noted(tmp_path):
    path = write(
        tmp_path,
        """<iati-activities version="2.03"><iati-activity>
      <iati-identifier>A-1</iati-identifier>
      <sector vocabulary="1" code="12340" percentage="33.33"/>
      <sector vocabulary="1" code="12220" percentage="33.33"/>
      <sector vocabulary="1" code="12230" percentage="33.33"/>
      <sector vocabulary="2" code="123" percentage="70"/>
      <sector vocabulary="99" code="X" percentage="50"/><sector vocabulary="99" code="Y"/>
    </iati-activity></iati-activities>""",
    )
    (item,) = parse(path)
    assert as_dict(item)["warnings"] == [
        {
            "field": "sector (vocabulary 2)",
            "reason": "sector (vocabulary 2) percentages add up to 70, not 100",
        },
        {
            "field": "sector (vocabulary 99)",
            "reason": (
                "1 of 2 sector (vocabulary 99) entries have no percentage, so the split is unknown"
            ),
        },
    ]


def test_a_percentage_that_is_not_a_number_rejects_the_activity(tmp_path):
    path = write(
        tmp_path,
        """<iati-activities version="2.03">
      <iati-activity><iati-identifier>A-1</iati-identifier>
        <recipient-country code="GH" percentage="50%"/></iati-activity>
      <iati-activity><iati-identifier>A-2</iati-identifier></iati-activity>
      <iati-activity><iati-identifier> </iati-identifier></iati-activity>
      <iati-activity><iati-identifier>A-4</iati-identifier><transaction>
        <transaction-date iso-date="31/01/2020"/><value>5</value></transaction></iati-activity>
    </iati-activities>""",
    )
    items = parse(path)
    assert [(type(i).__name__, i.row) for i in items] == [
        ("Rejection", 1),
        ("Row", 2),
        ("Rejection", 3),
        ("Rejection", 4),
    ]
    assert (items[0].field, items[0].value) == ("recipient-country/@percentage", "50%")
    assert items[2].reason == "iati-identifier is missing or empty"
    assert (
        items[3].field == "transaction/transaction-date/@iso-date"
        and "not a date" in items[3].reason
    )


@pytest.mark.parametrize("name", ["xxe.xml", "billion-laughs.xml"])
def test_files_declaring_entities_are_refused_before_reading(name):
    with pytest.raises(FileRejected, match="declares a DOCTYPE"):
        parse(FIXTURES / name)


def test_an_external_dtd_is_refused(tmp_path):
    path = write(
        tmp_path,
        '<?xml version="1.0"?>\n<!DOCTYPE iati-activities SYSTEM '
        '"http://127.0.0.1:9/iati.dtd">\n<iati-activities version="2.03"/>',
    )
    with pytest.raises(FileRejected, match="declares a DOCTYPE"):
        parse(path)


def test_truncated_xml_is_rejected_with_its_line():
    with pytest.raises(FileRejected, match=r"^not well-formed XML at line \d+"):
        parse(FIXTURES / "truncated.xml")


@pytest.mark.parametrize("text", ["iati-identifier,title\nA-1,x\n", "", '{"grants": []}'])
def test_text_that_is_not_xml_is_rejected(tmp_path, text):
    with pytest.raises(FileRejected, match="^not well-formed XML"):
        parse(write(tmp_path, text))


def test_wrong_root_element_is_rejected_even_with_activities_inside(tmp_path):
    path = write(
        tmp_path,
        "<iati-organisations><iati-activity><iati-identifier>A</iati-identifier>"
        "</iati-activity></iati-organisations>",
    )
    with pytest.raises(FileRejected, match=r"root element is <iati-organisations>"):
        parse(path)
    with pytest.raises(FileRejected, match=r"root element is <activities>"):
        parse(write(tmp_path, "<activities/>", "other.xml"))


@pytest.mark.parametrize(
    "attrs, message",
    [
        ('version="1.05"', "IATI version 1.05 is not supported"),
        ("", "has no version attribute"),
    ],
)
def test_unsupported_or_missing_version_is_rejected(tmp_path, attrs, message):
    path = write(
        tmp_path,
        f"<iati-activities {attrs}><iati-activity><iati-identifier>A"
        "</iati-identifier></iati-activity></iati-activities>",
    )
    with pytest.raises(FileRejected, match=message):
        parse(path)


def test_memory_stays_flat_activities_are_cleared_as_they_are_read(tmp_path, monkeypatch):
    activity = (
        "<iati-activity><iati-identifier>A-{n}</iati-identifier>"
        "<title><narrative>t</narrative></title></iati-activity>"
    )
    path = write(
        tmp_path,
        '<iati-activities version="2.03">'
        + "".join(activity.format(n=n) for n in range(2000))
        + "</iati-activities>",
    )
    real_iterparse = iati.etree.iterparse
    kept_before = []

    def observed_iterparse(*args, **kwargs):
        # the real parser; after each activity is handled, count the activities still held before
        # it (those after it are lxml's read-ahead buffer, bounded whatever the file size)
        for event, element in real_iterparse(*args, **kwargs):
            yield event, element
            if event == "end" and element.tag == "iati-activity":
                kept_before.append(sum(1 for _ in element.itersiblings(preceding=True)))

    monkeypatch.setattr(iati.etree, "iterparse", observed_iterparse)
    assert len(parse(path)) == 2000
    assert len(kept_before) == 2000 and max(kept_before) == 0


def test_format_is_registered_and_sniffed():
    spec = FORMATS["iati-xml"]
    assert spec.raw_table == "raw.iati_activities" and spec.columns == COLUMNS
    assert detect_format(REAL) == "iati-xml"


def test_submitted_at_is_when_the_publisher_generated_the_file(tmp_path):
    assert iati.submitted_at(REAL) == datetime(2014, 9, 10, 7, 15, 37, tzinfo=UTC)
    assert iati.submitted_at(FIXTURES / "activities-2.02-categories.xml") is None  # not given
    naive = write(
        tmp_path, '<iati-activities version="2.03" generated-datetime="2020-01-02T03:04:05"/>'
    )
    assert iati.submitted_at(naive) == datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert iati.submitted_at(write(tmp_path, "not xml", "bad.xml")) is None
    assert FORMATS["iati-xml"].submitted_at is iati.submitted_at
