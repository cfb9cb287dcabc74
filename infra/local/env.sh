# shellcheck shell=bash
# Environment of the local stack. Sourced by every script under infra/local and by the Makefile.
# Every value is a default: anything already set in the environment (or in .env) wins, so the same
# code points at an existing PostgreSQL, Airflow and Superset in production (README: "Production").

KNOWDO_HOME="${KNOWDO_HOME:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
export KNOWDO_HOME
if [ -f "$KNOWDO_HOME/.env" ]; then
  # .env fills in what the environment does not set: a variable given on the command line (or by a
  # test's scratch stack) wins over the file, as with every other default here
  while IFS= read -r -d '' assignment; do
    key="${assignment%%=*}"
    [ -n "${!key+x}" ] || export "$assignment"
  done < <(bash -c 'set -a; . "$1"; env -0' _ "$KNOWDO_HOME/.env")
  unset assignment key
fi

: "${KNOWDO_LOCAL_DIR:=$KNOWDO_HOME/.local}"
: "${UV_PYTHON_DOWNLOADS:=never}"
: "${KNOWDO_PYTHON:=python3.11}"

# --- PostgreSQL (project-owned cluster on loopback) ---------------------------------------------
: "${KNOWDO_PG_HOST:=127.0.0.1}"
: "${KNOWDO_PG_PORT:=55432}"
: "${KNOWDO_PG_DATA:=$KNOWDO_LOCAL_DIR/pg/data}"
: "${KNOWDO_PG_SOCKET_DIR:=$KNOWDO_LOCAL_DIR/pg/run}"
: "${KNOWDO_WAREHOUSE_DB:=warehouse}"
# Role passwords. The defaults only ever open a cluster bound to 127.0.0.1; set real ones in production.
: "${KNOWDO_LOADER_PASSWORD:=knowdo-loader-local}"
: "${KNOWDO_TRANSFORMER_PASSWORD:=knowdo-transformer-local}"
: "${KNOWDO_ANALYST_PASSWORD:=knowdo-analyst-local}"
: "${KNOWDO_SUPERSET_DB_PASSWORD:=knowdo-superset-local}"
: "${KNOWDO_AIRFLOW_META_PASSWORD:=airflow-meta-local}"
: "${KNOWDO_SUPERSET_META_PASSWORD:=superset-meta-local}"

# --- Landing zone and feeds -----------------------------------------------------------------------
: "${KNOWDO_LANDING_DIR:=$KNOWDO_LOCAL_DIR/landing}"
: "${KNOWDO_INBOX_DIR:=$KNOWDO_HOME/sample_feeds}"
: "${KNOWDO_FEEDS_FILE:=$KNOWDO_HOME/feeds/registry.yml}"
# Loader connection used by `knowdo` and the ingest DAG (libpq URL).
: "${KNOWDO_WAREHOUSE_URL:=postgresql://knowdo_loader:${KNOWDO_LOADER_PASSWORD}@${KNOWDO_PG_HOST}:${KNOWDO_PG_PORT}/${KNOWDO_WAREHOUSE_DB}}"
# --- reader roles' limits (issue 11; infra/sql/warehouse_init.sql) --------------------------------
# Viewers (knowdo_superset and the per-viewer roles): seconds; analysts (knowdo_analyst): minutes.
# Timeouts are PostgreSQL durations ('30s', '5min'); limits are connection counts.
: "${KNOWDO_VIEWER_STATEMENT_TIMEOUT:=30s}"
: "${KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT:=30s}"
: "${KNOWDO_VIEWER_CONNECTION_LIMIT:=20}"
: "${KNOWDO_ANALYST_STATEMENT_TIMEOUT:=5min}"
: "${KNOWDO_ANALYST_IDLE_IN_TRANSACTION_TIMEOUT:=5min}"
: "${KNOWDO_ANALYST_CONNECTION_LIMIT:=10}"
export KNOWDO_VIEWER_STATEMENT_TIMEOUT KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT KNOWDO_VIEWER_CONNECTION_LIMIT \
  KNOWDO_ANALYST_STATEMENT_TIMEOUT KNOWDO_ANALYST_IDLE_IN_TRANSACTION_TIMEOUT KNOWDO_ANALYST_CONNECTION_LIMIT
export KNOWDO_PG_HOST KNOWDO_PG_PORT KNOWDO_WAREHOUSE_DB KNOWDO_LANDING_DIR KNOWDO_INBOX_DIR \
  KNOWDO_FEEDS_FILE KNOWDO_WAREHOUSE_URL KNOWDO_LOCAL_DIR UV_PYTHON_DOWNLOADS \
  KNOWDO_LOADER_PASSWORD KNOWDO_TRANSFORMER_PASSWORD KNOWDO_ANALYST_PASSWORD \
  KNOWDO_SUPERSET_DB_PASSWORD

