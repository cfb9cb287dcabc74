#!/usr/bin/env bash
# Local KnowDo stack: environments, PostgreSQL cluster, Airflow and Superset processes.
#   stack.sh setup    idempotent: uv, environments, PostgreSQL, databases, roles, metadata, admin users
#   stack.sh start    start PostgreSQL, Airflow (api-server, scheduler, dag-processor, triggerer), Superset
#   stack.sh stop     stop exactly what start started (PID files under .local/run)
#   stack.sh status   say what runs
set -euo pipefail
# shellcheck source=infra/local/env.sh
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
# issue 11: what the stack writes (password files, logs, landing zone, caches) is its owner's alone;
# system packages are installed with the usual umask (their files are for every user)
umask 077
sys_apt_get() { (umask 022; DEBIAN_FRONTEND=noninteractive apt-get "$@"); }

RUN_DIR="$KNOWDO_LOCAL_DIR/run"
LOG_DIR="$KNOWDO_LOCAL_DIR/log"
STAMP_DIR="$KNOWDO_LOCAL_DIR/stamps"
VENV="$KNOWDO_HOME/.venv"

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
info() { printf '    %s\n' "$*"; }
die() { printf '\033[31mknowdo: %s\033[0m\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
# PostgreSQL refuses to run as root: the cluster belongs to `postgres` when we are root.
pg_user() { if is_root; then echo postgres; else id -un; fi; }
as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }

lock_hash() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

# --- uv and Python environments ----------------------------------------------------------------
ensure_uv() {
  if command -v uv >/dev/null 2>&1; then UV=$(command -v uv); return; fi
  if [ -x "$HOME/.local/bin/uv" ]; then UV="$HOME/.local/bin/uv"; return; fi
  step "installing uv (pip --user)"
  "$KNOWDO_PYTHON" -m pip install --quiet --user uv 2>/dev/null \
    || "$KNOWDO_PYTHON" -m pip install --quiet uv \
    || die "could not install uv with pip: install it (https://docs.astral.sh/uv/) and rerun"
  UV=$(command -v uv || echo "$HOME/.local/bin/uv")
  [ -x "$UV" ] || die "uv was installed but is not on PATH: add \$HOME/.local/bin to PATH and rerun"
}

ensure_python() {
  command -v "$KNOWDO_PYTHON" >/dev/null 2>&1 \
    || die "$KNOWDO_PYTHON not found: install Python 3.11 (Debian: apt-get install python3.11 python3.11-venv) or set KNOWDO_PYTHON"
}

sync_lockfile_env() { # name venv lockfile
  local name=$1 venv=$2 lock=$3 stamp
  stamp="$STAMP_DIR/venv-$name-$(lock_hash "$lock")"
  if [ -f "$stamp" ] && [ -x "$venv/bin/python" ]; then info "$name environment up to date"; return; fi
  step "creating the $name environment from ${lock#"$KNOWDO_HOME"/}"
  [ -x "$venv/bin/python" ] || "$UV" venv --quiet --python "$KNOWDO_PYTHON" "$venv"
  "$UV" pip sync --quiet --python "$venv/bin/python" --compile-bytecode "$lock"
  rm -f "$STAMP_DIR/venv-$name-"*; touch "$stamp"
}

ensure_envs() {
  mkdir -p "$STAMP_DIR"
  local stamp; stamp="$STAMP_DIR/venv-main-$(lock_hash "$KNOWDO_HOME/uv.lock" "$KNOWDO_HOME/pyproject.toml")"
  if [ -f "$stamp" ] && [ -x "$VENV/bin/knowdo" ]; then info "main environment up to date"
  else
    step "creating the main environment (.venv) from uv.lock"
    (cd "$KNOWDO_HOME" && "$UV" sync --quiet --frozen --python "$KNOWDO_PYTHON" --compile-bytecode)
    rm -f "$STAMP_DIR/venv-main-"*; touch "$stamp"
  fi
  sync_lockfile_env dbt "$KNOWDO_DBT_VENV" "$KNOWDO_HOME/infra/requirements/dbt.lock.txt"
  sync_lockfile_env superset "$KNOWDO_SUPERSET_VENV" "$KNOWDO_HOME/infra/requirements/superset.lock.txt"
}

# --- PostgreSQL ---------------------------------------------------------------------------------
find_pg_bin() {
  local d
  if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
    PG_BIN=$(pg_config --bindir); return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$d/initdb" ]; then PG_BIN=$d; return 0; fi
  done
  return 1
}

ensure_pg_binaries() {
  find_pg_bin && return
  if is_root && command -v apt-get >/dev/null 2>&1; then
    step "installing PostgreSQL from the system packages (apt-get install postgresql)"
    sys_apt_get update -qq >/dev/null
    sys_apt_get install -y -qq postgresql >/dev/null \
      || die "apt-get install postgresql failed: install it yourself and rerun 'make setup'"
    find_pg_bin || die "postgresql installed but initdb not found under /usr/lib/postgresql/*/bin"
  else
    die "PostgreSQL server binaries (initdb, pg_ctl) are missing: run 'sudo apt-get install postgresql' and rerun 'make setup'"
  fi
}

