"""The feed registry: one YAML entry per feed (feeds/registry.yml).

Adding a feed is adding an entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from knowdo import schedules

PUBLISHER_KINDS = {"ministry", "ngo", "arc", "funder", "reference"}
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


def _due_within_days(entry: dict, where: str) -> int:
    value = entry.get("due_within_days")
    try:  # the schedule is checked even when due_within_days is given: its interval is needed
        default = schedules.default_due_within_days(entry.get("schedule"))
    except schedules.ScheduleError as exc:
        raise RegistryError(f"{where}: {exc}") from None
    if value is None:
        return default
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
                " domain, format, schedule, schedule_interval, due_within_days, source,"
                " in_registry, synced_at)"
                " values (%s, %s, %s, %s, %s, %s, %s, %s::interval, %s, %s, true, now())"
                " on conflict (feed_id) do update set publisher_name = excluded.publisher_name,"
                " publisher_kind = excluded.publisher_kind, country_code = excluded.country_code,"
                " domain = excluded.domain, format = excluded.format, schedule = excluded.schedule,"
                " schedule_interval = excluded.schedule_interval,"
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
                    schedules.interval_literal(schedules.schedule_interval(f.schedule)),
                    f.due_within_days,
                    json.dumps(f.source),
                ),
            )
        conn.execute(
            "update ops.feeds set in_registry = false where not (feed_id = any(%s))", (list(feeds),)
        )
        sync_last_days_covered(conn, {f.id: f.schedule for f in feeds.values()})


def sync_last_days_covered(conn, schedules_by_feed: dict[str, str | None]) -> None:
    """ops.load_batches.last_day_covered for every batch of a registered feed, where it differs
    from what knowdo.schedules says today: batches loaded before the column existed, and labels of
    unknown shape (one schedule interval) after a feed's schedule changed. A few rows per feed."""
    rows = conn.execute(
        "select batch_id, feed_id, period_end, periods[cardinality(periods)], last_day_covered"
        " from ops.load_batches where feed_id = any(%s) and period_end is not null",
        (list(schedules_by_feed),),
    ).fetchall()
    changed = []
    for batch_id, feed_id, last_start, last_label, stored in rows:
        covered = schedules.last_day_covered(last_start, last_label, schedules_by_feed[feed_id])
        if covered != stored:
            changed.append((covered, batch_id))
    if changed:
        with conn.cursor() as cur:
            cur.executemany(
                "update ops.load_batches set last_day_covered = %s where batch_id = %s", changed
            )
