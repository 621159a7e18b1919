"""Production settings: everything from the environment, nothing defaulted that matters.

Refuses to start without `SECRET_KEY`, `DATABASE_URL` (PostgreSQL), `REDIS_URL`,
`FIELD_ENCRYPTION_KEYS`, `AUDIT_CHECKPOINT_SIGNING_KEY`, `PSEUDONYM_KEYS` and
`ALLOWED_HOSTS`, and `PUBLIC_BASE_URL` must be https (staff passkeys are bound to its
host name). The sandbox is never mounted here.
"""

import base64
import binascii

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import (
    AUDIT_CHECKPOINT_SIGNING_KEY,
    FIELD_ENCRYPTION_KEYS,
    METRICS_TOKEN,
    POSTGRESQL_ENGINE,
    PSEUDONYM_KEYS,
    PUBLIC_BASE_URL,
    REDIS_URL,
    SECRET_KEY,
    database_from_env,
    env,
    passkey_relying_party,
)

DEBUG = False
SANDBOX_ENABLED = False
OUTBOUND_ALLOW_PRIVATE_HOSTS = False

_missing = [
    name
    for name, value in {
        "SECRET_KEY": SECRET_KEY,
        "REDIS_URL": REDIS_URL,
        "FIELD_ENCRYPTION_KEYS": FIELD_ENCRYPTION_KEYS,
        "AUDIT_CHECKPOINT_SIGNING_KEY": AUDIT_CHECKPOINT_SIGNING_KEY,
        "PSEUDONYM_KEYS": PSEUDONYM_KEYS,
        "ALLOWED_HOSTS": env.list("ALLOWED_HOSTS", default=[]),
        "DATABASE_URL": env.str("DATABASE_URL", default=""),
    }.items()
    if not value
]
if _missing:
    raise ImproperlyConfigured(
        f"Production settings need these environment variables: {', '.join(_missing)}. "
        "See .env.example."
    )
try:
    _checkpoint_key = base64.b64decode(AUDIT_CHECKPOINT_SIGNING_KEY, validate=True)
except binascii.Error:
    _checkpoint_key = b""
if len(_checkpoint_key) != 32:
    raise ImproperlyConfigured(
        "AUDIT_CHECKPOINT_SIGNING_KEY must be the base64 of a raw 32-byte Ed25519 private key."
    )
if any(len(key) < 32 for key in PSEUDONYM_KEYS):
    raise ImproperlyConfigured("Each of PSEUDONYM_KEYS must be at least 32 random characters.")
if not env.bool("STAFF_TWO_FACTOR_FOR_ALL", default=True):
    raise ImproperlyConfigured(
        "STAFF_TWO_FACTOR_FOR_ALL=false relaxes staff sign-in for development and demos only; "
        "production requires a second factor of every staff member."
    )
STAFF_TWO_FACTOR_FOR_ALL = True
# Staff passkeys are bound to PUBLIC_BASE_URL's host name, which must be served over https.
passkey_relying_party(PUBLIC_BASE_URL, require_https=True)
if len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters.")
# Prometheus scrapes /metrics with `Authorization: Bearer <METRICS_TOKEN>`. Optional: without
# it /metrics answers 404. When set, it must be long enough not to be guessed.
if METRICS_TOKEN and len(METRICS_TOKEN) < 32:
    raise ImproperlyConfigured("METRICS_TOKEN must be at least 32 random characters.")

DATABASES = {"default": database_from_env(default=None)}
if DATABASES["default"]["ENGINE"] != POSTGRESQL_ENGINE:
    raise ImproperlyConfigured("Production runs on PostgreSQL: DATABASE_URL must be postgres://…")

# Shared by every web process: sign-in throttling counters live here.
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
}

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
