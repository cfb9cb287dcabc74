"""IATI activity XML, versions 2.01-2.03: one raw row per `iati-activity`.

Reading is streamed with lxml's iterparse (each activity is cleared once read), so memory stays flat
however many activities a publisher puts in one file.

Safety: IATI files never need a DTD, so a file that declares a DOCTYPE (internal entities as in
"billion laughs", or external entities/DTDs as in XXE) is rejected as a whole before any activity is
read. On top of that the parser never resolves entities, loads a DTD or touches the network. We
check lxml's docinfo ourselves instead of using defusedxml.lxml because that module is deprecated
and has no streaming iterparse.

Values stay as published (raw): a transaction without its own currency keeps NULL (the activity's
default_currency applies downstream); empty attributes such as percentage="" become NULL.

Sector and geography percentages that do not add up to 100 keep the activity (dropping it would lose
real money from the funding marts) and are noted in the `warnings` column instead.

Mental health flag: `is_mental_health` is true when any activity or transaction sector is in the
feed's `options.mental_health_sector_codes` (default DAC CRS purpose codes 12340 mental health and
12330 alcohol/drugs). A five-digit code matches only vocabulary 1 (DAC 5-digit purpose codes, also
the default when no vocabulary is given). Vocabulary 2 holds 3-digit DAC categories; 12340 and 12330
both sit in category 123 "Non-communicable diseases" together with NCD, tobacco and NCD-research
purposes, so a bare 123 is NOT counted as mental health by default (it would over-count). A feed
that wants it lists the 3-digit code itself (e.g. "123"), which then matches vocabulary 2 only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from lxml import etree

from knowdo.formats._json import jsonb
from knowdo.formats.base import FileRejected, FormatSpec, ParseContext, Rejection, Row

COLUMNS = (
    "iati_identifier",
    "iati_version",
    "default_currency",
    "activity_status",
    "title",
    "reporting_org_ref",
    "reporting_org_name",
    "reporting_org_type",
    "participating_orgs",
    "sectors",
    "recipient_countries",
    "recipient_regions",
    "transactions",
    "is_mental_health",
    "activity_date_start",
    "last_updated_datetime",
    "warnings",
)

DEFAULT_MENTAL_HEALTH_SECTOR_CODES = ("12340", "12330")
SUPPORTED_VERSION = re.compile(r"^2\.0[1-3]$")
# activity-date/@type: 2 = actual start, 1 = planned start (the actual date wins when both exist)
_START_DATE_TYPES = ("2", "1")
# Percentages within this distance of 100 count as 100 (publishers round, e.g. 3 x 33.33).
_PERCENT_TOLERANCE = Decimal("0.5")


class _ActivityRejected(Exception):
    def __init__(self, field: str, value: str | None, reason: str) -> None:
        super().__init__(reason)
        self.field, self.value, self.reason = field, value, reason


def _attr(element: etree._Element | None, name: str) -> str | None:
    """An attribute's text, or None when it is absent or empty (real files send percentage="")."""
    if element is None:
        return None
    text = element.get(name)
    if text is None or not text.strip():
        return None
    return text.strip()


def _narrative(element: etree._Element | None) -> str | None:
    """The first narrative's text (2.0x), falling back to the element's own text."""
    if element is None:
        return None
    for narrative in element.iterchildren("narrative"):
        text = (narrative.text or "").strip()
        if text:
            return text
    text = (element.text or "").strip()
    return text or None


def _decimal(text: str | None, field: str) -> Decimal | None:
    if text is None or not text.strip():
        return None
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise _ActivityRejected(field, text, f"{field} '{text}' is not a number") from None
    if not value.is_finite():
        raise _ActivityRejected(field, text, f"{field} '{text}' is not a finite number")
    return value


def _iso_date(text: str | None) -> date | None:
    """An xsd:date (datetimes are cut to their date); ValueError when it is not one."""
    if text is None:
        return None
    try:
        return date.fromisoformat(text[:10])
    except ValueError:
        raise ValueError(f"'{text}' is not a date (expected YYYY-MM-DD)") from None


def _sectors(parent: etree._Element, field: str) -> list[dict[str, Any]]:
    return [
        {
            "vocabulary": _attr(sector, "vocabulary") or "1",
            "code": _attr(sector, "code"),
            "percentage": _decimal(_attr(sector, "percentage"), f"{field}/@percentage"),
        }
        for sector in parent.iterchildren("sector")
    ]


