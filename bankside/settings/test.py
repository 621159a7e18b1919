"""Test settings: a real PostgreSQL and a real Redis, as in production.

`DATABASE_URL` and `REDIS_URL` default to the servers on 127.0.0.1. `make test` checks
that both answer before running the suite and says what to start if they do not.
"""

from .base import *  # noqa: F403
from .base import VAR_DIR, database_from_env, env

DEBUG = False
SECRET_KEY = "test-secret-key-not-used-anywhere-else-0123456789-abcdefghij"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
DATABASES = {"default": database_from_env(default="postgres://postgres@127.0.0.1:5432/bankside")}
# Live-server request threads come and go: each closes its connection when done.
DATABASES["default"]["CONN_MAX_AGE"] = 0
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
CELERY_BROKER_URL = REDIS_URL
# The Page buckets and the API's rate limits get Redis databases of their own in tests, so
# that two suites run side by side on one Redis set these three apart.
TEST_PAGE_BUCKETS_REDIS_URL = env.str(
    "TEST_PAGE_BUCKETS_REDIS_URL", default="redis://127.0.0.1:6379/12"
)
TEST_API_LIMITS_REDIS_URL = env.str(
    "TEST_API_LIMITS_REDIS_URL", default="redis://127.0.0.1:6379/13"
)
FIELD_ENCRYPTION_KEYS = [
    "u3rSADol4Lsolz554n6zp4Qfpd7V07BwKxGrIB-kwqU=",
    "sogV-7SYi0a2aq0gaAk1VIwZM6CiuuDPETTXlIaj2s4=",
]
PSEUDONYM_KEYS = ["test-pseudonym-key-not-used-anywhere-else-0123456789"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
(VAR_DIR / "static").mkdir(parents=True, exist_ok=True)
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405
SANDBOX_ENABLED = True
# As in production; a test whose peer listens on loopback allows it for itself.
OUTBOUND_ALLOW_PRIVATE_HOSTS = False
if SANDBOX_ENABLED:
    INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]  # noqa: F405
    # The sandbox runs on this machine: let the link flow send browsers back to it.
    LINK_REDIRECT_ALLOWED_HOSTS = [*LINK_REDIRECT_ALLOWED_HOSTS, "localhost", "127.0.0.1"]  # noqa: F405
    LINK_REDIRECT_LOCAL_PATHS = ["/sandbox/link/done"]
LOG_FORMAT = "console"
LOGGING["handlers"]["default"]["formatter"] = "console"  # noqa: F405
