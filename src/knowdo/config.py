"""Settings of the running platform, read only from environment variables.

Every setting has a default for the local stack (infra/local/env.sh sets the same ones); production
points the same code elsewhere by setting the variables (README: "Production deployment").
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


# --- issue 13: bounds on what one file may make a parser do (every one a setting) ---------------
@dataclass(frozen=True)
class Limits:
    """Bounds every parser works within, so that no file can hurt the platform. A file beyond a
    file-level bound fails alone with a reason naming the bound and its setting; a row with a field
    over `max_field_chars` is rejected with a reason and the rest of the file loads."""

    max_field_chars: int = (
        100_000  # one value (a cell, a JSON string, an XML text): longer = row rejected
    )
    max_record_bytes: int = (
        16 * 1024 * 1024
    )  # one delimited record or JSON token: longer = file failed
    max_columns: int = 1_000  # header cells of a delimited file
    max_json_depth: int = 64  # nesting of JSON arrays and objects (DHIS2 needs 3, 360Giving ~6)
    max_json_number_chars: int = 400  # a JSON number's characters (a 5 MB number crashes yajl)
    # XML: libxml2's own bounds without huge_tree (256 levels, 10 MB text or attribute) apply to
    # IATI as they are; they are not settings because lxml does not take other values.
    max_memory_mb: int = (
        768  # address space a parse may add to its process (RLIMIT_AS of the child)
    )
    parse_stall_s: int = 300  # a parse that yields nothing for this long is stopped
    isolate: bool = True  # parse in a child process under the memory ceiling

    @classmethod
    def from_env(cls) -> Limits:
        def number(name: str, default: int) -> int:
            text = _env(name, str(default))
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"{name} must be a whole number, not {text!r}") from None
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
            return value

        d = cls()
        return cls(
            max_field_chars=number("KNOWDO_MAX_FIELD_CHARS", d.max_field_chars),
            max_record_bytes=number("KNOWDO_MAX_RECORD_BYTES", d.max_record_bytes),
            max_columns=number("KNOWDO_MAX_COLUMNS", d.max_columns),
            max_json_depth=number("KNOWDO_MAX_JSON_DEPTH", d.max_json_depth),
            max_json_number_chars=number("KNOWDO_MAX_JSON_NUMBER_CHARS", d.max_json_number_chars),
            max_memory_mb=number("KNOWDO_PARSE_MEMORY_MB", d.max_memory_mb),
            parse_stall_s=number("KNOWDO_PARSE_STALL_S", d.parse_stall_s),
            isolate=_env("KNOWDO_PARSE_ISOLATION", "on").lower() not in ("off", "0", "false", "no"),
        )


# --- end issue 13 -----------------------------------------------------------------------------


def _positive_number(name: str, default: float) -> float:
    text = _env(name, str(default))
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be positive, not {text!r}")
    return value


# --- issue 14 item 7: the alert notifiers (knowdo.alerts), read here like every other setting ---
@dataclass(frozen=True)
class AlertSettings:
    """Where alerts go besides the log. Which notifiers are asked for and whether each has what it
    needs is checked by knowdo.alerts when it builds them (a misconfigured notifier falls back to
    the log there, so an alert is never lost to a typo); here only the values are read."""

    notifiers: tuple[str, ...] = ("log",)  # KNOWDO_ALERT_NOTIFIERS: comma-separated, lower-cased
    smtp_host: str = ""  # KNOWDO_ALERT_SMTP_HOST
    smtp_port: int = 25  # KNOWDO_ALERT_SMTP_PORT
    smtp_user: str = ""  # KNOWDO_ALERT_SMTP_USER
    smtp_password: str = field(default="", repr=False)  # KNOWDO_ALERT_SMTP_PASSWORD
    smtp_starttls: bool = False  # KNOWDO_ALERT_SMTP_STARTTLS: 1/true/yes
    email_from: str = "knowdo-alerts@localhost"  # KNOWDO_ALERT_EMAIL_FROM
    email_to: tuple[str, ...] = ()  # KNOWDO_ALERT_EMAIL_TO: comma-separated
    slack_webhook_url: str = field(default="", repr=False)  # KNOWDO_ALERT_SLACK_WEBHOOK_URL

    @classmethod
    def from_env(cls) -> AlertSettings:
        def listed(name: str, default: str, lower: bool = False) -> tuple[str, ...]:
            items = (i.strip() for i in _env(name, default).split(","))
            return tuple(dict.fromkeys(i.lower() if lower else i for i in items if i))

        port_text = _env("KNOWDO_ALERT_SMTP_PORT", "25")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(
                f"KNOWDO_ALERT_SMTP_PORT must be a whole number, not {port_text!r}"
            ) from None
        if not 0 < port < 65536:
            raise ValueError(f"KNOWDO_ALERT_SMTP_PORT must be a port (1-65535), not {port}")
        return cls(
            notifiers=listed("KNOWDO_ALERT_NOTIFIERS", "log", lower=True),
            smtp_host=_env("KNOWDO_ALERT_SMTP_HOST", ""),
            smtp_port=port,
            smtp_user=_env("KNOWDO_ALERT_SMTP_USER", ""),
            smtp_password=_env("KNOWDO_ALERT_SMTP_PASSWORD", ""),
            smtp_starttls=_env("KNOWDO_ALERT_SMTP_STARTTLS", "0").strip().lower()
            in ("1", "true", "yes"),
            email_from=_env("KNOWDO_ALERT_EMAIL_FROM", cls.email_from),
            email_to=listed("KNOWDO_ALERT_EMAIL_TO", ""),
            slack_webhook_url=_env("KNOWDO_ALERT_SLACK_WEBHOOK_URL", ""),
        )


# --- end issue 14 item 7 ----------------------------------------------------------------------


DBT_EXECUTION_MODES = ("watcher", "local")


def _dbt_execution_mode() -> str:
    mode = _env("KNOWDO_DBT_EXECUTION_MODE", "watcher").strip().lower()
    if mode not in DBT_EXECUTION_MODES:
        raise ValueError(
            f"KNOWDO_DBT_EXECUTION_MODE={mode!r} is not one of {', '.join(DBT_EXECUTION_MODES)}: "
            "'watcher' runs dbt once per transform run (one sensor task per model), 'local' runs"
            " one dbt process per model"
        )
    return mode


@dataclass(frozen=True)
class Settings:
    home: Path
    local_dir: Path
    landing_dir: Path
    inbox_dir: Path
    feeds_file: Path
    contracts_dir: Path  # the template contracts (feeds/contracts), beside the registry
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
    limits: Limits  # issue 13
    # --- issue 14: settings read elsewhere before, now here like the rest --------------------
    mode: str = "local"  # KNOWDO_MODE: "local" (demo logins, local defaults) or "production"
    copy_format: str = ""  # KNOWDO_COPY_FORMAT: the loader's COPY format ("" = binary; loading.py)
    watchdog_interval_s: float = 30.0  # KNOWDO_WATCHDOG_INTERVAL: seconds between checks
    stall_minutes: float = 10.0  # KNOWDO_STALL_MINUTES: a run with no progress this long alerts
    task_retry_delay_s: float = 30.0  # KNOWDO_TASK_RETRY_DELAY: seconds between a task's retries
    pg_host: str = "127.0.0.1"  # KNOWDO_PG_HOST, KNOWDO_PG_PORT, KNOWDO_WAREHOUSE_DB: the warehouse
    pg_port: str = "55432"  # as Superset's database connection names it (superset_api)
    warehouse_db: str = "warehouse"
    superset_admin_user: str = "admin"  # KNOWDO_SUPERSET_ADMIN_USER / _PASSWORD: the REST client
    superset_admin_password: str = field(default="", repr=False)
    superset_db_password: str = field(default="", repr=False)  # KNOWDO_SUPERSET_DB_PASSWORD
    # KNOWDO_ALERT_REPEAT_HOURS: feed health does not repeat the same alert within this many hours
    alert_repeat_hours: float = 24.0
    # row-level security (knowdo.row_security): KNOWDO_VIEWER_ROLE_SECRET derives the viewer
    # roles' passwords (the local default is refused outside local mode); the viewer roles' limits
    viewer_role_secret: str = field(default="", repr=False)
    viewer_statement_timeout: str = "30s"  # KNOWDO_VIEWER_STATEMENT_TIMEOUT
    viewer_idle_in_transaction_timeout: str = "30s"  # KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT
    viewer_connection_limit: str = "20"  # KNOWDO_VIEWER_CONNECTION_LIMIT
    # KNOWDO_DEMO_USER_PASSWORD: the local demo users' password (knowdo.superset_access)
    demo_user_password: str = field(default="", repr=False)
    alerts: AlertSettings = field(default_factory=AlertSettings)  # KNOWDO_ALERT_* (knowdo.alerts)

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
            contracts_dir=home / "feeds" / "contracts",
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
            limits=Limits.from_env(),
            mode=_env("KNOWDO_MODE", "local"),
            copy_format=_env("KNOWDO_COPY_FORMAT", ""),
            watchdog_interval_s=_positive_number("KNOWDO_WATCHDOG_INTERVAL", 30.0),
            stall_minutes=_positive_number("KNOWDO_STALL_MINUTES", 10.0),
            task_retry_delay_s=_positive_number("KNOWDO_TASK_RETRY_DELAY", 30.0),
            pg_host=host,
            pg_port=port,
            warehouse_db=db,
            superset_admin_user=_env("KNOWDO_SUPERSET_ADMIN_USER", "admin"),
            superset_admin_password=_env("KNOWDO_SUPERSET_ADMIN_PASSWORD", ""),
            superset_db_password=_env("KNOWDO_SUPERSET_DB_PASSWORD", ""),
            alert_repeat_hours=_positive_number("KNOWDO_ALERT_REPEAT_HOURS", 24.0),
            viewer_role_secret=_env("KNOWDO_VIEWER_ROLE_SECRET", ""),
            viewer_statement_timeout=_env("KNOWDO_VIEWER_STATEMENT_TIMEOUT", "30s"),
            viewer_idle_in_transaction_timeout=_env(
                "KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT", "30s"
            ),
            viewer_connection_limit=_env("KNOWDO_VIEWER_CONNECTION_LIMIT", "20"),
            demo_user_password=_env("KNOWDO_DEMO_USER_PASSWORD", ""),
            alerts=AlertSettings.from_env(),
        )