port_owner() { # port -> "pid/name" of a listener, empty when free
  local port=$1
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -1
  fi
}
port_taken() {
  "$KNOWDO_PYTHON" - "$1" <<'PY'
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT left by a stopped server is not "taken"
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)
PY
}
die_port() { # port what envvar
  local who; who=$(port_owner "$1")
  die "port $1 (for $2) is already taken${who:+ by $who}: stop that process or set $3 to a free port (in .env), then rerun 'make up'"
}

pg_running() { [ -f "$KNOWDO_PG_DATA/postmaster.pid" ] && as_pg "$PG_BIN/pg_ctl" -D "$KNOWDO_PG_DATA" status >/dev/null 2>&1; }

init_cluster() {
  local pg_dir; pg_dir=$(dirname "$KNOWDO_PG_DATA")
  if [ -d "$KNOWDO_PG_DATA" ] && [ ! -f "$KNOWDO_PG_DATA/PG_VERSION" ]; then
    # initdb writes PG_VERSION last: without it the folder is a half-initialised leftover and holds no data.
    info "removing a half-initialised cluster left by an interrupted run ($KNOWDO_PG_DATA)"
    rm -rf "$KNOWDO_PG_DATA"
  fi
  mkdir -p "$pg_dir" "$KNOWDO_PG_SOCKET_DIR" "$LOG_DIR"
  # the cluster's owner (`postgres` when root) may pass through .local and the log folder, never list them
  if is_root; then chown "$(pg_user)" "$pg_dir" "$KNOWDO_PG_SOCKET_DIR"; chmod 0711 "$KNOWDO_LOCAL_DIR" "$LOG_DIR"; fi
  # issue 11: only the cluster's owner may reach its socket (the socket itself is 0700 too, see start_pg);
  # folders chosen outside .local (KNOWDO_PG_DATA, KNOWDO_PG_SOCKET_DIR) are the deployer's to set
  local d; for d in "$pg_dir" "$KNOWDO_PG_SOCKET_DIR"; do case "$d" in "$KNOWDO_LOCAL_DIR"/*) chmod 0700 "$d" ;; esac; done
  if [ ! -f "$KNOWDO_PG_DATA/PG_VERSION" ]; then
    step "initialising the PostgreSQL cluster in ${KNOWDO_PG_DATA#"$KNOWDO_HOME"/}"
    as_pg "$PG_BIN/initdb" -D "$KNOWDO_PG_DATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >"$LOG_DIR/initdb.log" 2>&1 \
      || die "initdb failed (see $LOG_DIR/initdb.log); fix the cause and rerun 'make setup'"
  fi
  write_pg_hba
}

# --- the cluster is closed (issue 11) --------------------------------------------------------------
# Local socket: only the OS user that owns the cluster, as the superuser `postgres` (peer through the
# ident map knowdo_owner), in a socket folder only that user may enter. TCP: scram-sha-256 for every
# role, never the superuser. Written on every start, so a cluster made by an older version (trust on
# the socket) is closed too; a running cluster reloads when the files changed.
write_pg_hba() {
  local owner hba ident changed=0
  owner=$(pg_user)
  hba="# Written by infra/local/stack.sh on every setup and start: edits here are overwritten.
# TYPE  DATABASE  USER      ADDRESS  METHOD
local   all       postgres           peer map=knowdo_owner
local   all       all                reject
host    all       postgres  all      reject
host    all       all       all      scram-sha-256"
  ident="# Written by infra/local/stack.sh: the OS user that owns the cluster is its superuser.
# MAPNAME       SYSTEM-USERNAME  PG-USERNAME
knowdo_owner    $owner    postgres"
  if [ "$(as_pg cat "$KNOWDO_PG_DATA/pg_hba.conf")" != "$hba" ]; then
    printf '%s\n' "$hba" | as_pg tee "$KNOWDO_PG_DATA/pg_hba.conf" >/dev/null; changed=1
  fi
  if [ "$(as_pg cat "$KNOWDO_PG_DATA/pg_ident.conf")" != "$ident" ]; then
    printf '%s\n' "$ident" | as_pg tee "$KNOWDO_PG_DATA/pg_ident.conf" >/dev/null; changed=1
  fi
  as_pg chmod 0600 "$KNOWDO_PG_DATA/pg_hba.conf" "$KNOWDO_PG_DATA/pg_ident.conf"
  if [ "$changed" = 1 ] && pg_running; then
    info "PostgreSQL client authentication rewritten (peer on the socket, scram-sha-256 on TCP): reloading"
    as_pg "$PG_BIN/pg_ctl" -D "$KNOWDO_PG_DATA" reload >/dev/null
  fi
}

start_pg() {
  ensure_pg_binaries
  init_cluster
  if pg_running; then info "PostgreSQL already running on $KNOWDO_PG_HOST:$KNOWDO_PG_PORT"; return; fi
  port_taken "$KNOWDO_PG_PORT" && die_port "$KNOWDO_PG_PORT" PostgreSQL KNOWDO_PG_PORT
  step "starting PostgreSQL on $KNOWDO_PG_HOST:$KNOWDO_PG_PORT"
  if is_root; then touch "$LOG_DIR/postgres.log"; chown "$(pg_user)" "$LOG_DIR/postgres.log"; fi
  as_pg "$PG_BIN/pg_ctl" -D "$KNOWDO_PG_DATA" -l "$LOG_DIR/postgres.log" -w -t 60 \
    -o "-p $KNOWDO_PG_PORT -k $KNOWDO_PG_SOCKET_DIR -c unix_socket_permissions=0700 -c listen_addresses=$KNOWDO_PG_HOST -c max_connections=200" \
    start >/dev/null || die "PostgreSQL did not start: see $LOG_DIR/postgres.log"
}

psql_admin() { PGOPTIONS='-c client_min_messages=warning' as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$KNOWDO_PG_SOCKET_DIR" -p "$KNOWDO_PG_PORT" -U postgres "$@"; }

ensure_databases() {
  step "databases, schemas and roles"
  psql_admin -d postgres -v airflow_pw="$KNOWDO_AIRFLOW_META_PASSWORD" -v superset_pw="$KNOWDO_SUPERSET_META_PASSWORD" <<'SQL' >/dev/null
select format('create role %I login', r) from unnest(array['airflow', 'superset']) as r
where not exists (select 1 from pg_roles where rolname = r) \gexec
alter role airflow with login password :'airflow_pw';
alter role superset with login password :'superset_pw';
SQL
  local db owner
  for pair in "$KNOWDO_WAREHOUSE_DB:postgres" airflow:airflow superset:superset; do
    db=${pair%%:*}; owner=${pair##*:}
    if [ -z "$(psql_admin -d postgres -tAc "select 1 from pg_database where datname = '$db'")" ]; then
      psql_admin -d postgres -c "create database \"$db\" owner \"$owner\"" >/dev/null
    fi
  done
  # issue 11: PUBLIC may not connect to (or make temporary tables in) any database but as granted
  psql_admin -d postgres <"$KNOWDO_HOME/infra/sql/cluster_init.sql" >/dev/null
  local limit
  for limit in KNOWDO_VIEWER_CONNECTION_LIMIT KNOWDO_ANALYST_CONNECTION_LIMIT; do
    [[ "${!limit}" =~ ^[0-9]+$ ]] || die "$limit must be a whole number of connections (it is '${!limit}'): fix it in .env"
  done
  psql_admin -d "$KNOWDO_WAREHOUSE_DB" -v warehouse_db="$KNOWDO_WAREHOUSE_DB" \
    -v loader_pw="$KNOWDO_LOADER_PASSWORD" -v transformer_pw="$KNOWDO_TRANSFORMER_PASSWORD" \
    -v analyst_pw="$KNOWDO_ANALYST_PASSWORD" -v superset_pw="$KNOWDO_SUPERSET_DB_PASSWORD" \
    -v viewer_statement_timeout="$KNOWDO_VIEWER_STATEMENT_TIMEOUT" \
    -v viewer_idle_in_transaction_timeout="$KNOWDO_VIEWER_IDLE_IN_TRANSACTION_TIMEOUT" \
    -v viewer_connection_limit="$KNOWDO_VIEWER_CONNECTION_LIMIT" \
    -v analyst_statement_timeout="$KNOWDO_ANALYST_STATEMENT_TIMEOUT" \
    -v analyst_idle_in_transaction_timeout="$KNOWDO_ANALYST_IDLE_IN_TRANSACTION_TIMEOUT" \
    -v analyst_connection_limit="$KNOWDO_ANALYST_CONNECTION_LIMIT" \
    -f "$KNOWDO_HOME/infra/sql/warehouse_init.sql" >/dev/null
  # --- row-level security (issue 11): viewers' database roles from superset/access.yml, their
  # policies on every mart (src/knowdo/row_security.py); generated SQL, run as the superuser
  "$VENV/bin/knowdo" row-security sql | psql_admin -d "$KNOWDO_WAREHOUSE_DB" >/dev/null \
    || die "setting up the viewers' row-level security failed (see the message above)"
  # --- end row-level security
  "$VENV/bin/knowdo" db migrate >/dev/null
}

# --- Airflow and Superset metadata ---------------------------------------------------------------
migrate_airflow() {
  local stamp; stamp="$STAMP_DIR/airflow-db-$(lock_hash "$KNOWDO_HOME/uv.lock")"
  mkdir -p "$AIRFLOW_HOME"
  if [ ! -f "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]; then
    printf '{"admin": "%s"}\n' "$KNOWDO_AIRFLOW_ADMIN_PASSWORD" >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"
  fi
  chmod 0600 "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"  # issue 11
  if [ -f "$stamp" ]; then info "Airflow metadata up to date"; return; fi
  step "migrating Airflow metadata (airflow db migrate)"
  "$VENV/bin/airflow" db migrate >"$LOG_DIR/airflow-migrate.log" 2>&1 \
    || die "airflow db migrate failed: see $LOG_DIR/airflow-migrate.log"
  rm -f "$STAMP_DIR/airflow-db-"*; touch "$stamp"
}

superset_cli() { "$KNOWDO_SUPERSET_VENV/bin/superset" "$@"; }

migrate_superset() {
  local stamp; stamp="$STAMP_DIR/superset-db-$(lock_hash "$KNOWDO_HOME/infra/requirements/superset.lock.txt" "$SUPERSET_CONFIG_PATH")"
  mkdir -p "$SUPERSET_HOME"
  if [ -f "$stamp" ]; then info "Superset metadata up to date"; return; fi
  step "migrating Superset metadata and creating the admin user (about a minute)"
  {
    superset_cli db upgrade &&
      superset_cli fab create-admin --username "$KNOWDO_SUPERSET_ADMIN_USER" --firstname KnowDo \
        --lastname Admin --email admin@knowdo.local --password "$KNOWDO_SUPERSET_ADMIN_PASSWORD" &&
      superset_cli init
  } >"$LOG_DIR/superset-migrate.log" 2>&1 || die "Superset metadata setup failed: see $LOG_DIR/superset-migrate.log"
  rm -f "$STAMP_DIR/superset-db-"*; touch "$stamp"
}

# --- secret files are their owner's alone (issue 11) -------------------------------------------------
# Password files 0600; the folders holding passwords, rendered profiles, raw feed files and logs 0700
# (.local itself and the log folder 0711 when root, so the cluster's owner can reach its own files).
# Run on every setup and start, so files made by an older version (0644) are closed too.
close_local_files() {
  local d f
  for d in "$AIRFLOW_HOME" "$AIRFLOW__COSMOS__CACHE_DIR" "$SUPERSET_HOME" "$KNOWDO_LANDING_DIR" "$RUN_DIR" \
    "$STAMP_DIR" "$KNOWDO_LOCAL_DIR/dbt" "$KNOWDO_LOCAL_DIR/gx" "$KNOWDO_LOCAL_DIR/downloads" \
    "$KNOWDO_LOCAL_DIR/artifacts" "$KNOWDO_LOCAL_DIR/bench"; do
    case "$d" in "$KNOWDO_LOCAL_DIR"/*) mkdir -p "$d"; chmod 0700 "$d" ;; esac
  done
  if is_root; then chmod 0711 "$KNOWDO_LOCAL_DIR" "$LOG_DIR"; else chmod 0700 "$KNOWDO_LOCAL_DIR" "$LOG_DIR"; fi
  for f in "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" "$AIRFLOW_HOME"/*.json "$AIRFLOW_HOME"/*.cfg \
    "$KNOWDO_HOME/.env" "$LOG_DIR"/*; do
    if [ -f "$f" ] && [ ! -L "$f" ]; then chmod go-rwx "$f"; fi
  done
}

cmd_setup() {
  mkdir -p "$KNOWDO_LOCAL_DIR" "$RUN_DIR" "$LOG_DIR" "$STAMP_DIR" "$KNOWDO_LANDING_DIR"
  close_local_files
  ensure_python
  ensure_uv
  ensure_envs
  start_pg
  ensure_databases
  migrate_airflow
  if [ "$KNOWDO_START_SUPERSET" != 0 ]; then migrate_superset; fi  # issue 12: an Airflow-only stack
  step "setup complete"
}

# --- processes: supervised by supervisord (issue 12) -----------------------------------------------
# supervisord (PyPI `supervisor`, in the main environment) runs every long-running service of the stack
# and restarts one that exits, with backoff: after a PostgreSQL outage Airflow's services exit and come
# back by themselves. Its config is generated here under .local/supervisor (0600), it listens on a unix
# socket in .local/run (0700 folder, socket 0700) and never on TCP. Each service runs through
# run-service.sh (records its process group, ends leftovers of an earlier instance) in a process group
# of its own; stopasgroup/killasgroup end the scheduler's LocalExecutor workers and gunicorn's workers with it.
# PostgreSQL stays under pg_ctl: the postmaster is its own supervisor (it restarts crashed backends
# itself), pg_ctl's start/stop/-w are what its docs and every packaging use, and the stack must reach the
# database before supervisord's programs can run at all (setup, migrations, `make up`'s checks).
SUP_DIR="$KNOWDO_LOCAL_DIR/supervisor"
SUP_CONF="$SUP_DIR/supervisord.conf"
SUP_SOCK="$RUN_DIR/supervisor.sock"
SUP_PID="$RUN_DIR/supervisord.pid"
AIRFLOW_PROCS="airflow-api-server airflow-scheduler airflow-dag-processor airflow-triggerer"
# Superset is started by `start` unless KNOWDO_START_SUPERSET=0 (Airflow alone, e.g. the fault tests'
# scratch stack: setup then skips Superset's metadata too)
: "${KNOWDO_START_SUPERSET:=1}"
# a restarted service must run this long to count as started; one that exits sooner is retried after
# 1, 2, 3 ... s (supervisord's backoff), STARTRETRIES times: 40 tries ride out ~15 minutes of outage
: "${KNOWDO_SUPERVISOR_STARTSECS:=10}"
: "${KNOWDO_SUPERVISOR_STARTRETRIES:=40}"

supervisorctl() { "$VENV/bin/supervisorctl" -c "$SUP_CONF" "$@"; }
supervisord_running() { # alive (not a zombie left by a kill -9) with its socket
  local pid; pid=$(cat "$SUP_PID" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -S "$SUP_SOCK" ] && [ -n "$(ps -o stat= -p "$pid" 2>/dev/null | grep -v '^Z')" ]
}
program_state() { { supervisorctl status "$1" 2>/dev/null || true; } | awk '{print $2}'; }  # RUNNING, STARTING, BACKOFF, ...
program_running() { supervisord_running && [ "$(program_state "$1")" = RUNNING ]; }

sup_program() { # name command...
  local name=$1; shift
  cat <<EOF

[program:$name]
command=$KNOWDO_HOME/infra/local/run-service.sh $name $*
directory=$KNOWDO_HOME
autostart=false
autorestart=true
startsecs=$KNOWDO_SUPERVISOR_STARTSECS
startretries=$KNOWDO_SUPERVISOR_STARTRETRIES
stopsignal=TERM
stopwaitsecs=30
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile=$LOG_DIR/$name.log
stdout_logfile_maxbytes=50MB
stdout_logfile_backups=3
EOF
}

# issue 11: the scheduler and triggerer run without log servers (--skip-serve-logs): they bind every
# interface and Airflow 3.3 has no host setting. With the LocalExecutor the api-server reads task logs
# from the same log folder the workers write.
write_supervisor_conf() {
  mkdir -p "$SUP_DIR"; chmod 0700 "$SUP_DIR"
  local conf
  conf="; Written by infra/local/stack.sh on every start: edits here are overwritten.
[unix_http_server]
file=$SUP_SOCK
chmod=0700

[supervisord]
logfile=$LOG_DIR/supervisord.log
logfile_maxbytes=10MB
logfile_backups=2
pidfile=$SUP_PID
childlogdir=$LOG_DIR
umask=077
identifier=knowdo-$(printf '%s' "$KNOWDO_LOCAL_DIR" | sha256sum | cut -c1-8)

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://$SUP_SOCK
$(sup_program airflow-api-server "$VENV/bin/airflow" api-server --port "$KNOWDO_AIRFLOW_PORT" --host 127.0.0.1)
$(sup_program airflow-scheduler "$VENV/bin/airflow" scheduler --skip-serve-logs)
$(sup_program airflow-dag-processor "$VENV/bin/airflow" dag-processor)
$(sup_program airflow-triggerer "$VENV/bin/airflow" triggerer --skip-serve-logs)
$(sup_program superset "$KNOWDO_SUPERSET_VENV/bin/gunicorn" --bind "127.0.0.1:$KNOWDO_SUPERSET_PORT" \
    --workers 2 --worker-class gthread --threads 4 --timeout 120 --limit-request-line 0 \
    --limit-request-field_size 0 '"superset.app:create_app()"')
$(sup_program knowdo-watchdog "$VENV/bin/knowdo" watchdog)"
  if [ ! -f "$SUP_CONF" ] || [ "$(cat "$SUP_CONF")" != "$conf" ]; then
    printf '%s\n' "$conf" >"$SUP_CONF"; SUP_CONF_CHANGED=1
  else SUP_CONF_CHANGED=0; fi
  chmod 0600 "$SUP_CONF"
}

# The services inherit supervisord's environment (env.sh and .env): a supervisord started with another
# one is restarted, so a changed setting reaches every service.
# --- issue 12: only the settings the services read count ------------------------------------------
# Every AIRFLOW* variable (Airflow reads AIRFLOW__<SECTION>__<KEY>, AIRFLOW_CONN_*, AIRFLOW_HOME), and
# the KNOWDO_/SUPERSET_/DBT_/GX_ names that the services' code (src, dags, superset, dbt_project), env.sh
# or .env.example mention. A variable only a caller uses (a test's KNOWDO_FUZZ_EXAMPLES, a psql call's
# PGOPTIONS) no longer restarts every service.
stack_setting_names() {
  grep -rhoE '\b(KNOWDO|SUPERSET|DBT|GX)_[A-Z0-9_]+' "$KNOWDO_HOME/src" "$KNOWDO_HOME/dags" \
    "$KNOWDO_HOME/superset" "$KNOWDO_HOME/dbt_project" "$KNOWDO_HOME/infra/local/env.sh" \
    "$KNOWDO_HOME/.env.example" 2>/dev/null | sort -u
}
stack_env_hash() {
  local name
  {
    env | grep -E '^AIRFLOW' || true
    for name in $(stack_setting_names); do
      if [ -n "${!name+x}" ]; then printf '%s=%s\n' "$name" "${!name}"; fi
    done
  } | sort | sha256sum | cut -c1-16
}
# --- end issue 12 settings hash

ensure_supervisord() {
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  write_supervisor_conf
  local env_hash; env_hash=$(stack_env_hash)
  if supervisord_running; then
    if [ "$(cat "$RUN_DIR/supervisord.env" 2>/dev/null)" != "$env_hash" ]; then
      info "the stack's settings changed since supervisord started: restarting it and its services"
      stop_supervisord
    elif [ "$SUP_CONF_CHANGED" = 1 ]; then
      info "supervisord config changed: rereading it (changed programs restart)"
      supervisorctl reread >/dev/null && supervisorctl update >/dev/null
      return
    else
      info "supervisord already running (pid $(cat "$SUP_PID"))"; return
    fi
  fi
  stop_strays  # what an earlier supervisord (killed, or a stack of an older version) left
  info "starting supervisord (config ${SUP_CONF#"$KNOWDO_HOME"/}, log ${LOG_DIR#"$KNOWDO_HOME"/}/supervisord.log)"
  rm -f "$SUP_SOCK" "$RUN_DIR/sessions" "$RUN_DIR/programs"
  "$VENV/bin/supervisord" -c "$SUP_CONF" || die "supervisord did not start: see $LOG_DIR/supervisord.log"
  printf '%s\n' "$env_hash" >"$RUN_DIR/supervisord.env"
  local i; for i in $(seq 1 40); do
    # supervisord leads a session of its own: every process of the stack stays in it (knowdo.stack_processes)
    if supervisord_running; then echo "supervisord $(cat "$SUP_PID")" >>"$RUN_DIR/sessions"; return; fi
    sleep 0.25
  done
  die "supervisord did not open its socket $SUP_SOCK: see $LOG_DIR/supervisord.log"
}

start_program() { # name
  local name=$1 state
  state=$(program_state "$name")
  case "$state" in
    RUNNING|STARTING|BACKOFF) info "$name already ${state,,} (supervisorctl status $name)"; return ;;
  esac
  info "starting $name (log: ${LOG_DIR#"$KNOWDO_HOME"/}/$name.log)"
  # --no-wait isn't in supervisorctl 4: start returns once the program passed startsecs or failed
  supervisorctl start "$name" >/dev/null 2>&1 &
}

stop_strays() {
  [ -x "$VENV/bin/python" ] || return 0
  local found
  found=$("$VENV/bin/knowdo" stack kill-strays) || true
  if [ -n "$found" ]; then info "ended processes of the stack that were not under supervision:"; printf '%s\n' "$found" | sed 's/^/      /'; fi
}

stop_pid_file() { # name: a service started by an older stack.sh (setsid, PID file in .local/run)
  local f="$RUN_DIR/$1.pid" pid i
  [ -f "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    info "stopping $1 (pid $pid, started by an older version of the stack)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

stop_supervisord() {
  if supervisord_running; then
    local pid; pid=$(cat "$SUP_PID")
    info "stopping supervisord (pid $pid) and every service it runs"
    supervisorctl stop all >/dev/null 2>&1 || true
    kill -TERM "$pid" 2>/dev/null || true
    local i; for i in $(seq 1 120); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$SUP_PID" "$SUP_SOCK"
}

wait_http() { # name url seconds
  local name=$1 url=$2 secs=$3 i state started=0
  for i in $(seq 1 "$secs"); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then info "$name answers at $url"; return 0; fi
    state=$(program_state "$name")
    case "$state" in
      STARTING|RUNNING|BACKOFF) started=1 ;;
      FATAL) die "$name exited during start-up (FATAL): see $LOG_DIR/$name.log" ;;
      # start_program's `supervisorctl start` runs in the background: until supervisord has taken it,
      # the program is still STOPPED (CI lost that race on a fresh supervisord). STOPPED or EXITED is
      # an exit only after the program was seen starting, or when it never started within 30 s.
      EXITED|STOPPED)
        if [ "$started" = 1 ] || [ "$i" -gt 30 ]; then
          die "$name exited during start-up ($state): see $LOG_DIR/$name.log"
        fi ;;
    esac
    sleep 1
  done
  die "$name did not answer at $url within ${secs}s: see $LOG_DIR/$name.log"
}

# Every port the stack will bind is checked before anything starts (issue 12: a taken Superset port
# used to stop `make up` only after Airflow had started). A port held by the stack's own running
# service is not "taken".
check_ports() {
  if ! pg_running; then
    port_taken "$KNOWDO_PG_PORT" && die_port "$KNOWDO_PG_PORT" PostgreSQL KNOWDO_PG_PORT
  fi
  if ! program_running airflow-api-server; then
    port_taken "$KNOWDO_AIRFLOW_PORT" && die_port "$KNOWDO_AIRFLOW_PORT" airflow-api-server KNOWDO_AIRFLOW_PORT
  fi
  if [ "$KNOWDO_START_SUPERSET" != 0 ] && ! program_running superset; then
    port_taken "$KNOWDO_SUPERSET_PORT" && die_port "$KNOWDO_SUPERSET_PORT" superset KNOWDO_SUPERSET_PORT
  fi
  # issue 12: Airflow's log-server ports (env.sh, per stack). No service of the stack binds them
  # (--skip-serve-logs), so a listener there is someone else's: the api-server would ask it for logs.
  port_taken "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" \
    && die_port "$AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT" "Airflow's worker log server" KNOWDO_AIRFLOW_WORKER_LOG_PORT
  port_taken "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" \
    && die_port "$AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT" "Airflow's triggerer log server" KNOWDO_AIRFLOW_TRIGGER_LOG_PORT
  return 0
}

cmd_start() {
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  close_local_files
  find_pg_bin || die "PostgreSQL binaries missing: run 'make setup'"
  local name  # services of an older version of the stack (PID files) are restarted under supervision
  for name in $AIRFLOW_PROCS superset; do stop_pid_file "$name"; done
  # without a live supervisord, the stack's processes still running (its supervisord was killed) are
  # ended first: they hold the stack's own ports
  supervisord_running || stop_strays
  check_ports
  start_pg
  ensure_supervisord
  render_manifest  # issue 14
  local p
  step "starting Airflow on $KNOWDO_AIRFLOW_URL"
  for p in $AIRFLOW_PROCS; do start_program "$p"; done
  if [ "$KNOWDO_START_SUPERSET" != 0 ]; then step "starting Superset on $KNOWDO_SUPERSET_URL"; start_program superset; fi
  start_program knowdo-watchdog
  wait_http airflow-api-server "$KNOWDO_AIRFLOW_URL/api/v2/monitor/health" 120
  if [ "$KNOWDO_START_SUPERSET" != 0 ]; then wait_http superset "$KNOWDO_SUPERSET_URL/health" 180; fi
  wait  # the background `supervisorctl start` calls
}

# --- issue 14: restart Airflow alone (bench/transform --dag); the manifest the transform DAG renders from
# Restarts Airflow's four processes with the caller's environment (e.g.
# KNOWDO_DBT_EXECUTION_MODE=local|watcher): a changed environment restarts supervisord (and stops
# Superset, which is not started again here: `stack.sh start` does), an unchanged one restarts the
# Airflow programs.
restart_airflow() {
  local p
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  find_pg_bin || die "PostgreSQL binaries missing: run 'make setup'"
  start_pg
  render_manifest
  ensure_supervisord
  step "starting Airflow on $KNOWDO_AIRFLOW_URL (dbt execution mode: ${KNOWDO_DBT_EXECUTION_MODE:-watcher})"
  for p in $AIRFLOW_PROCS; do
    if program_running "$p"; then supervisorctl restart "$p" >/dev/null 2>&1 & else start_program "$p"; fi
  done
  wait
  wait_http airflow-api-server "$KNOWDO_AIRFLOW_URL/api/v2/monitor/health" 120
}

# dags/knowdo_transform.py renders its tasks from this manifest (cosmos LoadMode.DBT_MANIFEST) instead
# of running `dbt ls` in every parse of the DAG file (each task's process parses it). Rebuilt by
# `dbt parse` (no database needed) when missing or older than a file of the dbt project; the DAG
# falls back to `dbt ls` while it is stale.
render_manifest() {
  local dir="$KNOWDO_LOCAL_DIR/dbt/render"
  if [ -f "$dir/manifest.json" ] && [ -z "$(find "$KNOWDO_HOME/dbt_project" -type f \
      \( -name '*.sql' -o -name '*.yml' -o -name '*.yaml' -o -name '*.csv' -o -name '*.md' -o -name '*.py' \) \
      ! -name '.*' -newer "$dir/manifest.json" -print -quit)" ]; then
    return
  fi
  info "dbt parse: the manifest the transform DAG renders from (${dir#"$KNOWDO_HOME"/}/manifest.json)"
  mkdir -p "$dir"
  # parsed into dbt's own target path ($DBT_TARGET_PATH), so the first dbt of the first run finds a
  # current partial_parse.msgpack there (a full parse is ~12 s of CPU), then copied: the DAG reads
  # a manifest no dbt run rewrites
  # (`--profile`/`--target` as the DAG's dbt runs pass them: they are part of dbt's partial-parse check)
  (cd "$KNOWDO_HOME/dbt_project" && "$KNOWDO_DBT_VENV/bin/dbt" parse --quiet --profile knowdo --target local) \
    || die "dbt parse failed: the transform DAG needs a parsable dbt project (dbt_project/)"
  cp "$DBT_TARGET_PATH/manifest.json" "$dir/manifest.json.new" && mv "$dir/manifest.json.new" "$dir/manifest.json"
}
# --- end issue 14 --------------------------------------------------------------------------------

ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then return; fi
  if is_root && command -v apt-get >/dev/null 2>&1; then
    step "installing headless Chromium for the browser tests (apt-get install chromium chromium-driver)"
    sys_apt_get update -qq >/dev/null
    sys_apt_get install -y -qq chromium chromium-driver >/dev/null \
      || die "apt-get install chromium chromium-driver failed: install them and rerun 'make test'"
  else
    die "Chromium is missing for the browser tests: run 'sudo apt-get install chromium chromium-driver'"
  fi
}

start_superset() {
  find_pg_bin || die "PostgreSQL binaries missing: run 'make setup'"
  # Already up and answering: leave the stack as it is. (ensure_supervisord restarts every service
  # when the caller's environment differs from the one supervisord started with; a caller that only
  # needs Superset, e.g. a test, must not restart what is running, nor race that restart.)
  if program_running superset && curl -fsS -o /dev/null "$KNOWDO_SUPERSET_URL/health" 2>/dev/null; then
    info "Superset already answers at $KNOWDO_SUPERSET_URL"; return 0
  fi
  if ! program_running superset; then
    port_taken "$KNOWDO_SUPERSET_PORT" && die_port "$KNOWDO_SUPERSET_PORT" superset KNOWDO_SUPERSET_PORT
  fi
  start_pg
  ensure_supervisord
  start_program superset
  wait_http superset "$KNOWDO_SUPERSET_URL/health" 180
  wait
}

cmd_stop() {
  step "stopping the KnowDo stack"
  stop_supervisord
  stop_strays
  rm -f "$RUN_DIR/sessions" "$RUN_DIR/programs"
  local name  # a stack started by an older version (PID files, one process group per service)
  for name in $AIRFLOW_PROCS superset; do stop_pid_file "$name"; done
  if find_pg_bin && pg_running; then
    info "stopping PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$KNOWDO_PG_DATA" -m fast -w stop >/dev/null
  fi
}

cmd_status() {
  if find_pg_bin && pg_running; then printf '%-32s %-9s %s\n' postgres RUNNING "$KNOWDO_PG_HOST:$KNOWDO_PG_PORT (pg_ctl, ${KNOWDO_PG_DATA#"$KNOWDO_HOME"/})"
  else printf '%-32s %s\n' postgres STOPPED; fi
  if supervisord_running; then
    supervisorctl status || true  # exit 3 when a program is not running: still a status
  else
    echo "supervisord            STOPPED (no service of the stack is supervised; 'make up' starts them)"
  fi
  local strays=""
  [ -x "$VENV/bin/knowdo" ] && strays=$("$VENV/bin/knowdo" stack strays)
  if [ -n "$strays" ]; then
    echo
    echo "Processes of the stack NOT under supervision (left by a killed service or a killed supervisord):"
    printf '%s\n' "$strays" | sed 's/^/  /' 
    echo "  End them with 'make down' (or: kill <pid>); the next start of the same service ends them too."
  fi
  echo "Airflow  $KNOWDO_AIRFLOW_URL   Superset  $KNOWDO_SUPERSET_URL   logs  ${LOG_DIR#"$KNOWDO_HOME"/}/"
}

case "${1:-}" in
  setup) cmd_setup ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  start-pg) ensure_pg_binaries; start_pg ;;
  stop-pg) if find_pg_bin && pg_running; then as_pg "$PG_BIN/pg_ctl" -D "$KNOWDO_PG_DATA" -m fast -w stop >/dev/null; fi ;;  # issue 12: the fault tests' outage
  start-superset) start_superset ;;
  ensure-browser) ensure_browser ;;
  restart-airflow) restart_airflow ;;  # issue 14
  init-db) ensure_pg_binaries; start_pg; ensure_databases ;;  # (re)create KNOWDO_WAREHOUSE_DB, roles, grants, loader tables
  *) echo "usage: $0 setup|start|stop|status" >&2; exit 2 ;;
esac