# --- dbt (profiles.yml reads only env_var()) ------------------------------------------------------
: "${KNOWDO_DBT_VENV:=$KNOWDO_HOME/.venvs/dbt}"
: "${DBT_PROFILES_DIR:=$KNOWDO_HOME/dbt_project}"
: "${DBT_TARGET_PATH:=$KNOWDO_LOCAL_DIR/dbt/target}"
: "${DBT_LOG_PATH:=$KNOWDO_LOCAL_DIR/dbt/logs}"
: "${KNOWDO_DBT_USER:=knowdo_transformer}"
: "${KNOWDO_DBT_PASSWORD:=$KNOWDO_TRANSFORMER_PASSWORD}"
export KNOWDO_DBT_VENV DBT_PROFILES_DIR KNOWDO_DBT_USER KNOWDO_DBT_PASSWORD DBT_TARGET_PATH DBT_LOG_PATH
export DBT_SEND_ANONYMOUS_USAGE_STATS=False DO_NOT_TRACK=1

# --- GX ---------------------------------------------------------------------------------------------
: "${KNOWDO_GX_DIR:=$KNOWDO_HOME/expectations}"
: "${KNOWDO_GX_DOCS_DIR:=$KNOWDO_LOCAL_DIR/gx/data_docs}"
: "${KNOWDO_GX_WAREHOUSE_URL:=postgresql+psycopg2://knowdo_transformer:${KNOWDO_TRANSFORMER_PASSWORD}@${KNOWDO_PG_HOST}:${KNOWDO_PG_PORT}/${KNOWDO_WAREHOUSE_DB}}"
export KNOWDO_GX_DIR KNOWDO_GX_DOCS_DIR KNOWDO_GX_WAREHOUSE_URL
export GX_ANALYTICS_ENABLED=False

# --- Airflow ----------------------------------------------------------------------------------------
: "${AIRFLOW_HOME:=$KNOWDO_LOCAL_DIR/airflow}"
: "${KNOWDO_AIRFLOW_PORT:=8080}"
: "${KNOWDO_AIRFLOW_URL:=http://127.0.0.1:${KNOWDO_AIRFLOW_PORT}}"
: "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:=postgresql+psycopg2://airflow:${KNOWDO_AIRFLOW_META_PASSWORD}@${KNOWDO_PG_HOST}:${KNOWDO_PG_PORT}/airflow}"
: "${AIRFLOW__CORE__DAGS_FOLDER:=$KNOWDO_HOME/dags}"
: "${AIRFLOW__CORE__EXECUTOR:=LocalExecutor}"
: "${AIRFLOW__CORE__PARALLELISM:=4}"
: "${AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG:=4}"
: "${AIRFLOW__CORE__LOAD_EXAMPLES:=False}"
: "${AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION:=False}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:=admin:admin}"
: "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:=$AIRFLOW_HOME/simple_auth_manager_passwords.json}"
: "${AIRFLOW__API__PORT:=$KNOWDO_AIRFLOW_PORT}"
: "${AIRFLOW__API__BASE_URL:=$KNOWDO_AIRFLOW_URL}"
: "${AIRFLOW__CORE__EXECUTION_API_SERVER_URL:=$KNOWDO_AIRFLOW_URL/execution/}"
: "${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:=30}"
: "${AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK:=False}"
: "${AIRFLOW__LOGGING__BASE_LOG_FOLDER:=$KNOWDO_LOCAL_DIR/airflow/logs}"
: "${AIRFLOW__COSMOS__CACHE_DIR:=$KNOWDO_LOCAL_DIR/cosmos}"
: "${AIRFLOW__COSMOS__ENABLE_TELEMETRY:=False}"
export AIRFLOW_HOME KNOWDO_AIRFLOW_PORT KNOWDO_AIRFLOW_URL AIRFLOW__DATABASE__SQL_ALCHEMY_CONN \
  AIRFLOW__CORE__DAGS_FOLDER AIRFLOW__CORE__EXECUTOR AIRFLOW__CORE__PARALLELISM \
  AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG AIRFLOW__CORE__LOAD_EXAMPLES \
  AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS \
  AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE AIRFLOW__API__PORT AIRFLOW__API__BASE_URL \
  AIRFLOW__CORE__EXECUTION_API_SERVER_URL AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL \
  AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK AIRFLOW__LOGGING__BASE_LOG_FOLDER \
  AIRFLOW__COSMOS__CACHE_DIR AIRFLOW__COSMOS__ENABLE_TELEMETRY
