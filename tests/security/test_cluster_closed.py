"""The local cluster is closed (issue 11, "The local cluster is closed" and finding 4/6/7).

Attacks tried as a local OS user and as the warehouse's reader roles, against the project's own
cluster (the ports and folders in infra/local/env.sh):
  * another OS user (`nobody`) or root uses the socket as the superuser; the superuser or any role
    connects over TCP without the right password;
  * pg_hba.conf trusts anyone; a cluster made by an older version (trust on the socket, a socket
    folder everyone may enter) stays open after the next start;
  * password and secret files, logs or raw feed files are readable by other OS users;
  * a service of the stack listens on every interface (Airflow's log servers on 0.0.0.0:8793/8794);
  * PUBLIC connects to, or makes temporary tables in, the airflow, superset or postgres databases;
  * a reader's query or open transaction runs without limit, or a reader opens unlimited
    connections.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

import psycopg
import pytest
from psycopg import errors, sql

from tests.conftest import REPO, STACK
from tests.helpers.cluster_admin import (
    IS_ROOT,
    SOCKET_DIR,
    admin_sql,
    pg_bin,
    psql_socket,
    role_statement_timeout,
)

pytestmark = pytest.mark.integration

ENV = os.environ
LOCAL = Path(ENV["KNOWDO_LOCAL_DIR"])
PG_DATA = Path(ENV.get("KNOWDO_PG_DATA") or LOCAL / "pg" / "data")
PG_HOST, PG_PORT = ENV["KNOWDO_PG_HOST"], ENV["KNOWDO_PG_PORT"]
WAREHOUSE = ENV["KNOWDO_WAREHOUSE_DB"]
# the cluster belongs to `postgres` when the stack runs as root, to the current user otherwise
CLUSTER_OWNER = "postgres" if IS_ROOT else pwd.getpwuid(os.geteuid()).pw_name

# every login role of the stack with the setting holding its password (infra/local/env.sh)
ROLE_PASSWORDS = {
    "knowdo_loader": "KNOWDO_LOADER_PASSWORD",
    "knowdo_transformer": "KNOWDO_TRANSFORMER_PASSWORD",
    "knowdo_analyst": "KNOWDO_ANALYST_PASSWORD",
    "knowdo_superset": "KNOWDO_SUPERSET_DB_PASSWORD",
    "airflow": "KNOWDO_AIRFLOW_META_PASSWORD",
    "superset": "KNOWDO_SUPERSET_META_PASSWORD",
}
ROLE_URLS = {
    "airflow": "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "superset": "KNOWDO_SUPERSET_METADATA_URL",
}
ROLE_DATABASE = {"airflow": "airflow", "superset": "superset"}  # the others log in to the warehouse
# reader role -> the settings of its limits (KNOWDO_<prefix>_STATEMENT_TIMEOUT, ...)
READERS = {"knowdo_superset": "KNOWDO_VIEWER", "knowdo_analyst": "KNOWDO_ANALYST"}


def password(role: str) -> str:
    if role in ROLE_URLS:  # the metadata owners' passwords are in the URLs Airflow and Superset use
        return unquote(urlsplit(ENV[ROLE_URLS[role]]).password or "")
    value = ENV.get(ROLE_PASSWORDS[role])
    if not value:
        pytest.fail(
            f"{ROLE_PASSWORDS[role]} is not set: source infra/local/env.sh (tests/conftest.py does)"
        )
    return value


def connect_tcp(
    role: str, pw: str | None = None, dbname: str | None = None, **kwargs
) -> psycopg.Connection:
    return psycopg.connect(
        host=PG_HOST,
        port=PG_PORT,
        user=role,
        dbname=dbname or ROLE_DATABASE.get(role, WAREHOUSE),
        password=password(role) if pw is None else pw,
        connect_timeout=10,
        **kwargs,
    )


@pytest.fixture(scope="module", autouse=True)
def _cluster(cluster):
    return cluster


# --- the socket ---------------------------------------------------------------------------------
def test_socket_folder_is_the_cluster_owners_alone():
    st = SOCKET_DIR.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700, (
        f"{SOCKET_DIR} has mode {stat.S_IMODE(st.st_mode):o}, not 700"
    )
    assert pwd.getpwuid(st.st_uid).pw_name == CLUSTER_OWNER
    assert any(SOCKET_DIR.glob(".s.PGSQL.*")), (
        "no socket in the socket folder: is the cluster running?"
    )


def test_the_cluster_owner_is_the_superuser_on_the_socket():
    assert (
        admin_sql(
            "select current_user || ' ' || usesuper from pg_user where usename = current_user"
        )
        == "postgres true"
    )


@pytest.mark.skipif(not IS_ROOT, reason="switching to another OS user (runuser) needs root")
@pytest.mark.parametrize("role", ["postgres", "knowdo_analyst", "knowdo_superset"])
def test_another_os_user_cannot_use_the_socket(role):
    done = psql_socket(
        as_user="nobody", query="select rolname, rolpassword from pg_authid", role=role
    )
    assert done.returncode != 0, (
        f"OS user nobody connected as {role} over the socket: {done.stdout[:200]}"
    )
    assert "Permission denied" in done.stderr, done.stderr


@pytest.mark.skipif(not IS_ROOT, reason="only meaningful when the stack runs as root")
def test_root_is_not_the_superuser_without_becoming_the_owner():
    """Root can enter the folder; peer authentication still only maps the cluster's owner."""
    done = psql_socket(as_user=None, query="select 1")
    assert done.returncode != 0
    assert 'Peer authentication failed for user "postgres"' in done.stderr, done.stderr


