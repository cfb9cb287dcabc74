"""The layering rules of dbt-project-evaluator, as checks over the parsed manifest.

dbt-project-evaluator itself is a dbt package from the dbt hub, which this platform cannot reach
(PyPI, Debian and npm only), so its main rules are restated here: names by layer, staging reads
only sources, marts never read sources, every model documented and tested on its grain, every
source fresh, public marts with enforced contracts. `dbt docs generate` must work too.
"""

import json
from pathlib import Path

import pytest

LAYERS = {
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts": ("fct_", "dim_", "mart_"),
    "restricted": ("restricted_",),
}


@pytest.fixture(scope="module")
def manifest(run_dbt, dbt_env):
    result = run_dbt("parse")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((Path(dbt_env["DBT_TARGET_PATH"]) / "manifest.json").read_text())


def models(manifest):
    return {
        n["name"]: n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "model" and n["package_name"] == "knowdo"
    }


def layer(node) -> str:
    return node["original_file_path"].split("/")[1]


def test_model_names_follow_their_layer(manifest):
    for name, node in models(manifest).items():
        prefixes = LAYERS.get(layer(node))
        assert prefixes is not None, f"{name}: unknown folder {node['original_file_path']}"
        assert name.startswith(prefixes), f"{name} in {layer(node)} should start with {prefixes}"


def test_staging_reads_sources_only_and_marts_never_read_sources(manifest):
    for name, node in models(manifest).items():
        upstream = node["depends_on"]["nodes"]
        if layer(node) == "staging":
            assert all(u.startswith("source.") for u in upstream), f"{name} reads {upstream}"
        if layer(node) == "marts":
            assert not any(u.startswith("source.") for u in upstream), (
                f"{name} reads a source directly"
            )


def test_every_model_is_documented(manifest):
    for name, node in models(manifest).items():
        assert node["description"].strip(), f"{name} has no description"
        undocumented = [
            c for c, col in node["columns"].items() if not col.get("description", "").strip()
        ]
        assert not undocumented, f"{name}: columns without description: {undocumented}"


def test_every_model_has_a_uniqueness_test(manifest):
    tested = {}
    for test in manifest["nodes"].values():
        if test["resource_type"] != "test":
            continue
        kind = (test.get("test_metadata") or {}).get("name", "")
        if kind in ("unique", "unique_combination_of_columns"):
            for parent in test["depends_on"]["nodes"]:
                tested.setdefault(parent, set()).add(kind)
    for node_id, node in manifest["nodes"].items():
        if node["resource_type"] == "model" and node["package_name"] == "knowdo":
            assert tested.get(node_id), f"{node['name']} has no unique test on its grain"


def test_every_source_declares_freshness(manifest):
    for source in manifest["sources"].values():
        freshness = source.get("freshness") or {}
        assert freshness.get("warn_after", {}).get("count") or freshness.get("error_after", {}).get(
            "count"
        ), f"source {source['source_name']}.{source['name']} declares no freshness"


def test_public_marts_have_enforced_contracts(manifest):
    for name, node in models(manifest).items():
        if layer(node) == "marts":
            assert node.get("access") == "public", f"{name} is a mart but not access: public"
            assert node["config"]["contract"]["enforced"], f"{name} has no enforced contract"


def test_dbt_docs_generate(run_dbt):
    result = run_dbt("docs", "generate")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
