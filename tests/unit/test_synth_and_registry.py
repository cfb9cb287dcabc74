import filecmp

import pytest

from knowdo.config import REPO_ROOT
from knowdo.registry import RegistryError, load_registry
from knowdo.synth import dhis2, write_sample_feeds
from knowdo.synth.geography import BEING_COUNTRIES


def test_bundled_sample_feeds_are_what_the_generator_writes(tmp_path):
    written = write_sample_feeds(tmp_path, seed=42, scale=1.0)
    bundled = {p.relative_to(REPO_ROOT / "sample_feeds") for p in (REPO_ROOT / "sample_feeds").rglob("*")
               if p.is_file() and p.name != "README.md"}
    assert bundled == {p.relative_to(tmp_path) for p in written}
    for path in written:
        target = REPO_ROOT / "sample_feeds" / path.relative_to(tmp_path)
        assert filecmp.cmp(path, target, shallow=False), f"{target} differs from `knowdo synth --seed 42`"


def test_generator_is_deterministic_and_seed_sensitive(tmp_path):
    a = write_sample_feeds(tmp_path / "a", seed=7, scale=0.2)
    b = write_sample_feeds(tmp_path / "b", seed=7, scale=0.2)
    c = write_sample_feeds(tmp_path / "c", seed=8, scale=0.2)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_registry_maps_every_code_each_sample_ministry_sends():
    registry = load_registry(REPO_ROOT / "feeds" / "registry.yml")
    for country in BEING_COUNTRIES:
        expected = dhis2.registry_entry(country)
        feed = registry[expected["id"]]
        assert feed.mapping == expected["mapping"]
        assert (feed.publisher_kind, feed.domain, feed.country_code) == ("ministry", "service_use", country.iso3)


def test_registry_errors_name_the_feed_and_field(tmp_path):
    bad = tmp_path / "r.yml"
    bad.write_text("feeds:\n  - id: x\n    publisher: {name: P, kind: bank}\n    domain: funding\n"
                   "    format: dhis2-json\n    source: {folder: a}\n")
    with pytest.raises(RegistryError, match="feed 'x': publisher kind 'bank'"):
        load_registry(bad)
    bad.write_text("feeds:\n  - id: y\n    publisher: {name: P, kind: ngo}\n    domain: funding\n"
                   "    format: nope\n    source: {folder: a}\n")
    with pytest.raises(RegistryError, match="feed 'y': unknown format 'nope'"):
        load_registry(bad)
