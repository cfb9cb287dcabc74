import filecmp

import pytest

from knowdo.checking import check_file
from knowdo.config import REPO_ROOT
from knowdo.contracts import load_codelists
from knowdo.formats import FORMATS
from knowdo.registry import RegistryError, load_registry
from knowdo.synth import arc, dhis2, mhsds, templates, write_sample_feeds
from knowdo.synth.geography import ARC_AREAS, BEING_COUNTRIES, ETHNIC_GROUPS, ETHNIC_GROUPS_DETAILED

SAMPLE_FEEDS = REPO_ROOT / "sample_feeds"


def test_bundled_sample_feeds_are_what_the_generator_writes(tmp_path):
    written = write_sample_feeds(tmp_path, seed=42, scale=1.0)
    bundled = {
        p.relative_to(REPO_ROOT / "sample_feeds")
        for p in (REPO_ROOT / "sample_feeds").rglob("*")
        if p.is_file() and p.name != "README.md"
    }
    assert bundled == {p.relative_to(tmp_path) for p in written}
    for path in written:
        target = REPO_ROOT / "sample_feeds" / path.relative_to(tmp_path)
        assert filecmp.cmp(path, target, shallow=False), (
            f"{target} differs from `knowdo synth --seed 42`"
        )


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
        assert (feed.publisher_kind, feed.domain, feed.country_code) == (
            "ministry",
            "service_use",
            country.iso3,
        )


def test_sample_feeds_hold_a_file_of_every_format_each_read_by_a_registered_feed():
    registry = load_registry(REPO_ROOT / "feeds" / "registry.yml")
    files_by_format: dict[str, list] = {name: [] for name in FORMATS}
    for feed in registry.values():
        folder = SAMPLE_FEEDS / feed.source["folder"]
        files_by_format[feed.format] += sorted(folder.glob(feed.source.get("glob", "*")))
    assert [name for name, files in files_by_format.items() if not files] == []
    # the two formats the generator gained: Vietnam's DHIS2 CSV export and MHSDS monthly
    assert files_by_format["dhis2-csv"][0].name == "vnm_mh_service_use_2021.csv"
    assert len(files_by_format["mhsds-csv"]) == len(mhsds.MONTHS)


def test_registry_reads_vietnams_ministry_as_dhis2_csv_and_every_arc_programme_file():
    registry = load_registry(REPO_ROOT / "feeds" / "registry.yml")
    vietnam = next(c for c in BEING_COUNTRIES if c.iso3 == "VNM")
    assert registry[dhis2.feed_id(vietnam)].format == "dhis2-csv"
    arc_names = {code: name for code, name, _icb, _icb_name, _pop in ARC_AREAS}
    for arc_code, intervention, *_rest in arc.PROGRAMMES:
        expected = arc.registry_entry(arc_code, intervention, arc_names[arc_code])
        feed = registry[expected["id"]]
        assert (feed.publisher_kind, feed.domain, feed.format, feed.country_code) == (
            "arc",
            "service_use",
            "knowdo-ngo-service-use-csv",
            "GBR",
        )
        assert feed.source == expected["source"]
    assert registry["mhsds_arcs"].format == "mhsds-csv"


@pytest.mark.parametrize(
    "relative, fmt",
    [
        ("mhsds/mhsds_monthly_2024-04.csv", "mhsds-csv"),
        ("arc/arc_greater_manchester_alcohol_assertive_outreach.csv", "knowdo-ngo-service-use-csv"),
        ("arc/arc_east_of_england_parent_led_cbt.csv", "knowdo-ngo-service-use-csv"),
    ],
)
def test_new_sample_files_parse_without_rejections(relative, fmt):
    report = check_file(SAMPLE_FEEDS / relative, fmt)
    assert report["rows_read"] > 0 and report["rows_rejected"] == 0, report["errors"]


def test_mhsds_sample_suppresses_small_icb_counts_and_keeps_england_exact():
    text = (SAMPLE_FEEDS / "mhsds" / "mhsds_monthly_2024-04.csv").read_text(encoding="utf-8")
    lines = text.splitlines()[1:]
    icb_values = [line.rsplit(",", 1)[1] for line in lines if ",England," not in line]
    england_values = [line.rsplit(",", 1)[1] for line in lines if ",England,England," in line]
    assert "*" in icb_values
    assert all(v == "*" or int(v) % 5 == 0 for v in icb_values)
    assert england_values and any(int(v) % 5 for v in england_values)


def test_registry_errors_name_the_feed_and_field(tmp_path):
    bad = tmp_path / "r.yml"
    bad.write_text(
        "feeds:\n  - id: x\n    publisher: {name: P, kind: bank}\n    domain: funding\n"
        "    format: dhis2-json\n    source: {folder: a}\n"
    )
    with pytest.raises(RegistryError, match="feed 'x': publisher kind 'bank'"):
        load_registry(bad)
    bad.write_text(
        "feeds:\n  - id: y\n    publisher: {name: P, kind: ngo}\n    domain: funding\n"
        "    format: nope\n    source: {folder: a}\n"
    )
    with pytest.raises(RegistryError, match="feed 'y': unknown format 'nope'"):
        load_registry(bad)


def test_detailed_ethnic_groups_split_each_high_level_group_exactly():
    """ONS 2021 detailed groups (population contract 1.1.0): England's shares add up to the
    high-level shares, and a high-level count is split into whole persons that add up to it."""
    detailed_codes = load_codelists()["stratifier_groups"].codes_by["ethnicity_detailed"]
    assert {code for code, _parent, _pct in ETHNIC_GROUPS_DETAILED} == detailed_codes - {
        "not_stated"
    }
    for _label, group, share, _access in ETHNIC_GROUPS:
        within = [pct for _code, parent, pct in ETHNIC_GROUPS_DETAILED if parent == group]
        assert sum(within) == pytest.approx(100 * share, abs=0.05), group
        for people in (0, 1, 7, 2_345, 181_004):
            split = templates.detailed_ethnic_split(group, people)
            assert sum(n for _code, n in split) == people and all(n > 0 for _code, n in split)
    white = dict(templates.detailed_ethnic_split("white", 81_000))
    assert white["white_british"] == 73_500 and white["white_other"] == 6_300


def test_icb_population_gets_a_detailed_ethnicity_set_when_switched_on(tmp_path, monkeypatch):
    monkeypatch.setattr(templates, "ICB_DETAILED_ETHNICITY", True)
    written = templates.write_population(tmp_path, None, 1.0)
    icb_file = next(p for p in written if p.name == "england_icb_population.csv")
    rows = [line.split(",") for line in icb_file.read_text().splitlines()[1:]]
    high, detailed = {}, {}
    parent = {code: group for code, group, _pct in ETHNIC_GROUPS_DETAILED}
    for geography, year, sex, band, ethnicity, _imd, population, *_source in rows:
        if ethnicity in parent:
            key = (geography, year, sex, band, parent[ethnicity])
            detailed[key] = detailed.get(key, 0) + int(population)
        elif ethnicity:
            high[geography, year, sex, band, ethnicity] = int(population)
    assert detailed == high and len(high) == 15 * 5 * 2 * 3 * 5
    report = check_file(icb_file, "knowdo-population-csv")
    assert report["rows_read"] == len(rows) and report["rows_rejected"] == 0, report["errors"]
