"""Superset configuration for KnowDo. Every value comes from the environment (infra/local/env.sh).

Loaded by Superset through SUPERSET_CONFIG_PATH. The same file serves local and production; only
KNOWDO_MODE=local accepts the built-in secret key.
"""

import os

_LOCAL_SECRET_KEY = "knowdo-local-only-not-a-secret"  # the default in infra/local/env.sh
_MODE = os.environ.get("KNOWDO_MODE", "local")

# --- secrets --------------------------------------------------------------------------------------
# SECRET_KEY signs sessions and encrypts stored database passwords: a known key outside a loopback
# sandbox would let anyone forge an admin session, so production refuses to start without a real one.
SECRET_KEY = os.environ.get("KNOWDO_SUPERSET_SECRET_KEY") or (
    _LOCAL_SECRET_KEY if _MODE == "local" else ""
)
if _MODE != "local" and SECRET_KEY in ("", _LOCAL_SECRET_KEY):
    raise RuntimeError(
        f"KNOWDO_MODE={_MODE}: set KNOWDO_SUPERSET_SECRET_KEY to a long random value "
        "(e.g. `openssl rand -base64 42`); the local default is refused outside local mode"
    )

# --- metadata database and files -----------------------------------------------------------------
SQLALCHEMY_DATABASE_URI = os.environ.get("KNOWDO_SUPERSET_METADATA_URL", "")
if not SQLALCHEMY_DATABASE_URI:
    raise RuntimeError(
        "set KNOWDO_SUPERSET_METADATA_URL (source infra/local/env.sh for the local stack)"
    )
DATA_DIR = os.environ.get("SUPERSET_HOME", os.path.expanduser("~/.superset"))
UPLOAD_FOLDER = os.path.join(DATA_DIR, "uploads")
os.makedirs(DATA_DIR, exist_ok=True)

# --- security and API -----------------------------------------------------------------------------
FAB_ADD_SECURITY_API = True  # /api/v1/security/roles, users: roles and RLS are applied as code
# CSRF stays on for browser forms; REST clients fetch a token from /api/v1/security/csrf_token/.
WTF_CSRF_ENABLED = True
WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session: long imports do not expire them
# Production runs behind a TLS proxy; locally the cookie must work over plain http on 127.0.0.1.
SESSION_COOKIE_SECURE = _MODE != "local"
SESSION_COOKIE_SAMESITE = "Lax"
TALISMAN_ENABLED = _MODE != "local"
ENABLE_PROXY_FIX = _MODE != "local"
CONTENT_SECURITY_POLICY_WARNING = _MODE != "local"  # Talisman sets the CSP in production

# --- behaviour -------------------------------------------------------------------------------------
SUPERSET_LOAD_EXAMPLES = False  # only KnowDo's own assets (superset/assets), no sample dashboards
FEATURE_FLAGS = {
    "DASHBOARD_RBAC": False,  # access follows dataset permissions and RLS, not per-dashboard roles
    "EMBEDDED_SUPERSET": False,
    "ALERT_REPORTS": False,  # needs Celery + a browser worker; not part of the first slice
}
# flask-caching 2.3.1: a per-process SimpleCache is enough for one host. Production can point these
# at Redis through KNOWDO_SUPERSET_CACHE_REDIS_URL without changing this file.
_REDIS_URL = os.environ.get("KNOWDO_SUPERSET_CACHE_REDIS_URL")


def _cache(prefix: str, timeout: int) -> dict:
    if _REDIS_URL:
        return {
            "CACHE_TYPE": "RedisCache",
            "CACHE_REDIS_URL": _REDIS_URL,
            "CACHE_KEY_PREFIX": prefix,
            "CACHE_DEFAULT_TIMEOUT": timeout,
        }
    return {
        "CACHE_TYPE": "SimpleCache",
        "CACHE_KEY_PREFIX": prefix,
        "CACHE_DEFAULT_TIMEOUT": timeout,
    }


CACHE_CONFIG = _cache("knowdo_cache_", 300)
DATA_CACHE_CONFIG = _cache("knowdo_data_", 300)
# FILTER_STATE_CACHE_CONFIG and EXPLORE_FORM_DATA_CACHE_CONFIG keep Superset's default (the metadata
# database): a per-process cache would lose dashboard filter state between gunicorn workers.

ROW_LIMIT = 50000

