"""The bad-input corpus (issue 13): each file fails, has rows rejected or is accepted exactly as its
manifest entry says, with the reason given, as `knowdo check` reads it (in a child process under
the memory ceiling). Large files are generated here, never committed."""

from __future__ import annotations

import pytest

from tests.helpers.badinputs import CORPUS, GENERATORS, load_manifest, materialise, outcome

ENTRIES = load_manifest()


def _id(entry: dict) -> str:
    return f"{entry.get('file') or entry['generate']}-{entry['format']}"


def test_the_corpus_has_at_least_40_files_and_each_is_in_the_manifest():
    committed = {p.name for p in CORPUS.iterdir() if p.name != "manifest.yml"}
    listed = {e["file"] for e in ENTRIES if "file" in e}
    generated = {e["generate"] for e in ENTRIES if "generate" in e}
    assert committed == listed, (
        f"not in the manifest: {committed - listed}; missing: {listed - committed}"
    )
    assert generated <= set(GENERATORS)
    assert len(committed) + len(generated) >= 40
    assert all(e["status"] in ("failed", "rejected", "valid") for e in ENTRIES)
    assert all(e["status"] == "valid" or e.get("reason") for e in ENTRIES)


@pytest.mark.parametrize("entry", ENTRIES, ids=_id)
def test_each_bad_input_has_its_expected_outcome(entry, tmp_path):
    path = materialise(entry, tmp_path)
    status, reason = outcome(path, entry["format"], entry.get("feed"))
    assert status == entry["status"], f"{path.name}: {status}: {reason}"
    assert entry.get("reason", "") in reason
    assert "Traceback" not in reason and "\n" not in reason.strip()
