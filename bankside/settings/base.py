"""Settings shared by every environment, driven by environment variables.

Every variable is documented in `.env.example`. Environment-specific modules
(`local`, `test`, `production`) import this one and override only what differs.
"""

from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

SECRET_KEY = env("SECRET_KEY", default="")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
PUBLIC_BASE_URL = env.url("PUBLIC_BASE_URL", default="http://localhost:8000").geturl().rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "portal.apps.PlatformAdminConfig",  # django.contrib.admin, read-only
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp_webauthn",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "core",
    "portal",
    "linking",
    "notifications",
    "conversation",
    "demo",
]

# The machine-to-machine API (requests under API_PATH_PREFIX, with an API key) skips what
# only browsers need: static files, sessions, staff users, one-time passwords and messages
# (core/browser_middleware.py wraps Django's and the libraries' own middleware).
API_PATH_PREFIX = "/api/"
MIDDLEWARE = [
    "core.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.csp.ContentSecurityPolicyMiddleware",
    "core.browser_middleware.WhiteNoiseMiddleware",
    "core.browser_middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "core.browser_middleware.AuthenticationMiddleware",
    "core.browser_middleware.OTPMiddleware",
    "core.browser_middleware.MessageMiddleware",
    # The customer pages (/link/, /my/) in the customer's language; staff pages stay English.
    "linking.middleware.CustomerLanguageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # `Idempotency-Key` on the writes of /api/v1/ (views opt in with `idempotent_methods`).
    "core.api.idempotency.IdempotencyMiddleware",
    # Last, as django-axes requires: it turns a lockout into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "bankside.urls"
WSGI_APPLICATION = "bankside.wsgi.application"
ASGI_APPLICATION = "bankside.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "bankside" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.access.staff_context",
                "portal.navigation.extra_nav",
            ],
        },
    },
]


# Django's PostgreSQL backend, whose transactions spend no round trips of their own.
POSTGRESQL_ENGINE = "core.db.postgresql"


POOLERS = ("", "pgbouncer")


def database_pooler_from_env() -> str:
    """Validate `DATABASE_POOLER`: what `DATABASE_URL` points at, when it is not PostgreSQL
    itself. `pgbouncer`: PgBouncer in transaction mode, which hands the server's sessions
    to other clients between transactions (README "Scaling out")."""
    pooler = str(env.str("DATABASE_POOLER", default="")).strip().lower()
    if pooler not in POOLERS:
        raise ImproperlyConfigured(
            f"DATABASE_POOLER must be empty (PostgreSQL itself) or pgbouncer; got {pooler!r}."
        )
    return pooler


DATABASE_POOLER = database_pooler_from_env()


def database_pooled(config: dict[str, Any], pooler: str) -> dict[str, Any]:
    """A PostgreSQL database's settings for a connection through `pooler`."""
    if pooler != "pgbouncer":
        return config
    config = {**config, "OPTIONS": dict(config.get("OPTIONS", {}))}
    # A server session is this client's for one transaction only: a cursor kept open
    # across transactions (Django's `.iterator()` outside `atomic()`) would be looked for
    # in another session. Such rows are then read in one go, client-side.
    config["DISABLE_SERVER_SIDE_CURSORS"] = True
    # PgBouncer refuses the `options` startup parameter, and with no statement prepared
    # (DATABASE_PREPARED_STATEMENTS is off) the plan setting has nothing to act on.
    config["OPTIONS"].pop("options", None)
    return config