def _countries(parent: etree._Element, field: str) -> list[dict[str, Any]]:
    return [
        {
            "code": _attr(country, "code"),
            "percentage": _decimal(_attr(country, "percentage"), f"{field}/@percentage"),
        }
        for country in parent.iterchildren("recipient-country")
    ]


def _regions(parent: etree._Element, field: str) -> list[dict[str, Any]]:
    return [
        {
            "code": _attr(region, "code"),
            "vocabulary": _attr(region, "vocabulary") or "1",
            "percentage": _decimal(_attr(region, "percentage"), f"{field}/@percentage"),
        }
        for region in parent.iterchildren("recipient-region")
    ]


def _transaction(element: etree._Element) -> dict[str, Any]:
    value_element = element.find("value")
    value_text = None if value_element is None else (value_element.text or "").strip() or None
    date_text = _attr(element.find("transaction-date"), "iso-date")
    try:
        _iso_date(date_text)
    except ValueError as exc:
        raise _ActivityRejected(
            "transaction/transaction-date/@iso-date", date_text, f"transaction-date {exc}"
        ) from None
    provider, receiver = element.find("provider-org"), element.find("receiver-org")
    return {
        "type": _attr(element.find("transaction-type"), "code"),
        "date": date_text,
        "value": _decimal(value_text, "transaction/value"),
        "currency": _attr(value_element, "currency"),
        "value_date": _attr(value_element, "value-date"),
        "provider_org_ref": _attr(provider, "ref"),
        "provider_org_name": _narrative(provider),
        "receiver_org_ref": _attr(receiver, "ref"),
        "receiver_org_name": _narrative(receiver),
        "description": _narrative(element.find("description")),
        # IATI allows sector and geography per transaction instead of per activity
        "sectors": _sectors(element, "transaction/sector"),
        "recipient_countries": _countries(element, "transaction/recipient-country"),
        "recipient_regions": _regions(element, "transaction/recipient-region"),
    }


