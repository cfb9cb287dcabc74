"""Settings of the running platform, read only from environment variables.

Every setting has a default for the local stack (infra/local/env.sh sets the same ones); production
points the same code elsewhere by setting the variables (README: "Production deployment").
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


DBT_EXECUTION_MODES = ("watcher", "local")


def _dbt_execution_mode() -> str:
    mode = _env("KNOWDO_DBT_EXECUTION_MODE", "watcher").strip().lower()
    if mode not in DBT_EXECUTION_MODES:
        raise ValueError(
            f"KNOWDO_DBT_EXECUTION_MODE={mode!r} is not one of {', '.join(DBT_EXECUTION_MODES)}: "
            "'watcher' runs dbt once per transform run (one sensor task per model), 'local' runs one "
            "dbt process per model"
        )
    return mode


@dataclass(frozen=True)
class Settings:
    home: Path
    local_dir: Path
    landing_dir: Path
    inbox_dir: Path
    feeds_file: Path
    warehouse_url: str
    transformer_url: str
    gx_dir: Path
    gx_docs_dir: Path
    gx_warehouse_url: str
    dbt_project_dir: Path
    dbt_executable: Path
    # how the transform DAG runs dbt (dags/knowdo_transform.py): "watcher" (one `dbt build`, one
    # sensor task per model) or "local" (one dbt process per model, the pre-issue-14 mode)
    dbt_execution_mode: str
    airflow_url: str
    airflow_user: str
    airflow_password: str
    superset_url: str

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(_env("KNOWDO_HOME", str(REPO_ROOT)))
        local = Path(_env("KNOWDO_LOCAL_DIR", str(home / ".local")))
        host = _env("KNOWDO_PG_HOST", "127.0.0.1")
        port = _env("KNOWDO_PG_PORT", "55432")
        db = _env("KNOWDO_WAREHOUSE_DB", "warehouse")
        loader_pw = _env("KNOWDO_LOADER_PASSWORD", "knowdo-loader-local")
        transformer_pw = _env("KNOWDO_TRANSFORMER_PASSWORD", "knowdo-transformer-local")
        return cls(
            home=home,
            local_dir=local,
            landing_dir=Path(_env("KNOWDO_LANDING_DIR", str(local / "landing"))),
            inbox_dir=Path(_env("KNOWDO_INBOX_DIR", str(home / "sample_feeds"))),
            feeds_file=Path(_env("KNOWDO_FEEDS_FILE", str(home / "feeds" / "registry.yml"))),
            warehouse_url=_env(
                "KNOWDO_WAREHOUSE_URL",
                f"postgresql://knowdo_loader:{loader_pw}@{host}:{port}/{db}",
            ),
            transformer_url=_env(
                "KNOWDO_TRANSFORMER_URL",
                f"postgresql://knowdo_transformer:{transformer_pw}@{host}:{port}/{db}",
            ),
            gx_dir=Path(_env("KNOWDO_GX_DIR", str(home / "expectations"))),
            gx_docs_dir=Path(_env("KNOWDO_GX_DOCS_DIR", str(local / "gx" / "data_docs"))),
            gx_warehouse_url=_env(
                "KNOWDO_GX_WAREHOUSE_URL",
                f"postgresql+psycopg2://knowdo_transformer:{transformer_pw}@{host}:{port}/{db}",
            ),
            dbt_project_dir=Path(_env("KNOWDO_DBT_PROJECT_DIR", str(home / "dbt_project"))),
            dbt_executable=Path(
                _env("KNOWDO_DBT_EXECUTABLE", str(home / ".venvs" / "dbt" / "bin" / "dbt"))
            ),
            dbt_execution_mode=_dbt_execution_mode(),
            airflow_url=_env("KNOWDO_AIRFLOW_URL", "http://127.0.0.1:8080"),
            airflow_user=_env("KNOWDO_AIRFLOW_ADMIN_USER", "admin"),
            airflow_password=_env("KNOWDO_AIRFLOW_ADMIN_PASSWORD", "admin"),
            superset_url=_env("KNOWDO_SUPERSET_URL", "http://127.0.0.1:8088"),
        )