# --- TCP ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("pw", ["", "postgres", "wrong"])
def test_superuser_is_rejected_over_tcp(pw):
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects connection"):
        psycopg.connect(
            host=PG_HOST,
            port=PG_PORT,
            user="postgres",
            dbname="postgres",
            password=pw,
            connect_timeout=10,
        )


@pytest.mark.parametrize("role", sorted(ROLE_PASSWORDS))
def test_every_role_needs_its_password_over_tcp(role):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        connect_tcp(role, pw=password(role) + "-wrong")
    with pytest.raises(
        psycopg.OperationalError, match="password authentication failed|no password supplied"
    ):
        connect_tcp(role, pw="")
    with connect_tcp(role) as conn:  # and the right one works: the test above is not vacuous
        assert conn.execute("select current_user").fetchone()[0] == role


def test_pg_hba_trusts_nobody():
    text = (PG_DATA / "pg_hba.conf").read_text(encoding="utf-8")
    lines = [
        line.split()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert lines, "pg_hba.conf has no rules"
    assert not [line for line in lines if "trust" in line], f"pg_hba.conf trusts someone: {lines}"
    # what the server has loaded (after the reload), not only the file
    rules = [
        row.split("|")
        for row in admin_sql(
            "select type, array_to_string(database, ','), array_to_string(user_name, ','),"
            " auth_method, coalesce(error, '') from pg_hba_file_rules order by line_number"
        ).splitlines()
    ]
    assert not [r for r in rules if r[4]], f"pg_hba.conf has errors: {rules}"
    for kind, _db, users, method, _ in rules:
        if kind == "local":
            assert method == "reject" or (users == "postgres" and method == "peer"), rules
        else:
            assert method == "scram-sha-256" or (method == "reject"), rules
            assert users != "postgres" or method == "reject", rules
    assert ["host", "all", "postgres", "reject", ""] in rules
    ident = admin_sql(
        "select map_name, sys_name, pg_username from pg_ident_file_mappings where error is null"
    )
    assert ident.splitlines() == [f"knowdo_owner|{CLUSTER_OWNER}|postgres"]


def test_role_passwords_are_scram_hashes():
    weak = admin_sql(
        "select rolname from pg_authid where rolpassword is not null"
        " and rolpassword not like 'SCRAM-SHA-256$%'"
    )
    assert weak == "", f"roles whose password is not a SCRAM-SHA-256 verifier: {weak}"


# --- an older cluster is closed on the next start -------------------------------------------------
OLD_PG_HBA = """local   all             all                                     trust
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             ::1/128                 scram-sha-256
"""


@pytest.mark.skipif(
    not IS_ROOT, reason="showing the old hole needs another OS user (runuser needs root)"
)
def test_a_cluster_made_open_by_an_older_version_is_closed_on_the_next_start():
    local = REPO / ".local" / f"test-closed-{uuid.uuid4().hex[:8]}"
    local.mkdir(parents=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    data, run_dir = local / "pg" / "data", local / "pg" / "run"
    env = {
        **ENV,
        "KNOWDO_LOCAL_DIR": str(local),
        "KNOWDO_PG_PORT": port,
        "KNOWDO_PG_DATA": str(data),
        "KNOWDO_PG_SOCKET_DIR": str(run_dir),
    }

    def stack(*args):
        done = subprocess.run(
            ["bash", str(STACK), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done

    def make_it_old():  # what an older stack.sh left: trust on the socket, a folder everyone enters
        subprocess.run(
            ["runuser", "-u", "postgres", "--", "tee", str(data / "pg_hba.conf")],
            input=OLD_PG_HBA,
            text=True,
            capture_output=True,
            check=True,
        )
        for folder in (local, local / "pg", run_dir):
            folder.chmod(0o755)

    def nobody():
        return psql_socket(
            as_user="nobody", query="select count(*) from pg_authid", socket_dir=run_dir, port=port
        )

    try:
        stack("start-pg")
        stack("stop")
        # a running cluster started the old way: the next start rewrites pg_hba.conf and reloads
        make_it_old()
        subprocess.run(
            [
                "runuser",
                "-u",
                "postgres",
                "--",
                pg_bin("pg_ctl"),
                "-D",
                str(data),
                "-w",
                "-l",
                str(local / "log" / "postgres.log"),
                "-o",
                f"-p {port} -k {run_dir} -c listen_addresses=127.0.0.1",
                "start",
            ],
            capture_output=True,
            check=True,
            cwd="/",
        )
        assert nobody().returncode == 0, "the old state is not open: this test would prove nothing"
        assert "rewritten" in stack("start-pg").stdout
        refused = nobody()
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stdout
        assert "trust" not in (data / "pg_hba.conf").read_text(encoding="utf-8")
        assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
        # a stopped one: rewritten before it starts
        stack("stop")
        make_it_old()
        stack("start-pg")
        assert "trust" not in (data / "pg_hba.conf").read_text(encoding="utf-8")
        assert nobody().returncode != 0
        for folder in (local, local / "pg", run_dir):  # even with the folders opened by hand, the
            folder.chmod(0o755)  # socket itself (0700) refuses nobody
        refused = nobody()
        assert refused.returncode != 0 and "Permission denied" in refused.stderr, refused.stdout
    finally:
        subprocess.run(
            ["bash", str(STACK), "stop"], env=env, capture_output=True, timeout=120, check=False
        )
        shutil.rmtree(local, ignore_errors=True)


# --- files ----------------------------------------------------------------------------------------
def secret_files() -> list[Path]:
    """Files that hold a password or a secret: the Airflow simple-auth passwords, airflow.cfg (its
    generated JWT and API secrets), the cluster's authentication files, and .env when there is
    one."""
    files = [
        Path(ENV["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]),
        Path(ENV["AIRFLOW_HOME"]) / "airflow.cfg",
        PG_DATA / "pg_hba.conf",
        PG_DATA / "pg_ident.conf",
    ]
    return files + [p for p in [REPO / ".env"] if p.exists()]


def test_password_and_secret_files_are_0600():
    modes = {}
    for f in secret_files():
        assert f.is_file(), f"{f} is missing: run `make setup`"
        modes[str(f)] = f"{stat.S_IMODE(f.stat().st_mode):o}"
    assert set(modes.values()) == {"600"}, modes


def test_folders_of_secrets_and_raw_data_are_0700():
    folders = [
        Path(ENV["AIRFLOW_HOME"]),
        Path(ENV["AIRFLOW__COSMOS__CACHE_DIR"]),
        Path(ENV["SUPERSET_HOME"]),
        Path(ENV["KNOWDO_LANDING_DIR"]),
        LOCAL / "dbt",
        PG_DATA,
        SOCKET_DIR,
    ]
    modes = {
        str(d): f"{stat.S_IMODE(d.stat().st_mode):o}" for d in folders if d.is_relative_to(LOCAL)
    }
    assert len(modes) == len(folders), (
        "a folder of the stack is outside KNOWDO_LOCAL_DIR: check by hand"
    )
    assert set(modes.values()) == {"700"}, modes


def test_no_file_under_local_is_readable_by_other_os_users():
    """Walk .local as another OS user would: a file is readable when every folder above it lets
    others pass (o+x) and the file lets others read (o+r)."""
    passable = {LOCAL: bool(LOCAL.stat().st_mode & stat.S_IXOTH)}
    open_files = []
    for root, dirs, files in os.walk(LOCAL):
        here = Path(root)
        if not passable[here]:
            dirs[:] = []  # nobody else gets in here, nor further down
            continue
        for name in dirs:
            passable[here / name] = bool((here / name).stat().st_mode & stat.S_IXOTH)
        for name in files:
            st = (here / name).lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH:
                open_files.append(str((here / name).relative_to(LOCAL)))
    assert not open_files, f"other OS users can read these files under {LOCAL}: {open_files[:20]}"


# --- listening sockets ----------------------------------------------------------------------------
def stack_process_groups() -> dict[int, str]:
    """Process group -> service, for the services supervisord runs (issue 12: each program is the
    leader of a process group of its own; `supervisorctl status` names its pid)."""
    conf = LOCAL / "supervisor" / "supervisord.conf"
    if not conf.exists():
        return {}
    out = subprocess.run(
        [str(REPO / ".venv" / "bin" / "supervisorctl"), "-c", str(conf), "status"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    ).stdout
    running = re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+),", out, re.MULTILINE)
    return {int(pid): name for name, pid in running}


def listeners() -> list[tuple[str, int, int]]:
    """(address, port, pid) of every listening TCP socket of this machine, from `ss`."""
    if not shutil.which("ss"):
        pytest.fail("`ss` (iproute2) is needed to see which addresses the stack listens on")
    out = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        fields = line.split()
        address, _, port = fields[3].rpartition(":")
        for pid in re.findall(r"pid=(\d+)", line):
            found.append((address.strip("[]"), int(port), int(pid)))
    return found


def test_the_stack_listens_on_loopback_only():
    groups = stack_process_groups()
    if not any(name.startswith("airflow-") for name in groups.values()):
        pytest.skip(
            "Airflow is not running (bash infra/local/stack.sh start): its listeners cannot be"
            " checked"
        )
    postmaster = int((PG_DATA / "postmaster.pid").read_text().split()[0])
    ours, wide = [], []
    for address, port, pid in listeners():
        try:
            service = groups.get(os.getpgid(pid)) or ("postgres" if pid == postmaster else None)
        except ProcessLookupError:
            continue
        if service is None:
            continue
        ours.append((service, address, port))
        if address not in ("127.0.0.1", "::1", "localhost"):
            wide.append((service, address, port))
    assert not wide, f"services of the stack listen beyond loopback: {wide}"
    ports = {port for _, _, port in ours}
    # the check saw the stack's own listeners (so it is not vacuous), and no log server among them
    assert {int(PG_PORT), int(ENV["KNOWDO_AIRFLOW_PORT"])} <= ports, ours
    log_ports = {
        int(ENV.get("AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT", 8793)),
        int(ENV.get("AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT", 8794)),
    }
    assert not ports & log_ports, f"an Airflow log server of the stack listens: {ours}"


def test_task_logs_are_still_served_without_log_servers(settings):
    """The api-server reads the log folder the LocalExecutor's workers write: a finished task's log
    comes back through the API with the log servers off."""
    if "airflow-api-server" not in stack_process_groups().values():
        pytest.skip("Airflow is not running (bash infra/local/stack.sh start): no API to ask")
    from knowdo.airflow_api import AirflowClient

    client = AirflowClient(settings.airflow_url, settings.airflow_user, settings.airflow_password)
    # runs of the scheduler's workers only: `airflow dags test` (tests/conftest.py `pipeline_run`)
    # runs tasks in its own process and writes no task log files, so the API has nothing local
    # to serve
    finished = [
        (dag, run["dag_run_id"], ti)
        for dag in ("knowdo_ingest", "knowdo_transform", "knowdo_feed_health")
        if client.dag(dag)
        for run in client.latest_runs(dag, limit=20)
        if run.get("triggered_by") != "test"
        for ti in client.task_instances(dag, run["dag_run_id"])
        if ti["state"] == "success"
    ]
    if not finished:
        pytest.skip(
            "no finished task instance yet (run `make up`): nothing whose log could be read"
        )
    dag, run_id, ti = finished[0]
    path = f"/dags/{dag}/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}"
    if ti.get("map_index", -1) >= 0:
        path += f"?map_index={ti['map_index']}"
    content = client.request("GET", path, headers={"Accept": "application/json"})["content"]
    events = [
        entry.get("event", "") if isinstance(entry, dict) else str(entry) for entry in content
    ]
    assert any(str(LOCAL) in e and e.endswith(".log") for e in events), events[
        :5
    ]  # read from the folder
    assert len(events) > 5, events


# --- databases other than the warehouse -----------------------------------------------------------
def test_public_cannot_connect_to_or_make_temp_tables_in_any_database():
    with connect_tcp("knowdo_loader") as conn:
        rows = conn.execute(
            "select datname, has_database_privilege('public', datname, 'CONNECT'),"
            " has_database_privilege('public', datname, 'TEMP') from pg_database where datallowconn"
        ).fetchall()
    names = {r[0] for r in rows}
    assert {"airflow", "superset", "postgres", "template1", WAREHOUSE} <= names
    assert [r for r in rows if r[1] or r[2]] == [], f"PUBLIC keeps CONNECT/TEMP on: {rows}"


@pytest.mark.parametrize("role", ["knowdo_superset", "knowdo_analyst", "knowdo_loader", "superset"])
@pytest.mark.parametrize("db", ["airflow", "postgres", "template1"])
def test_a_role_cannot_connect_to_another_services_database(role, db):
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        connect_tcp(role, dbname=db)


def test_the_metadata_owners_still_connect():
    for role in ("airflow", "superset"):
        with connect_tcp(role) as conn:
            assert conn.execute("select current_database()").fetchone()[0] == role


# --- reader limits --------------------------------------------------------------------------------
def as_ms(duration: str) -> int:
    """A PostgreSQL duration setting ('30s', '5min', '1500') in milliseconds, parsed by
    PostgreSQL."""
    with connect_tcp("knowdo_loader") as conn, conn.transaction(force_rollback=True):
        conn.execute(sql.SQL("set local statement_timeout = {}").format(sql.Literal(duration)))
        return int(
            conn.execute(
                "select setting from pg_settings where name = 'statement_timeout'"
            ).fetchone()[0]
        )


@pytest.mark.parametrize("role", sorted(READERS))
def test_reader_roles_carry_the_configured_timeouts_and_limit(role):
    prefix = READERS[role]
    want_statement = as_ms(ENV[f"{prefix}_STATEMENT_TIMEOUT"])
    want_idle = as_ms(ENV[f"{prefix}_IDLE_IN_TRANSACTION_TIMEOUT"])
    with connect_tcp(role) as conn:
        got = dict(
            conn.execute(
                "select name, setting::bigint from pg_settings where name in"
                " ('statement_timeout', 'idle_in_transaction_session_timeout')"
            ).fetchall()
        )
        limit = conn.execute(
            "select rolconnlimit from pg_roles where rolname = current_user"
        ).fetchone()[0]
    assert got == {
        "statement_timeout": want_statement,
        "idle_in_transaction_session_timeout": want_idle,
    }
    assert 0 < want_statement and 0 < want_idle
    assert limit == int(ENV[f"{prefix}_CONNECTION_LIMIT"]) and limit > 0
    # viewers: seconds, analysts: minutes
    if role == "knowdo_superset":
        assert want_statement <= 120_000 and want_idle <= 120_000
    else:
        assert want_statement >= 60_000 and want_idle >= 60_000


def test_a_viewer_query_longer_than_the_timeout_is_cancelled():
    """The role's own statement_timeout cancels a longer query, after that time and not before.
    The role's timeout is set to 3s for this test (instead of the configured
    KNOWDO_VIEWER_STATEMENT_TIMEOUT, which test_reader_roles_carry_the_configured_timeouts_and_limit
    asserts), so the test waits 3 seconds rather than 30."""
    short = "3s"
    timeout_s = as_ms(short) / 1000
    with role_statement_timeout("knowdo_superset", short) as configured:
        assert as_ms(configured) == as_ms(ENV["KNOWDO_VIEWER_STATEMENT_TIMEOUT"])
        with connect_tcp("knowdo_superset") as conn:
            started = time.monotonic()
            with pytest.raises(errors.QueryCanceled, match="statement timeout"):
                conn.execute("select pg_sleep(%s)", (timeout_s + 5,))
            elapsed = time.monotonic() - started
    assert timeout_s - 1 <= elapsed <= timeout_s + 4, (
        f"cancelled after {elapsed:.1f}s, timeout {timeout_s}s"
    )


@pytest.mark.parametrize("role", sorted(READERS))
def test_a_reader_cannot_open_more_connections_than_its_limit(role):
    limit = int(ENV[f"{READERS[role]}_CONNECTION_LIMIT"])
    opened, refused = [], None
    try:
        for _ in range(limit + 1):
            try:
                opened.append(connect_tcp(role))
            except psycopg.OperationalError as exc:
                refused = exc
                break
    finally:
        for conn in opened:
            conn.close()
    assert refused is not None, f"{role} opened {len(opened)} connections, limit {limit}"
    assert "too many connections for role" in str(refused)
