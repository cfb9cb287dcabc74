"""The feed registry: one YAML entry per feed (feeds/registry.yml). Adding a feed is adding an entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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

    def parse_context(self, today=None):
        from datetime import date

        from knowdo.formats import ParseContext

        return ParseContext(mapping=self.mapping, options=self.options,
                            today=today or date.today(), feed_id=self.id)


def _require(entry: dict, key: str, where: str) -> Any:
    if key not in entry or entry[key] in (None, ""):
        raise RegistryError(f"{where}: missing required field '{key}'")
    return entry[key]


def load_registry(path: Path) -> dict[str, Feed]:
    from knowdo.formats import FORMATS

    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
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
            raise RegistryError(f"{where}: publisher kind '{kind}' not one of {sorted(PUBLISHER_KINDS)}")
        domain = _require(entry, "domain", where)
        if domain not in DOMAINS:
            raise RegistryError(f"{where}: domain '{domain}' not one of {sorted(DOMAINS)}")
        source = _require(entry, "source", where)
        if not isinstance(source, dict) or not ({"folder", "url"} & set(source)):
            raise RegistryError(f"{where}: source needs a 'folder' (with optional 'glob') or a 'url'")
        fmt = _require(entry, "format", where)
        if fmt not in FORMATS:
            raise RegistryError(f"{where}: unknown format '{fmt}' (known: {', '.join(sorted(FORMATS))})")
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
        )
    return feeds
