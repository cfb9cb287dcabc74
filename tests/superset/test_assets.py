"""Guards on the Superset assets as code: no server needed."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from pathlib import Path

import pytest
import yaml

from knowdo.superset_api import BUNDLE_ROOT, DATABASE_FILE, build_bundle, rison, warehouse_uri

ASSETS = Path(__file__).resolve().parents[2] / "superset" / "assets"


def load_all(kind: str) -> dict[Path, dict]:
    return {
        p: yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted(ASSETS.glob(f"{kind}/**/*.yaml"))
    }


def chart_nodes(dashboard: dict) -> list[dict]:
    return [
        node
        for node in dashboard["position"].values()
        if isinstance(node, dict) and node.get("type") == "CHART"
    ]


def test_every_yaml_parses_and_has_a_version():
    files = sorted(ASSETS.rglob("*.yaml"))
    assert files, f"no YAML under {ASSETS}"
    for path in files:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert isinstance(config, dict), path
        assert config.get("version") == "1.0.0", f"{path}: version must be 1.0.0"


def test_bundle_has_every_kind():
    for kind in ("databases", "datasets", "charts", "dashboards"):
        assert load_all(kind), f"no {kind} YAML under {ASSETS}"
    assert (ASSETS / DATABASE_FILE).is_file()


def test_uuids_are_valid_and_unique():
    seen: dict[str, Path] = {}
    for path in sorted(ASSETS.rglob("*.yaml")):
        if path.name == "metadata.yaml":
            continue
        value = yaml.safe_load(path.read_text(encoding="utf-8"))["uuid"]
        uuid.UUID(str(value))
        assert str(value) not in seen, f"{path} reuses the uuid of {seen[str(value)]}"
        seen[str(value)] = path


def test_dataset_database_uuids_exist():
    databases = {str(c["uuid"]) for c in load_all("databases").values()}
    for path, dataset in load_all("datasets").items():
        assert str(dataset["database_uuid"]) in databases, f"{path}: unknown database_uuid"


def test_chart_dataset_uuids_exist_and_query_context_parses():
    datasets = {str(c["uuid"]): c for c in load_all("datasets").values()}
    for path, chart in load_all("charts").items():
        assert str(chart["dataset_uuid"]) in datasets, f"{path}: unknown dataset_uuid"
        assert chart.get("query_context"), (
            f"{path}: query_context missing (chart data API needs it)"
        )
        context = json.loads(chart["query_context"])
        dataset = datasets[str(chart["dataset_uuid"])]
        known = {c["column_name"] for c in dataset["columns"]} | {
            m["metric_name"] for m in dataset.get("metrics") or []
        }
        for query in context["queries"]:
            for name in [c for c in query["columns"] if isinstance(c, str)] + query["metrics"]:
                assert name in known, (
                    f"{path}: {name} is not a column or metric of {dataset['table_name']}"
                )
            for flt in query["filters"]:
                assert flt["col"] in known, f"{path}: filter on unknown column {flt['col']}"


def test_dashboard_chart_nodes_point_at_existing_charts():
    charts = {str(c["uuid"]) for c in load_all("charts").values()}
    dashboards = load_all("dashboards")
    assert dashboards
    for path, dashboard in dashboards.items():
        nodes = chart_nodes(dashboard)
        assert nodes, f"{path}: no CHART node in position"
        for node in nodes:
            meta = node.get("meta", {})
            assert str(meta.get("uuid")) in charts, f"{path}: {node['id']} meta.uuid is not a chart"
            assert isinstance(meta.get("chartId"), int), (
                f"{path}: {node['id']} needs an int meta.chartId"
            )
        # every node a parent lists as child exists
        for key, node in dashboard["position"].items():
            if isinstance(node, dict):
                for child in node.get("children", []):
                    assert child in dashboard["position"], (
                        f"{path}: {key} lists missing child {child}"
                    )


def test_database_yaml_masks_the_password():
    config = yaml.safe_load((ASSETS / DATABASE_FILE).read_text(encoding="utf-8"))
    assert ":XXXXXXXXXX@" in config["sqlalchemy_uri"]
    assert "password" not in config


def test_bundle_substitutes_the_warehouse_location():
    data, names = build_bundle(ASSETS, host="db.example.org", port=6543, database="wh_prod")
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        members = bundle.namelist()
        assert all(m.startswith(f"{BUNDLE_ROOT}/") for m in members)
        assert f"{BUNDLE_ROOT}/metadata.yaml" in members
        database = yaml.safe_load(bundle.read(f"{BUNDLE_ROOT}/{DATABASE_FILE}"))
    assert (
        database["sqlalchemy_uri"]
        == "postgresql+psycopg2://knowdo_superset:XXXXXXXXXX@db.example.org:6543/wh_prod"
    )
    assert DATABASE_FILE in names


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            {"filters": [{"col": "uuid", "opr": "eq", "value": "a-b"}]},
            "(filters:!((col:uuid,opr:eq,value:a-b)))",
        ),
        ("Service use by sex", "'Service use by sex'"),
        ("it's!", "'it!'s!!'"),
        ([True, False, None, 3], "!(!t,!f,!n,3)"),
    ],
)
def test_rison(value, expected):
    assert rison(value) == expected


def test_warehouse_uri_keeps_user_and_driver():
    uri = warehouse_uri(
        "postgresql+psycopg2://u:XXXXXXXXXX@127.0.0.1:55432/warehouse", "h", "1", "d"
    )
    assert uri == "postgresql+psycopg2://u:XXXXXXXXXX@h:1/d"