# --- row-level security in the warehouse (issue 11) -------------------------------------------------
# Superset's RLS rules (superset/access.yml) filter a chart's rows, but a viewer who gets SQL into a
# chart (an adhoc metric, a custom column) could step around them. So every query of a user who is
# not Admin runs as that user's own PostgreSQL LOGIN role (knowdo.row_security): the warehouse's
# row-level security policies return that scope's rows only, whatever SQL arrives. The password is
# derived (HMAC-SHA256 of KNOWDO_VIEWER_ROLE_SECRET and the role name), so nothing is stored, and the
# session user being the viewer's own role, no SQL inside a query can switch back to a role that
# sees more. Only the warehouse connections KnowDo manages (logging in as one of _MANAGED_LOGINS)
# are switched; Admin keeps knowdo_superset, the analyst keeps knowdo_analyst on the analyst's
# connection, anyone else (several scopes, no scope, no logged-in user) gets knowdo_v_none: no row.
import sys as _sys

_SRC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "src")
if os.path.isdir(_SRC) and _SRC not in _sys.path:
    _sys.path.append(_SRC)

from knowdo import row_security as _rs
from knowdo.superset_access import default_access_file as _access_file
from knowdo.superset_access import load_access as _load_access

_ACCESS = _load_access(_access_file())
_SCOPES = _rs.scopes()
_VIEWER_SECRET = _rs.viewer_secret()  # refuses the local default outside local mode
_MANAGED_LOGINS = frozenset({"knowdo_superset", _ACCESS.analyst.db_user})


def _superset_roles(security_manager, username):
    if not username:
        return set()
    user = security_manager.find_user(username=username)
    return {role.name for role in user.roles} if user is not None and user.is_active else set()


def knowdo_database_role(security_manager, username, login):
    """The database role a user's query on a connection logging in as `login` runs as (`login`
    itself when unchanged)."""
    if login not in _MANAGED_LOGINS:
        return login
    roles = _superset_roles(security_manager, username)
    if login == _ACCESS.analyst.db_user and roles & {_ACCESS.analyst.role, *_ACCESS.exempt_roles}:
        return login
    return _rs.role_for_user(roles, _SCOPES, _ACCESS.exempt_roles) or login


def DB_CONNECTION_MUTATOR(uri, params, username, security_manager, source):
    role = knowdo_database_role(security_manager, username, uri.username)
    if role == uri.username:
        return uri, params
    return uri.set(username=role, password=_rs.viewer_password(role, _VIEWER_SECRET)), params


from superset.security import SupersetSecurityManager


class KnowDoSecurityManager(SupersetSecurityManager):
    """Superset's security manager plus two KnowDo rules:

    - a SQL Lab query is never a chart's datasource for someone else: only its author, with access to
      its database, may explore it (issue 11: a viewer ran the analyst's query as a datasource);
    - the data cache key names the database role the query runs as, so the cache never hands rows
      read as one scope's role to another.
    """

    def raise_for_access(self, *args, **kwargs):
        query_context, viz = kwargs.get("query_context"), kwargs.get("viz")
        for datasource in (
            kwargs.get("datasource"),
            getattr(query_context, "datasource", None),
            getattr(viz, "datasource", None),
        ):
            if datasource is not None and str(getattr(datasource, "type", "")) == "query":
                self._raise_for_query_datasource(datasource)
        return super().raise_for_access(*args, **kwargs)

    def _raise_for_query_datasource(self, query):
        from superset.errors import ErrorLevel, SupersetError, SupersetErrorType
        from superset.exceptions import SupersetSecurityException
        from superset.utils.core import get_user_id

        database = getattr(query, "database", None)
        if self.is_admin() or (
            database is not None
            and getattr(query, "user_id", None) == get_user_id()
            and self.can_access_database(database)
        ):
            return
        raise SupersetSecurityException(
            SupersetError(
                error_type=SupersetErrorType.DATASOURCE_SECURITY_ACCESS_ERROR,
                message="A SQL Lab query can be used as a datasource only by its author.",
                level=ErrorLevel.ERROR,
            )
        )

    def get_rls_cache_key(self, datasource):
        from superset.utils.core import get_username

        key = super().get_rls_cache_key(datasource)
        database = getattr(datasource, "database", None)
        login = database.url_object.username if database is not None else None
        return key + [f"knowdo_db_role={knowdo_database_role(self, get_username(), login)}"]


CUSTOM_SECURITY_MANAGER = KnowDoSecurityManager
