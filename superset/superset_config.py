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
