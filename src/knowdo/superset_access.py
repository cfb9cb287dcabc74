"""Access as code for Superset: roles, permissions, row-level security and the analyst connection.

Asset exports carry neither roles nor RLS rules, so `superset/access.yml` is applied after every
import of `superset/assets` (`knowdo superset-access apply`). Applying is idempotent: roles
and the analyst database are found by name, datasets by schema and table name (ids change when a
dataset is re-created), RLS rules by their managed name prefix; a rerun updates in place, creates
nothing twice and deletes managed rules the file no longer produces.

The security model (secure by default) is described at the top of superset/access.yml. Talks HTTP
only, through SupersetClient; REST shapes are those of Superset 6.x with FAB_ADD_SECURITY_API.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from knowdo.config import Settings
from knowdo.superset_api import SupersetClient, SupersetError, default_assets_dir, rison

REGULAR = "Regular"
BASE = "Base"
DENY_CLAUSE = "1 = 0"
DEMO_PASSWORD_DEFAULT = "knowdo-demo"
PAGE_SIZE = 100
# Codes end up inside SQL clauses: only plain identifiers, so a typo cannot become SQL.
_SAFE_CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SAFE_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


def default_access_file() -> Path:
    return default_assets_dir().parent / "access.yml"


# --- the access file ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ManagedRole:
    """One viewer role: a ministry, an ARC or a funder, and the code that owns its rows."""

    name: str
    kind: str
    column: str
    code: str
    label: str
    username: str


@dataclass(frozen=True)
class AnalystSpec:
    role: str
    username: str
    base_roles: tuple[str, ...]
    database_name: str
    db_user: str
    password_env: str
    schemas: tuple[str, ...] = ("marts",)


@dataclass(frozen=True)
class AccessSpec:
    rule_prefix: str
    group_key: str
    viewer_base_roles: tuple[str, ...]
    exempt_roles: tuple[str, ...]
    kinds: dict[str, str]  # kind -> owner column
    roles: tuple[ManagedRole, ...]
    analyst: AnalystSpec

    def roles_of(self, kind: str) -> list[ManagedRole]:
        return [r for r in self.roles if r.kind == kind]


def _username(template: str, key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", template.format(key=key).lower()).strip("_")


def load_access(path: Path | str) -> AccessSpec:
    """Read and check access.yml; a mistake is reported as one SupersetError sentence."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SupersetError(f"{path}: cannot read the access file ({exc})") from exc
    try:
        roles = []
        kinds = {}
        for kind, spec in doc["role_kinds"].items():
            column = spec["column"]
            if not _SAFE_COLUMN.match(column):
                raise SupersetError(f"{path}: role kind {kind!r} has an invalid column {column!r}")
            kinds[kind] = column
            for member in spec["members"]:
                code = str(member["code"])
                if not _SAFE_CODE.match(code):
                    raise SupersetError(f"{path}: {kind} code {code!r} is not a plain identifier")
                key = str(member.get("key", code))
                roles.append(
                    ManagedRole(
                        name=spec["role"].format(key=key),
                        kind=kind,
                        column=column,
                        code=code,
                        label=str(member.get("name", code)),
                        username=_username(spec["user"], key),
                    )
                )
        analyst = doc["analyst"]
        spec = AccessSpec(
            rule_prefix=doc["rule_prefix"],
            group_key=doc["group_key"],
            viewer_base_roles=tuple(doc["viewer_base_roles"]),
            exempt_roles=tuple(doc["default_deny"]["exempt_roles"]),
            kinds=kinds,
            roles=tuple(roles),
            analyst=AnalystSpec(
                role=analyst["role"],
                username=analyst["user"],
                base_roles=tuple(analyst["base_roles"]),
                database_name=analyst["database"]["name"],
                db_user=analyst["database"]["db_user"],
                password_env=analyst["database"]["password_env"],
                schemas=tuple(analyst["database"].get("schemas") or ("marts",)),
            ),
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise SupersetError(f"{path}: missing or malformed entry {exc}") from exc
    names = [r.name for r in spec.roles] + [spec.analyst.role]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SupersetError(f"{path}: role names used twice: {', '.join(duplicates)}")
    if not spec.rule_prefix.strip():
        raise SupersetError(f"{path}: rule_prefix must not be empty (it marks managed RLS rules)")
    return spec


# --- the datasets the rules cover ----------------------------------------------------------------
@dataclass(frozen=True)
class AssetDataset:
    database_name: str
    schema: str
    table_name: str
    columns: frozenset[str]

    @property
    def label(self) -> str:
        return f"{self.schema}.{self.table_name}"


def asset_datasets(assets_dir: Path | str) -> list[AssetDataset]:
    """Every dataset in the asset YAML, with its database's name and its column names."""
    assets_dir = Path(assets_dir)
    databases = {}
    for path in sorted(assets_dir.glob("databases/*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        databases[str(doc["uuid"])] = doc["database_name"]
    datasets = []
    for path in sorted(assets_dir.glob("datasets/**/*.y*ml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        database = databases.get(str(doc["database_uuid"]))
        if database is None:
            raise SupersetError(f"{path}: its database_uuid matches no file under databases/")
        datasets.append(
            AssetDataset(
                database_name=database,
                schema=doc.get("schema") or "",
                table_name=doc["table_name"],
                columns=frozenset(c["column_name"] for c in doc.get("columns") or []),
            )
        )
    return datasets


# --- the rules (pure: what should exist, given ids) ---------------------------------------------
@dataclass(frozen=True)
class RuleSpec:
    name: str
    filter_type: str
    table_id: int
    role_names: tuple[str, ...]
    clause: str
    group_key: str
    description: str


def desired_rules(
    spec: AccessSpec, datasets: list[AssetDataset], dataset_ids: dict[str, int]
) -> list[RuleSpec]:
    """The RLS rules access.yml asks for; `dataset_ids` maps AssetDataset.label to Superset's id."""
    rules = []
    managed = tuple(r.name for r in spec.roles)
    for dataset in datasets:
        table_id = dataset_ids[dataset.label]
        prefix = f"{spec.rule_prefix}{dataset.label}: "
        for kind, column in spec.kinds.items():
            members = spec.roles_of(kind)
            if not members:
                continue
            if column in dataset.columns:
                for role in members:
                    rules.append(
                        RuleSpec(
                            name=f"{prefix}{role.name}",
                            filter_type=REGULAR,
                            table_id=table_id,
                            role_names=(role.name,),
                            clause=f"{column} = '{role.code}'",
                            group_key=spec.group_key,
                            description=f"{role.label}: only rows whose {column} is {role.code}",
                        )
                    )
            else:
                rules.append(
                    RuleSpec(
                        name=f"{prefix}deny {kind} (no {column})",
                        filter_type=REGULAR,
                        table_id=table_id,
                        role_names=tuple(r.name for r in members),
                        clause=DENY_CLAUSE,
                        group_key=spec.group_key,
                        description=f"the dataset has no {column}: {kind} roles see no rows",
                    )
                )
        # A Base rule applies to every role *except* those listed: unknown roles see nothing.
        rules.append(
            RuleSpec(
                name=f"{prefix}deny every other role",
                filter_type=BASE,
                table_id=table_id,
                role_names=tuple(spec.exempt_roles) + managed,
                clause=DENY_CLAUSE,
                group_key="",
                description="secure by default: roles not named in superset/access.yml see no rows",
            )
        )
    return rules


# --- REST helpers ---------------------------------------------------------------------------------
def _list_all(client: SupersetClient, path: str, **query: Any) -> list[dict[str, Any]]:
    """Every row of a paginated Superset/FAB list endpoint."""
    rows: list[dict[str, Any]] = []
    page = 0
    while True:
        q = dict(query, page=page, page_size=PAGE_SIZE)
        payload = client.request("GET", path, params={"q": rison(q)})
        batch = payload.get("result") or []
        rows.extend(batch)
        if len(batch) < PAGE_SIZE or len(rows) >= payload.get("count", 0):
            return rows
        page += 1


def role_ids(client: SupersetClient) -> dict[str, int]:
    return {r["name"]: int(r["id"]) for r in _list_all(client, "/api/v1/security/roles/")}


def ensure_role(client: SupersetClient, name: str, known: dict[str, int]) -> tuple[int, bool]:
    """The role's id, creating the role if needed; the bool says whether it was created."""
    if name in known:
        return known[name], False
    created = client.request(
        "POST", "/api/v1/security/roles/", expect=(200, 201), json={"name": name}
    )
    known[name] = int(created["id"])
    return known[name], True


def role_permission_ids(client: SupersetClient, role_id: int) -> set[int]:
    rows = client.request("GET", f"/api/v1/security/roles/{role_id}/permissions/")["result"]
    return {int(p["id"]) for p in rows}


def set_role_permissions(client: SupersetClient, role_id: int, ids: set[int]) -> bool:
    """Make the role hold exactly `ids` (the endpoint replaces the whole set); True if changed."""
    if role_permission_ids(client, role_id) == ids:
        return False
    client.request(
        "POST",
        f"/api/v1/security/roles/{role_id}/permissions",
        expect=(200, 201),
        json={"permission_view_menu_ids": sorted(ids)},
    )
    return True


def permission_index(client: SupersetClient) -> dict[tuple[str, str], int]:
    """(permission name, view menu name) -> id of the permission-on-resource."""
    rows = _list_all(client, "/api/v1/security/permissions-resources/")
    return {(r["permission"]["name"], r["view_menu"]["name"]): int(r["id"]) for r in rows}


def schema_permission(
    permissions: dict[tuple[str, str], int], database_name: str, schema: str
) -> int:
    """The id of schema_access on `[database].[schema]` or `[database].[catalog].[schema]` (Superset
    names it with the catalog when the engine has catalogs, as PostgreSQL does in Superset 6)."""
    found = [
        pid
        for (perm, view), pid in permissions.items()
        if perm == "schema_access"
        and view.startswith(f"[{database_name}].")
        and view.endswith(f".[{schema}]")
        and view.count("].[") in (1, 2)
    ]
    if len(found) != 1:
        raise SupersetError(
            f"Superset has {len(found)} schema_access permissions on schema {schema!r} of"
            f" {database_name!r} (expected 1; Superset creates them with the database)"
        )
    return found[0]


def find_dataset_ids(client: SupersetClient, datasets: list[AssetDataset]) -> dict[str, int]:
    """Superset's current id of every asset dataset, matched on database, schema and table name."""
    rows = _list_all(
        client,
        "/api/v1/dataset/",
        columns=["id", "table_name", "schema", "database.database_name"],
    )
    found = {}
    for dataset in datasets:
        matches = [
            int(r["id"])
            for r in rows
            if r["table_name"] == dataset.table_name
            and (r.get("schema") or "") == dataset.schema
            and r["database"]["database_name"] == dataset.database_name
        ]
        if len(matches) != 1:
            raise SupersetError(
                f"dataset {dataset.label} in database {dataset.database_name!r}: "
                f"{len(matches)} matches in Superset (import superset/assets first)"
            )
        found[dataset.label] = matches[0]
    return found


def find_database_id(client: SupersetClient, name: str) -> int | None:
    query = {"filters": [{"col": "database_name", "opr": "eq", "value": name}]}
    rows = client.request("GET", "/api/v1/database/", params={"q": rison(query)})["result"]
    return int(rows[0]["id"]) if rows else None


def analyst_database_uri(spec: AnalystSpec, settings: Settings | None = None) -> str:
    """Superset's connection for the analyst: the warehouse of `settings`, the password from the
    environment variable access.yml names (`password_env`)."""
    settings = settings or Settings.from_env()
    password = os.environ.get(spec.password_env)
    if not password:
        raise SupersetError(f"{spec.password_env} is not set: the analyst connection needs it")
    return (
        f"postgresql+psycopg2://{quote(spec.db_user, safe='')}:{quote(password, safe='')}"
        f"@{settings.pg_host}:{settings.pg_port}/{quote(settings.warehouse_db, safe='')}"
    )


def ensure_analyst_database(client: SupersetClient, spec: AnalystSpec) -> tuple[int, bool]:
    """Create or update the SQL Lab connection that logs in as the read-only analyst role."""
    payload = {
        "database_name": spec.database_name,
        "sqlalchemy_uri": analyst_database_uri(spec),
        "expose_in_sqllab": True,
        "allow_run_async": False,
        "allow_ctas": False,
        "allow_cvas": False,
        "allow_dml": False,
        "allow_file_upload": False,
        "impersonate_user": False,
        "extra": json.dumps(
            {
                "allows_virtual_table_explore": False,
                "schemas_allowed_for_file_upload": [],
                "metadata_params": {},
                "engine_params": {},
            }
        ),
    }
    existing = find_database_id(client, spec.database_name)
    if existing is None:
        created = client.request("POST", "/api/v1/database/", expect=(200, 201), json=payload)
        return int(created["id"]), True
    client.request("PUT", f"/api/v1/database/{existing}", json=payload)
    return existing, False


# --- apply ----------------------------------------------------------------------------------------
@dataclass
class AccessReport:
    roles_created: list[str] = field(default_factory=list)
    roles_with_new_permissions: list[str] = field(default_factory=list)
    rules_created: list[str] = field(default_factory=list)
    rules_updated: list[str] = field(default_factory=list)
    rules_deleted: list[str] = field(default_factory=list)
    rules_total: int = 0
    analyst_database_id: int = 0
    analyst_database_created: bool = False

    def lines(self) -> list[str]:
        roles = (
            f"roles: {len(self.roles_created)} created, "
            f"{len(self.roles_with_new_permissions)} with changed permissions"
        )
        rules = (
            f"RLS rules: {self.rules_total} managed; {len(self.rules_created)} created, "
            f"{len(self.rules_updated)} updated, {len(self.rules_deleted)} deleted"
        )
        created = " (created)" if self.analyst_database_created else ""
        return [roles, rules, f"analyst database id {self.analyst_database_id}{created}"]


def _rule_payload(rule: RuleSpec, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "name": rule.name,
        "description": rule.description,
        "filter_type": rule.filter_type,
        "tables": [rule.table_id],
        "roles": sorted(ids[name] for name in rule.role_names),
        "group_key": rule.group_key or None,
        "clause": rule.clause,
    }


def _same_rule(existing: dict[str, Any], payload: dict[str, Any]) -> bool:
    return (
        existing.get("filter_type") == payload["filter_type"]
        and (existing.get("clause") or "") == payload["clause"]
        and (existing.get("group_key") or None) == payload["group_key"]
        and sorted(int(t["id"]) for t in existing.get("tables") or []) == payload["tables"]
        and sorted(int(r["id"]) for r in existing.get("roles") or []) == payload["roles"]
    )


def apply_access(
    client: SupersetClient,
    access_file: Path | str | None = None,
    assets_dir: Path | str | None = None,
) -> AccessReport:
    """Make Superset's roles, permissions, RLS rules and analyst connection match access.yml."""
    spec = load_access(access_file or default_access_file())
    datasets = asset_datasets(assets_dir or default_assets_dir())
    report = AccessReport()

    roles = role_ids(client)
    for base in set(spec.viewer_base_roles) | set(spec.analyst.base_roles) | set(spec.exempt_roles):
        if base not in roles:
            raise SupersetError(f"role {base!r} named in access.yml does not exist in Superset")
    for name in [r.name for r in spec.roles] + [spec.analyst.role]:
        _, created = ensure_role(client, name, roles)
        if created:
            report.roles_created.append(name)

    report.analyst_database_id, report.analyst_database_created = ensure_analyst_database(
        client, spec.analyst
    )
    dataset_ids = find_dataset_ids(client, datasets)
    permissions = permission_index(client)

    def base_permissions(names: tuple[str, ...]) -> set[int]:
        ids: set[int] = set()
        for name in names:
            ids |= role_permission_ids(client, roles[name])
        return ids

    def permission(perm: str, view: str) -> int:
        try:
            return permissions[(perm, view)]
        except KeyError:
            raise SupersetError(
                f"Superset has no permission {perm} on {view!r} (re-import the assets)"
            ) from None

    viewer = base_permissions(spec.viewer_base_roles)
    for dataset in datasets:
        view = f"[{dataset.database_name}].[{dataset.table_name}](id:{dataset_ids[dataset.label]})"
        viewer.add(permission("datasource_access", view))
    for role in spec.roles:
        if set_role_permissions(client, roles[role.name], viewer):
            report.roles_with_new_permissions.append(role.name)

    analyst = base_permissions(spec.analyst.base_roles)
    # schema access, not database access: SQL Lab's pickers and metadata API list these schemas only
    for schema in spec.analyst.schemas:
        analyst.add(schema_permission(permissions, spec.analyst.database_name, schema))
    if set_role_permissions(client, roles[spec.analyst.role], analyst):
        report.roles_with_new_permissions.append(spec.analyst.role)

    _apply_rules(client, spec, desired_rules(spec, datasets, dataset_ids), roles, report)
    return report


def _apply_rules(
    client: SupersetClient,
    spec: AccessSpec,
    rules: list[RuleSpec],
    roles: dict[str, int],
    report: AccessReport,
) -> None:
    existing: dict[str, list[dict[str, Any]]] = {}
    for row in _list_all(
        client,
        "/api/v1/rowlevelsecurity/",
        columns=["id", "name", "filter_type", "tables.id", "roles.id", "clause", "group_key"],
    ):
        if row["name"].startswith(spec.rule_prefix):
            existing.setdefault(row["name"], []).append(row)
    for rule in rules:
        payload = _rule_payload(rule, roles)
        current = existing.pop(rule.name, [])
        # Keep one rule per name; extra copies (an interrupted earlier run) are removed below.
        for extra in current[1:]:
            existing.setdefault(rule.name, []).append(extra)
        if not current:
            client.request("POST", "/api/v1/rowlevelsecurity/", expect=(200, 201), json=payload)
            report.rules_created.append(rule.name)
        elif not _same_rule(current[0], payload):
            client.request("PUT", f"/api/v1/rowlevelsecurity/{current[0]['id']}", json=payload)
            report.rules_updated.append(rule.name)
    stale = [row for rows in existing.values() for row in rows]
    if stale:
        client.request(
            "DELETE",
            "/api/v1/rowlevelsecurity/",
            params={"q": rison([int(row["id"]) for row in stale])},
        )
        report.rules_deleted.extend(row["name"] for row in stale)
    report.rules_total = len(rules)


# --- demo users (local mode only) -----------------------------------------------------------------
@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    first_name: str
    last_name: str


def demo_users(spec: AccessSpec) -> list[DemoUser]:
    """One user per managed role, plus the analyst."""
    users = [DemoUser(r.username, r.name, r.label, r.kind) for r in spec.roles]
    users.append(DemoUser(spec.analyst.username, spec.analyst.role, "Analyst", "demo"))
    return users


def demo_password(settings: Settings | None = None) -> str:
    """The demo users' password; refuses outside KNOWDO_MODE=local (no known passwords there)."""
    settings = settings or Settings.from_env()
    if settings.mode != "local":
        raise SupersetError(
            f"KNOWDO_MODE={settings.mode}: demo users with a shared password exist in local"
            " mode only"
        )
    return settings.demo_user_password or DEMO_PASSWORD_DEFAULT


def ensure_users(
    client: SupersetClient, users: list[DemoUser], password: str | None = None
) -> list[str]:
    """Create or reset each demo user (active, exactly its one role, the demo password).

    Returns the usernames created. Refuses outside local mode even when a password is passed.
    """
    mode_password = demo_password()
    password = password or mode_password
    roles = role_ids(client)
    existing = {
        u["username"]: int(u["id"])
        for u in _list_all(client, "/api/v1/security/users/", columns=["id", "username"])
    }
    created = []
    for user in users:
        if user.role not in roles:
            raise SupersetError(f"role {user.role!r} for user {user.username} does not exist")
        payload = {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": f"{user.username}@example.org",
            "active": True,
            "roles": [roles[user.role]],
            "password": password,
        }
        if user.username in existing:
            client.request("PUT", f"/api/v1/security/users/{existing[user.username]}", json=payload)
        else:
            client.request(
                "POST",
                "/api/v1/security/users/",
                expect=(200, 201),
                json=dict(payload, username=user.username),
            )
            created.append(user.username)
    return created


# --- command line ---------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="knowdo superset-access", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    apply = sub.add_parser("apply", help="apply superset/access.yml to the running Superset")
    apply.add_argument("--access-file", type=Path, default=None)
    apply.add_argument("--assets-dir", type=Path, default=None)
    apply.add_argument(
        "--demo-users",
        action="store_true",
        help="also create one demo user per role (KNOWDO_MODE=local only; password "
        "KNOWDO_DEMO_USER_PASSWORD, default knowdo-demo)",
    )
    apply.add_argument("--wait", type=float, default=180.0, help="seconds to wait for /health")
    args = parser.parse_args(argv)

    client = SupersetClient.from_env()
    try:
        if args.demo_users:
            demo_password()  # refuse before changing anything
        client.wait_healthy(args.wait)
        client.login()
        report = apply_access(client, args.access_file, args.assets_dir)
        for line in report.lines():
            print(line)
        if args.demo_users:
            spec = load_access(args.access_file or default_access_file())
            users = demo_users(spec)
            created = ensure_users(client, users)
            print(f"demo users: {len(users)} ({len(created)} created), e.g. ministry_gha")
    except SupersetError as exc:
        print(f"knowdo superset access: {exc}", file=sys.stderr)
        return 1
    return 0