def _percentage_warnings(field: str, items: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Shares of one dimension must add up to 100 (a single item without a share means 100)."""
    if not items or (len(items) == 1 and items[0]["percentage"] is None):
        return []
    shares = [item["percentage"] for item in items]
    if any(share is None for share in shares):
        return [
            {
                "field": field,
                "reason": f"{shares.count(None)} of {len(items)} {field} entries "
                "have no percentage, so the split is unknown",
            }
        ]
    total = sum(shares)
    if abs(total - 100) > _PERCENT_TOLERANCE:
        return [{"field": field, "reason": f"{field} percentages add up to {total}, not 100"}]
    return []


def _mental_health_codes(ctx: ParseContext) -> tuple[set[str], set[str]]:
    """(vocabulary 1 five-digit codes, vocabulary 2 three-digit codes) from the feed options."""
    codes = {
        str(code).strip()
        for code in ctx.options.get(
            "mental_health_sector_codes", DEFAULT_MENTAL_HEALTH_SECTOR_CODES
        )
    }
    return {c for c in codes if len(c) == 5}, {c for c in codes if len(c) == 3}


def _is_mental_health(sectors: list[dict[str, Any]], codes: tuple[set[str], set[str]]) -> bool:
    purpose_codes, category_codes = codes
    return any(
        (s["vocabulary"] == "1" and s["code"] in purpose_codes)
        or (s["vocabulary"] == "2" and s["code"] in category_codes)
        for s in sectors
    )


def activity_values(
    activity: etree._Element, version: str, codes: tuple[set[str], set[str]]
) -> tuple[Any, ...]:
    """The raw row of one `iati-activity`; raises _ActivityRejected when it breaks the contract."""
    identifier = (activity.findtext("iati-identifier") or "").strip()
    if not identifier:
        raise _ActivityRejected("iati-identifier", None, "iati-identifier is missing or empty")
    warnings: list[dict[str, str]] = []

    reporting = activity.find("reporting-org")
    participating = [
        {
            "ref": _attr(org, "ref"),
            "name": _narrative(org),
            "role": _attr(org, "role"),
            "type": _attr(org, "type"),
        }
        for org in activity.iterchildren("participating-org")
    ]
    sectors = _sectors(activity, "sector")
    countries = _countries(activity, "recipient-country")
    regions = _regions(activity, "recipient-region")
    transactions = [_transaction(t) for t in activity.iterchildren("transaction")]

    for vocabulary in dict.fromkeys(s["vocabulary"] for s in sectors):
        warnings += _percentage_warnings(
            f"sector (vocabulary {vocabulary})",
            [s for s in sectors if s["vocabulary"] == vocabulary],
        )
    # IATI rule: country and region shares together add up to 100
    warnings += _percentage_warnings("recipient-country/recipient-region", countries + regions)

    start = None
    dates = {_attr(d, "type"): _attr(d, "iso-date") for d in activity.iterchildren("activity-date")}
    for date_type in _START_DATE_TYPES:
        if dates.get(date_type):
            try:
                start = _iso_date(dates[date_type])
            except ValueError as exc:
                warnings.append({"field": "activity-date", "reason": f"start date {exc}"})
            break

    last_updated = None
    if updated_text := _attr(activity, "last-updated-datetime"):
        try:
            last_updated = datetime.fromisoformat(updated_text)
        except ValueError:
            warnings.append(
                {"field": "last-updated-datetime", "reason": f"'{updated_text}' is not a date-time"}
            )

    all_sectors = sectors + [s for t in transactions for s in t["sectors"]]
    return (
        identifier,
        version,
        _attr(activity, "default-currency"),
        _attr(activity.find("activity-status"), "code"),
        _narrative(activity.find("title")),
        _attr(reporting, "ref"),
        _narrative(reporting),
        _attr(reporting, "type"),
        jsonb(participating),
        jsonb(sectors),
        jsonb(countries),
        jsonb(regions),
        jsonb(transactions),
        _is_mental_health(all_sectors, codes),
        start,
        last_updated,
        jsonb(warnings),
    )


def _check_document(element: etree._Element) -> str:
    """Refuse DTDs and a wrong root; the activities' IATI version otherwise."""
    tree = element.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise FileRejected(
            "the file declares a DOCTYPE (DTD or entities), which IATI files never "
            "need: refused for safety"
        )
    root = tree.getroot()
    if root.tag != "iati-activities":
        raise FileRejected(
            f"the root element is <{root.tag}>, expected <iati-activities>: "
            "this is not an IATI activity file"
        )
    version = _attr(root, "version")
    if version is None:
        raise FileRejected("<iati-activities> has no version attribute (2.01, 2.02 or 2.03)")
    if not SUPPORTED_VERSION.match(version):
        raise FileRejected(
            f"IATI version {version} is not supported: send version 2.01, 2.02 or 2.03"
        )
    return version


def parse_xml(path: Path, ctx: ParseContext) -> Iterator[Row | Rejection]:
    codes = _mental_health_codes(ctx)
    seen: set[str] = set()
    version: str | None = None
    number = 0
    events = etree.iterparse(
        str(path),
        events=("start", "end"),
        tag=("iati-activities", "iati-activity"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    try:
        for event, element in events:
            if version is None:
                version = _check_document(element)
            if event != "end" or element.tag != "iati-activity":
                continue
            number += 1
            try:
                values = activity_values(element, version, codes)
            except _ActivityRejected as exc:
                yield Rejection(number, exc.field, exc.value, exc.reason)
            else:
                if values[0] in seen:
                    yield Rejection(
                        number,
                        "iati-identifier",
                        values[0],
                        "duplicate iati-identifier: the same activity appears earlier in this file",
                    )
                else:
                    seen.add(values[0])
                    yield Row(number, values)
            # free what has been read: the activity and anything before it (comments too)
            element.clear(keep_tail=False)
            while element.getprevious() is not None:
                del element.getparent()[0]
        if version is None:  # no iati-activities/iati-activity element at all
            _check_document(events.root)
    except etree.XMLSyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        raise FileRejected(f"not well-formed XML{where}: {exc.msg}") from None
    except OSError as exc:  # lxml reports unreadable files this way
        raise FileRejected(f"the file cannot be read as XML: {exc}") from None


def submitted_at(path: Path) -> datetime | None:
    """When the publisher generated the file (iati-activities/@generated-datetime), from the root's
    start tag alone; None when absent, unreadable or when absent or unreadable."""
    try:
        for _event, root in etree.iterparse(
            str(path),
            events=("start",),
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            huge_tree=False,
        ):
            text = _attr(root, "generated-datetime") if root.tag == "iati-activities" else None
            break
        else:
            return None
    except (etree.XMLSyntaxError, OSError):
        return None
    try:
        generated = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if generated is not None and generated.tzinfo is None:
        generated = generated.replace(tzinfo=UTC)  # no offset given: taken as UTC, as for DHIS2
    return generated


IATI_XML = FormatSpec(
    name="iati-xml",
    raw_table="raw.iati_activities",
    columns=COLUMNS,
    parse=parse_xml,
    description="IATI activity XML 2.01-2.03 (one row per iati-activity)",
    sniff=lambda head: "<iati-activities" in head,
    submitted_at=submitted_at,
)

FORMAT_SPECS = [IATI_XML]
