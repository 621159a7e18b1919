"""Settings for the API benchmark's gunicorn (bench/api.py): the production settings, with
the benchmark's database, a Celery queue of its own, and one bench-only URL.

Everything that makes production production stays: DEBUG off, persistent database
connections, Redis-backed rate limits and cache, HTTPS redirects (the load generator
sends `X-Forwarded-Proto: https`, as the TLS proxy in front of production does). Only the
secrets are fixed values that nothing else uses.
"""

import os

os.environ.setdefault(
    "SECRET_KEY", "bench-api-secret-key-used-only-by-the-benchmark-0123456789abcdefghij"
)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,localhost")
# Production wants an https address with a host name (staff passkeys are bound to it); the
# benchmark serves the API on loopback, where nothing follows the links it writes.
os.environ.setdefault("PUBLIC_BASE_URL", "https://localhost")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("FIELD_ENCRYPTION_KEYS", "u3rSADol4Lsolz554n6zp4Qfpd7V07BwKxGrIB-kwqU=")
os.environ.setdefault(
    "AUDIT_CHECKPOINT_SIGNING_KEY", "YmVuY2gtb25seSBlZDI1NTE5IGtleSAzMiBieXRlcyE="
)
os.environ.setdefault(
    "PSEUDONYM_KEYS", "bench-api-pseudonym-key-used-only-by-the-benchmark-0123456789"
)
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bankside")

from bankside.settings.production import *  # noqa: F403
from bankside.settings.production import DATABASES

DATABASES["default"]["NAME"] = os.environ["BENCH_DATABASE_NAME"]
# The scale benchmark (bench/scale.py) reaches PostgreSQL through a latency proxy.
if os.environ.get("BENCH_DATABASE_PORT"):
    DATABASES["default"]["HOST"] = "127.0.0.1"
    DATABASES["default"]["PORT"] = os.environ["BENCH_DATABASE_PORT"]
DATABASES["default"]["CONN_MAX_AGE"] = 600
# The benchmark's own queue: its delivery nudges never reach anyone else's workers.
CELERY_TASK_DEFAULT_QUEUE = os.environ["BENCH_QUEUE"]
# The bare DRF one-row insert the API is compared with; never part of production URLs.
ROOT_URLCONF = "bench.api_urls"