# issue 11: task logs (they may quote feed rows) are their owner's alone, not group-writable
: "${AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS:=0o700}"
: "${AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS:=0o600}"
export AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FOLDER_PERMISSIONS AIRFLOW__LOGGING__FILE_TASK_HANDLER_NEW_FILE_PERMISSIONS
# --- issue 14: parsing the DAG files on a loaded 2-core machine ----------------------------------
# Every task's process parses its DAG file; at a load average of ~20 the transform DAG took over
# Airflow's 30 s import timeout (its per-model tasks were rescheduled, parsing again) and the
# dag-processor killed its parse after 50 s (`make up`: "Airflow did not load the DAGs").
: "${AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT:=120}"
: "${AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT:=180}"
export AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT
# --- end issue 14 --------------------------------------------------------------------------------
: "${KNOWDO_AIRFLOW_ADMIN_PASSWORD:=admin}"
export KNOWDO_AIRFLOW_ADMIN_PASSWORD
# --- issue 12: Airflow's log-server ports, per stack ---------------------------------------------
# The scheduler and triggerer run no log server here (--skip-serve-logs, issue 11), but the api-server
# still asks http://<host>:<port> for a running task's log: with Airflow's fixed defaults (8793, 8794)
# two stacks on one machine would ask (and, with log servers on, bind) the same ports. Derived from
# KNOWDO_AIRFLOW_PORT (8080 -> 8793/8794, Airflow's own defaults); `stack.sh start` checks them free.
# (below it, -714 and -713, when the Airflow port is within 714 of the last port, 65535)
if [ "$((KNOWDO_AIRFLOW_PORT + 714))" -le 65535 ]; then _knowdo_log_port=$((KNOWDO_AIRFLOW_PORT + 713))
else _knowdo_log_port=$((KNOWDO_AIRFLOW_PORT - 714)); fi
: "${KNOWDO_AIRFLOW_WORKER_LOG_PORT:=$_knowdo_log_port}"
: "${KNOWDO_AIRFLOW_TRIGGER_LOG_PORT:=$((KNOWDO_AIRFLOW_WORKER_LOG_PORT + 1))}"
unset _knowdo_log_port
: "${AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT:=$KNOWDO_AIRFLOW_WORKER_LOG_PORT}"
: "${AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT:=$KNOWDO_AIRFLOW_TRIGGER_LOG_PORT}"
export KNOWDO_AIRFLOW_WORKER_LOG_PORT KNOWDO_AIRFLOW_TRIGGER_LOG_PORT \
  AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT
# --- end issue 12 log-server ports

# --- Superset ---------------------------------------------------------------------------------------
: "${KNOWDO_SUPERSET_VENV:=$KNOWDO_HOME/.venvs/superset}"
: "${KNOWDO_SUPERSET_PORT:=8088}"
: "${KNOWDO_SUPERSET_URL:=http://127.0.0.1:${KNOWDO_SUPERSET_PORT}}"
: "${SUPERSET_HOME:=$KNOWDO_LOCAL_DIR/superset}"
: "${SUPERSET_CONFIG_PATH:=$KNOWDO_HOME/superset/superset_config.py}"
: "${KNOWDO_SUPERSET_METADATA_URL:=postgresql+psycopg2://superset:${KNOWDO_SUPERSET_META_PASSWORD}@${KNOWDO_PG_HOST}:${KNOWDO_PG_PORT}/superset}"
# Local mode only: a fixed secret key and admin password. Production must set both (the config refuses
# to start outside local mode without them).
: "${KNOWDO_MODE:=local}"
: "${KNOWDO_SUPERSET_SECRET_KEY:=knowdo-local-only-not-a-secret}"
: "${KNOWDO_SUPERSET_ADMIN_USER:=admin}"
: "${KNOWDO_SUPERSET_ADMIN_PASSWORD:=admin}"
# --- row-level security (issue 11): viewers' database passwords are HMAC-SHA256(this, role name);
# Superset refuses to start outside local mode without a real one (src/knowdo/row_security.py)
: "${KNOWDO_VIEWER_ROLE_SECRET:=knowdo-viewer-local-only-not-a-secret}"
export KNOWDO_VIEWER_ROLE_SECRET
# --- end row-level security
# demo users (one per ministry/ARC/funder role and an analyst), created by `make up` in local mode only
: "${KNOWDO_DEMO_USER_PASSWORD:=knowdo-demo}"
export KNOWDO_SUPERSET_VENV KNOWDO_SUPERSET_PORT KNOWDO_SUPERSET_URL SUPERSET_HOME SUPERSET_CONFIG_PATH \
  KNOWDO_SUPERSET_METADATA_URL KNOWDO_MODE KNOWDO_SUPERSET_SECRET_KEY KNOWDO_SUPERSET_ADMIN_USER \
  KNOWDO_SUPERSET_ADMIN_PASSWORD KNOWDO_DEMO_USER_PASSWORD

export PYTHONDONTWRITEBYTECODE="${PYTHONDONTWRITEBYTECODE:-}"
