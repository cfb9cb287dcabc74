"""The feed registry: one YAML entry per feed (feeds/registry.yml).

Adding a feed is adding an entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PUBLISHER_KINDS = {"ministry", "ngo", "arc", "funder", "reference"}
# Days after the end of the period a file covers by which it is due, unless the feed says
# `due_within_days`; used for the on-time measure and the late-submitter alerts of feed health.
DEFAULT_DUE_DAYS = {
    "@daily": 2,
    "@weekly": 10,
    "@monthly": 45,
    "@quarterly": 60,
    "@yearly": 120,
    "@annually": 120,
}
# A cron schedule gets the default of the preset whose interval its own does not exceed (in days);
# no schedule at all: one file a year is expected.
_DUE_DAYS_BY_INTERVAL = ((1, 2), (7, 10), (31, 45), (92, 60))
_DUE_DAYS_UNSCHEDULED = 120
DOMAINS = {"funding", "service_use", "outcome", "reference"}


class RegistryError(ValueError):
    """The registry file is not valid; the message names the feed and the field."""


@dataclass(frozen=True)
class Feed:
    id: str
    publisher_name: str
    publisher_kind: str
    domain: str
    format: str
    source: dict[str, Any]
    schedule: str | None = None
    country_code: str | None = None
    mapping: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    due_within_days: int = 45

    def parse_context(self, today=None, file_name: str | None = None):
        from datetime import date

        from knowdo.formats import ParseContext

        return ParseContext(
            mapping=self.mapping,
            options=self.options,
            today=today or date.today(),
            feed_id=self.id,
            file_name=file_name,
        )


def default_due_within_days(schedule: str | None) -> int:
    """The deadline (days after the period a file covers) of a feed that does not set one: its
    schedule's default; a cron schedule is judged by the interval between two of its runs."""
    if schedule in DEFAULT_DUE_DAYS:
        return DEFAULT_DUE_DAYS[schedule]
    if not schedule or schedule == "@once":
        return _DUE_DAYS_UNSCHEDULED
    from datetime import datetime

    from croniter import croniter

    try:
        runs = croniter(schedule, datetime(2026, 1, 1))
    except (ValueError, KeyError):
        raise RegistryError(
            f"schedule '{schedule}' is neither a cron expression nor one of "
            f"{', '.join(sorted(DEFAULT_DUE_DAYS))}"
        ) from None
    first = runs.get_next(datetime)
    days = (runs.get_next(datetime) - first).total_seconds() / 86400
    return next(
        (due for limit, due in _DUE_DAYS_BY_INTERVAL if days <= limit), _DUE_DAYS_UNSCHEDULED
    )


def _due_within_days(entry: dict, where: str) -> int:
    value = entry.get("due_within_days")
    if value is None:
        try:
            return default_due_within_days(entry.get("schedule"))
        except RegistryError as exc:
            raise RegistryError(f"{where}: {exc}") from None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RegistryError(
            f"{where}: due_within_days must be a whole number of days >= 0, not {value!r}"
        )
    return value


def _require(entry: dict, key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise RegistryError(f"{where}: missing required field '{key}'")
    return entry[key]


def load_registry(path: Path) -> dict[str, Feed]:
    from knowdo.formats import FORMATS

    try:
        # the C loader when PyYAML has it: ~10x faster on registries that map thousands of org units
        safe_loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        doc = yaml.load(path.read_text(encoding="utf-8"), Loader=safe_loader) or {}
    except FileNotFoundError:
        raise RegistryError(f"feed registry not found: {path} (set KNOWDO_FEEDS_FILE)") from None
    except yaml.YAMLError as exc:
        raise RegistryError(f"{path}: not valid YAML: {exc}") from None
    feeds: dict[str, Feed] = {}
    for i, entry in enumerate(doc.get("feeds") or [], start=1):
        where = f"{path.name} feed #{i}"
        fid = _require(entry, "id", where)
        where = f"{path.name} feed '{fid}'"
        if fid in feeds:
            raise RegistryError(f"{where}: duplicate feed id")
        publisher = _require(entry, "publisher", where)
        kind = _require(publisher, "kind", where + " publisher")
        if kind not in PUBLISHER_KINDS:
            raise RegistryError(
                f"{where}: publisher kind '{kind}' not one of {sorted(PUBLISHER_KINDS)}"
            )
        domain = _require(entry, "domain", where)
        if domain not in DOMAINS:
            raise RegistryError(f"{where}: domain '{domain}' not one of {sorted(DOMAINS)}")
        source = _require(entry, "source", where)
        if not isinstance(source, dict) or not ({"folder", "url"} & set(source)):
            raise RegistryError(
                f"{where}: source needs a 'folder' (with optional 'glob') or a 'url'"
            )
        fmt = _require(entry, "format", where)
        if fmt not in FORMATS:
            raise RegistryError(
                f"{where}: unknown format '{fmt}' (known: {', '.join(sorted(FORMATS))})"
            )
        feeds[fid] = Feed(
            id=fid,
            publisher_name=_require(publisher, "name", where + " publisher"),
            publisher_kind=kind,
            country_code=publisher.get("country_code"),
            domain=domain,
            format=fmt,
            source=source,
            schedule=entry.get("schedule"),
            mapping=entry.get("mapping") or {},
            options=entry.get("options") or {},
            due_within_days=_due_within_days(entry, where),
        )
    return feeds


def sync_to_warehouse(conn, feeds: dict[str, Feed]) -> None:
    """Mirror the registry into ops.feeds (for feed-health marts); feeds removed from the file stay,
    flagged in_registry = false, so their history remains explained."""
    import json

    with conn.transaction():
        for f in feeds.values():
            conn.execute(
                "insert into ops.feeds (feed_id, publisher_name, publisher_kind, country_code,"
                " domain, format, schedule, due_within_days, source, in_registry, synced_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, true, now())"
                " on conflict (feed_id) do update set publisher_name = excluded.publisher_name,"
                " publisher_kind = excluded.publisher_kind, country_code = excluded.country_code,"
                " domain = excluded.domain, format = excluded.format, schedule = excluded.schedule,"
                " due_within_days = excluded.due_within_days, source = excluded.source,"
                " in_registry = true, synced_at = now()",
                (
                    f.id,
                    f.publisher_name,
                    f.publisher_kind,
                    f.country_code,
                    f.domain,
                    f.format,
                    f.schedule,
                    f.due_within_days,
                    json.dumps(f.source),
                ),
            )
        conn.execute(
            "update ops.feeds set in_registry = false where not (feed_id = any(%s))", (list(feeds),)
        )