def database_from_env(default: str | None) -> dict:
    """Parse `DATABASE_URL`; only PostgreSQL and SQLite are supported."""
    config = env.db_url("DATABASE_URL", default=default) if default else env.db_url("DATABASE_URL")
    engine = config["ENGINE"]
    if engine == "django.db.backends.postgresql":
        config["ENGINE"] = POSTGRESQL_ENGINE
        config["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        config["CONN_HEALTH_CHECKS"] = True
        # The statements prepared on the hot paths (DATABASE_PREPARED_STATEMENTS) are
        # written to have one good plan whatever their parameters, so they are planned
        # once, not again at each run. Queries that are not prepared are unaffected.
        config.setdefault("OPTIONS", {})["options"] = "-c plan_cache_mode=force_generic_plan"
        config = database_pooled(config, DATABASE_POOLER)
    elif engine == "django.db.backends.sqlite3":
        # Every transaction takes the write lock up front, so two writers can never
        # read the same audit chain head.
        config.setdefault("OPTIONS", {})["transaction_mode"] = "IMMEDIATE"
        config["OPTIONS"]["timeout"] = 20
    else:
        raise ImproperlyConfigured(
            f"DATABASE_URL must point at PostgreSQL (postgres://…) or SQLite; got {engine}."
        )
    return config


DATABASES = {"default": database_from_env(default=None)} if env.str("DATABASE_URL", "") else {}
# Small statements on the API's hot paths are prepared once per PostgreSQL connection
# (core.db.rows.statement_execute). Off behind a pooler that hands sessions around
# between transactions (DATABASE_POOLER=pgbouncer): a statement prepared in one server
# session is unknown in the next.
DATABASE_PREPARED_STATEMENTS = env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=DATABASE_POOLER != "pgbouncer"
)
if DATABASE_PREPARED_STATEMENTS and DATABASE_POOLER == "pgbouncer":
    raise ImproperlyConfigured(
        "DATABASE_PREPARED_STATEMENTS=true cannot work behind PgBouncer in transaction mode "
        "(DATABASE_POOLER=pgbouncer): leave it unset or set it to false."
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Staff sign in at /staff/login/ with a password and a TOTP code (or a single-use recovery
# code). The Django admin is for platform superusers only.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:staff_home"
OTP_TOTP_ISSUER = "bankside"


def passkey_relying_party(public_base_url: str, *, require_https: bool) -> tuple[str, str] | None:
    """(relying party ID, origin) of staff passkeys, from PUBLIC_BASE_URL; None where no
    browser would accept them (plain http other than localhost, an IP address).

    A passkey is bound to its relying party ID for good: changing the host name later
    means every staff member registers their passkeys again.
    """
    parts = urlsplit(public_base_url)
    host = (parts.hostname or "").lower()
    named = bool(host) and not host.replace(".", "").isdigit() and ":" not in host
    port = f":{parts.port}" if parts.port else ""
    if parts.scheme == "https" and named:
        return host, f"https://{host}{port}"
    if require_https:
        raise ImproperlyConfigured(
            f"PUBLIC_BASE_URL must be https://<host name> in production, not {public_base_url!r}: "
            "staff passkeys (WebAuthn) are bound to that host name and need https."
        )
    if parts.scheme == "http" and host == "localhost":
        return host, f"http://{host}{port}"
    return None


# Staff passkeys (WebAuthn, django-otp-webauthn) as a second factor beside the authenticator
# app. Only after the password: never a way to sign in without one.
_passkey_rp = passkey_relying_party(PUBLIC_BASE_URL, require_https=False)
PASSKEYS_ENABLED = _passkey_rp is not None
OTP_WEBAUTHN_RP_ID = _passkey_rp[0] if _passkey_rp else ""
OTP_WEBAUTHN_ALLOWED_ORIGINS = [_passkey_rp[1]] if _passkey_rp else []
OTP_WEBAUTHN_RP_NAME = "bankside"
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False
OTP_WEBAUTHN_EXCEPTION_LOGGER_NAME = "portal.passkeys"
# A development machine reached by IP address or plain http has no passkeys: the library's
# checks for a relying party and an origin do not apply there.
SILENCED_SYSTEM_CHECKS = [] if PASSKEYS_ENABLED else ["otp_webauthn.E010", "otp_webauthn.E030"]
# Every staff member signs in with a second factor. Only a development or demo machine may
# relax this (`STAFF_TWO_FACTOR_FOR_ALL=false`): then admins, staff of banks that require it
# for all, and anyone who enrolled an authenticator still need it. Production refuses it.
STAFF_TWO_FACTOR_FOR_ALL = env.bool("STAFF_TWO_FACTOR_FOR_ALL", default=True)
# A staff session with no request for this long is signed out. Each bank sets its own (15
# minutes unless changed); this one is for platform admins, who belong to no bank. A member
# of several banks gets the shortest. SESSION_COOKIE_AGE stays the absolute limit.
STAFF_IDLE_TIMEOUT_DEFAULT_MINUTES = 15

# Login throttling: 5 failures for one username from one address lock that pair out for
# 15 minutes, counted from the last failure before the lock.
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "core.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "portal.views.auth.lockout_response"
AXES_VERBOSE = False

LANGUAGE_CODE = "en"
# The languages bankside's own words (customer pages, the bot, default templates) are
# translated into: `locale/<language>/LC_MESSAGES/django.po`, compiled to the `.mo` files
# committed beside them (`make messages`). A customer is spoken to in their locale's
# language when it is one of these, else in their bank's default (`portal.languages`).
LANGUAGES = [("en", "English"), ("fr", "Français"), ("de", "Deutsch"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Every response's Content-Security-Policy (core/csp.py): this origin's own scripts,
# styles and connections only. Images may also be data: URIs (the API docs' icons).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}

# Number of reverse proxies in front of the app whose X-Forwarded-For entries are trusted
# for the source IP recorded in audit entries. 0 means REMOTE_ADDR is used as is.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)


def encryption_keys_from_env(raw: str) -> list[str]:
    """Validate `FIELD_ENCRYPTION_KEYS`: comma-separated Fernet keys, the first encrypts."""
    keys = [key.strip() for key in raw.split(",") if key.strip()]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError) as exc:
            raise ImproperlyConfigured(
                f"FIELD_ENCRYPTION_KEYS entry {position} is not a valid Fernet key "
                "(32 url-safe base64-encoded bytes; make one with "
                "`python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`)."
            ) from exc
    return keys


FIELD_ENCRYPTION_KEYS = encryption_keys_from_env(env.str("FIELD_ENCRYPTION_KEYS", default=""))
# Keys of the pseudonymous references that audit entries hold instead of personal data
# (portal.pseudonyms), comma-separated: the first makes new references, every one is tried
# when looking entries up, so the key can change without losing older entries. Apart from
# SECRET_KEY, so that rotating SECRET_KEY leaves every reference findable.
PSEUDONYM_KEYS = env.list("PSEUDONYM_KEYS", default=[])
# Base64 of a raw Ed25519 private key that signs audit checkpoints. Unset, local and test
# runs use a fixed development key (portal.checkpoints); production refuses to start.
AUDIT_CHECKPOINT_SIGNING_KEY = env.str("AUDIT_CHECKPOINT_SIGNING_KEY", default="")


def audit_chain_lanes_from_env(raw: str) -> int:
    """Validate `AUDIT_CHAIN_LANES`: how many hash chains ("lanes") each bank's audit log
    (and the platform's) is spread over, 1 to 256 (portal.services.audit). A writer takes
    a free lane and only waits when every lane is busy, so it should be at least the
    number of database connections that write for one bank at once."""
    try:
        lanes = int(raw)
    except ValueError:
        lanes = 0
    if not 1 <= lanes <= 256:
        raise ImproperlyConfigured(
            f"AUDIT_CHAIN_LANES must be a whole number from 1 to 256; got {raw!r}."
        )
    return lanes


AUDIT_CHAIN_LANES = audit_chain_lanes_from_env(env.str("AUDIT_CHAIN_LANES", default="16"))

# Celery: Redis is the broker. Results are not kept: the durable truth of every piece of
# work is a row in the database, the broker message is only a nudge.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TIMEZONE = "UTC"
# The queues (bankside/celery.py; README "Scaling out"): `bankside.urgent`,
# `bankside.routine` and `bankside.conversation` for the tasks named below, `bankside` for
# the rest (beat's housekeeping). Each can have workers of its own (`celery worker -Q …`);
# a worker given no -Q consumes all four.
CELERY_TASK_DEFAULT_QUEUE = "bankside"
CELERY_TASK_ROUTES = ["bankside.celery.route_task"]
TASK_QUEUE_CLASSES = {
    # Urgent notifications only: never behind a routine backlog.
    "urgent": ["notifications.deliver_urgent"],
    # The rest of delivery and its sweeps, the hand-back, the link lifecycle's platform calls.
    "routine": [
        "notifications.deliver_due",
        "notifications.sweep_outbox",
        "notifications.hand_back",
        "linking.unlink_in_messenger",
        "linking.sweep_platform_unlinks",
        "linking.send_expiry_reminder",
        "linking.sweep_link_messages",
    ],
    # What a person in a chat waits for, and the bank's callbacks.
    "conversation": [
        "notifications.answer_inbound",
        "notifications.send_conversation_message",
        "notifications.deliver_bank_callback",
        "notifications.sweep_conversations",
        "linking.send_link_confirmation",
        "linking.send_new_link_notices",
        "linking.send_link_message",
        "linking.send_referral_refusal",
    ],
}
CELERY_BEAT_SCHEDULE = {
    "worker-heartbeat": {
        "task": "portal.record_worker_heartbeat",
        "schedule": env.float("WORKER_HEARTBEAT_SECONDS", default=30.0),
    },
    "expire-consents": {"task": "linking.expire_consents", "schedule": 300.0},
    "remind-expiring-consents": {"task": "linking.remind_expiring_consents", "schedule": 3600.0},
    # Ends the consents of m.me invitations whose link nobody opened before its ref expired.
    "expire-unused-invitations": {"task": "linking.expire_unused_invitations", "schedule": 300.0},
    # Tells Messenger of ended links whose nudge was lost or whose unlink call failed.
    "sweep-platform-unlinks": {"task": "linking.sweep_platform_unlinks", "schedule": 30.0},
    # Sends link confirmations and expiry reminders whose nudge was lost or whose call failed.
    "sweep-link-messages": {"task": "linking.sweep_link_messages", "schedule": 30.0},
    "purge-expired-api-records": {
        "task": "notifications.purge_expired_api_records",
        "schedule": 900.0,
    },
    # Re-enqueues due deliveries and takes over expired leases: a broker that loses its
    # messages delays delivery by at most this long, never loses it.
    "sweep-outbox": {"task": "notifications.sweep_outbox", "schedule": 5.0},
    # Hands back to the bank what Messenger cannot carry (urgent at once, routine after the
    # bank's grace period) as signed `notification.undeliverable` callbacks.
    "hand-back": {"task": "notifications.hand_back", "schedule": 5.0},
    # Conversation replies and bank callbacks that are due (retries, lost nudges).
    "sweep-conversations": {"task": "notifications.sweep_conversations", "schedule": 5.0},
    "verify-audit-chains": {"task": "portal.verify_audit_chains", "schedule": 86400.0},
    "sign-audit-checkpoints": {"task": "portal.sign_audit_checkpoints", "schedule": 86400.0},
    "purge-retained-data": {"task": "portal.purge_retained_data", "schedule": 86400.0},
    # The month partitions of events, notifications, outcomes and delivery attempts: made
    # ahead of need, dropped past their horizon (README "Partitions").
    "create-partitions": {"task": "notifications.create_partitions", "schedule": 3600.0},
    "drop-expired-partitions": {
        "task": "notifications.drop_expired_partitions",
        "schedule": 86400.0,
    },
}
# The heartbeat above comes from the default queue's workers; each other queue's workers
# send their own, so the status panel sees every kind of worker (queue names as in
# bankside/celery.py).
for _queue_class in ("urgent", "routine", "conversation"):
    CELERY_BEAT_SCHEDULE[f"worker-heartbeat-{_queue_class}"] = {
        **CELERY_BEAT_SCHEDULE["worker-heartbeat"],
        "options": {"queue": f"{CELERY_TASK_DEFAULT_QUEUE}.{_queue_class}"},
    }

MESSENGER_GRAPH_API_URL = (
    env.url("MESSENGER_GRAPH_API_URL", default="https://graph.facebook.com").geturl().rstrip("/")
)
MESSENGER_GRAPH_API_VERSION = env.str("MESSENGER_GRAPH_API_VERSION", default="v27.0")
LINK_REDIRECT_ALLOWED_HOSTS = env.list(
    "LINK_REDIRECT_ALLOWED_HOSTS",
    default=[
        "facebook.com",
        "www.facebook.com",
        "m.facebook.com",
        "messenger.com",
        "www.messenger.com",
    ],
)
# Messenger's account-linking page (the `redirect_uri` it sends): the only paths on those
# hosts the link flow returns a browser to. Other pages there include open redirectors.
LINK_REDIRECT_ALLOWED_PATHS = env.list(
    "LINK_REDIRECT_ALLOWED_PATHS",
    default=["/messenger_platform/account_linking", "/messenger_platform/account_linking/"],
)
# Where an m.me link leads: Messenger's own short links. The sandbox stands in for it in
# local settings, so the demo's m.me invitations open its chat.
MESSENGER_ME_URL = env.url("MESSENGER_ME_URL", default="https://m.me").geturl().rstrip("/")
# How long the `ref` of an m.me invitation's link can still link the person who opens it.
LINK_INVITATION_REF_HOURS = env.int("LINK_INVITATION_REF_HOURS", default=24)
# Paths on loopback hosts, over http too, while the sandbox is enabled (local and test only).
LINK_REDIRECT_LOCAL_PATHS: list[str] = []
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)
# Callback URLs and identity providers may be http and on loopback or private addresses:
# for development and the demo only (`core.outbound`). Production forces it off.
OUTBOUND_ALLOW_PRIVATE_HOSTS = env.bool("OUTBOUND_ALLOW_PRIVATE_HOSTS", default=False)

REST_FRAMEWORK = {
    # API keys, plus the Standard Webhooks signature a bank may require.
    "DEFAULT_AUTHENTICATION_CLASSES": ["core.api.auth.SignedApiKeyAuthentication"],
    "DEFAULT_THROTTLE_CLASSES": ["core.api.throttling.ApiKeyRateThrottle"],
    # Then the key's scope for the operation and its allowed addresses (core/api/scopes.py).
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        "core.api.scopes.KeyScopeAndAddress",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "core.api.problems.problem_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.ApiAutoSchema",
}
# Per-API-key token bucket: the default rate and burst (a key may have its own, see
# `manage.py api_rate_limit`). Buckets live in Redis; with no REDIS_URL, in each process.
API_RATE_LIMIT_PER_SECOND = 50.0
API_RATE_LIMIT_BURST = 100
API_RATE_LIMIT_REDIS_URL = ""  # empty: REDIS_URL


def partition_months_from_env(name: str, default: int | None = None) -> int | None:
    """A number of months for the partitioned tables (1 to 121), from the environment;
    `default` when unset (None: worked out from the banks' retention periods)."""
    raw = env.str(name, default="")
    if not raw:
        return default
    try:
        months = int(raw)
    except ValueError:
        months = 0
    if not 1 <= months <= 121:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of months from 1 to 121; got {raw!r}."
        )
    return months


def api_caller_seconds_from_env(raw: str) -> float:
    """Validate `API_CALLER_CACHE_SECONDS`: how long a web process keeps an API key it has
    read, with its bank's signing setting and its rate limit (0 to 60; 0 reads them for
    every request). A change made through the portal applies at once in the process that
    made it, and within this long in every other."""
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds <= 60:
        raise ImproperlyConfigured(
            f"API_CALLER_CACHE_SECONDS must be a number of seconds from 0 to 60; got {raw!r}."
        )
    return seconds


API_CALLER_CACHE_SECONDS = api_caller_seconds_from_env(
    env.str("API_CALLER_CACHE_SECONDS", default="1")
)

# The delivery engine (notifications/; README "Delivering notifications").
NOTIFICATIONS_REDIS_URL = ""  # the per-Page rate-limit buckets; empty: REDIS_URL
NOTIFICATIONS_PAGE_RATE_LIMIT = 300  # Send API calls per second per Page (Meta's limit)
NOTIFICATIONS_PAGE_RATE_LIMITS: dict[str, float] = {}  # per-Page overrides, by Page id
NOTIFICATIONS_PAGE_RATE_HEADROOM = 1.0  # share of the limit handed out (the whole of it)
NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 20.0  # an unanswered call is counted this long (timeout)
NOTIFICATIONS_PAGE_URGENT_RESERVE = 0.01  # share of the limit only urgent sends may take
NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS = 60.0  # a throttled Page runs at half rate this long
NOTIFICATIONS_CLAIM_BATCH = 200  # notifications one worker claims at a time
NOTIFICATIONS_SEND_CONCURRENCY = 16  # Send API calls in flight per worker process
NOTIFICATIONS_LEASE_SECONDS = 60  # a claim not finished by then is taken over
NOTIFICATIONS_TASK_SECONDS = 10.0  # one deliver_due task claims batches for this long
NOTIFICATIONS_MAX_ATTEMPTS = 10  # the retry budget: attempts…
NOTIFICATIONS_MAX_AGE_HOURS = 24  # …and hours from creation; then dead-lettered
NOTIFICATIONS_RETRY_BASE_SECONDS = 5.0  # exponential backoff with jitter from here…
NOTIFICATIONS_RETRY_MAX_DELAY_SECONDS = 900.0  # …up to this
# Digests (notifications/services/delivery/digest.py): on a Page under backlog, one
# person's several due routine updates go out as one message. On unless
# NOTIFICATIONS_DIGESTS=false; a Page is under backlog while its due routine notifications
# are at least what its Send API limit sends in NOTIFICATIONS_DIGEST_BACKLOG_SECONDS.
NOTIFICATIONS_DIGESTS = env.bool("NOTIFICATIONS_DIGESTS", default=True)
NOTIFICATIONS_DIGEST_BACKLOG_SECONDS = env.float(
    "NOTIFICATIONS_DIGEST_BACKLOG_SECONDS", default=10.0
)
# An uncertain send (its worker died mid-call, the connection dropped after the request
# went out, an unreadable answer) waits this long for its echo; without one it is resent
# once (README "Echoes").
NOTIFICATIONS_ECHO_WAIT_SECONDS = env.float("NOTIFICATIONS_ECHO_WAIT_SECONDS", default=60.0)
# What Messenger cannot carry is handed back to the bank (`notification.undeliverable`):
# urgent updates at once, routine ones after the bank's grace period. Only notifications
# written within this many hours are handed back (a day more than the longest grace).
NOTIFICATIONS_HAND_BACK_HORIZON_HOURS = env.int("NOTIFICATIONS_HAND_BACK_HORIZON_HOURS", default=48)
NOTIFICATIONS_HAND_BACK_BATCH = 200  # notifications handed back in one transaction
# Events, notifications, the outcome feed and the delivery attempts are partitioned by
# month on PostgreSQL (README "Partitions"): beat makes this month's partition and the
# next NOTIFICATIONS_PARTITIONS_AHEAD, and drops a month once it is past its table's
# horizon: NOTIFICATIONS_{EVENTS,OUTCOMES,ATTEMPTS}_KEEP_MONTHS, never less than the
# longest retention period of any bank plus one month (that, when unset). Events and
# their notifications share one horizon, never shorter than the other two tables'.
NOTIFICATIONS_PARTITIONS_AHEAD: int = (
    partition_months_from_env("NOTIFICATIONS_PARTITIONS_AHEAD") or 2
)
NOTIFICATIONS_OUTCOMES_KEEP_MONTHS = partition_months_from_env("NOTIFICATIONS_OUTCOMES_KEEP_MONTHS")
NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS = partition_months_from_env("NOTIFICATIONS_ATTEMPTS_KEEP_MONTHS")
NOTIFICATIONS_EVENTS_KEEP_MONTHS = partition_months_from_env("NOTIFICATIONS_EVENTS_KEEP_MONTHS")
# Signed callbacks to the bank (a fraud alert's answer): retried with backoff and jitter.
NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS = 12
NOTIFICATIONS_CALLBACK_RETRY_BASE_SECONDS = 10.0
NOTIFICATIONS_CALLBACK_RETRY_MAX_DELAY_SECONDS = 3600.0
NOTIFICATIONS_CALLBACK_TIMEOUT_SECONDS = 10.0
# Prometheus metrics at /metrics (notifications/metrics.py): served only with
# `Authorization: Bearer <METRICS_TOKEN>`; without a token the URL answers 404.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# The Redis hash every worker adds its delivery counters to (in NOTIFICATIONS_REDIS_URL).
NOTIFICATIONS_METRICS_KEY = "bankside:metrics:delivery"
SPECTACULAR_SETTINGS = {
    "TITLE": "bankside core-banking API",
    "DESCRIPTION": (
        "How a bank's core systems feed bankside: customers and their accounts, and "
        "account events that become consented Messenger notifications. Authenticate with "
        "`Authorization: Bearer <API key>`; errors are RFC 9457 problem documents."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.api.schema.problem_responses",
    ],
    "ENUM_NAME_OVERRIDES": {
        "EventStatusEnum": "notifications.models.Event.Status",
        "EventResultStatusEnum": "notifications.api.schemas.RESULT_STATUSES",
        "ShipmentStatusEnum": "notifications.validation.SHIPMENT_STATUSES",
        "NotificationReasonEnum": "notifications.models.Notification.Reason",
        "NotificationUrgencyEnum": "notifications.models.Notification.Urgency",
    },
}

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOG_FORMAT = env.str("LOG_FORMAT", default="json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_context": {"()": "core.logging.RequestContextFilter"},
        "redact_secrets": {"()": "core.logging.SecretRedactingFilter"},
    },
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "console": {
            "format": "%(asctime)s %(levelname)-7s [%(request_id)s] %(name)s: %(message)s",
        },
    },
    "handlers": {
        "default": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "console",
            "filters": ["request_context", "redact_secrets"],
        },
    },
    "root": {"handlers": ["default"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        "celery": {"level": LOG_LEVEL},
    },
}
