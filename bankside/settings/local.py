"""Development and demo settings: runs with nothing but Python.

With no `DATABASE_URL` the data lives in a SQLite file under `var/`; with no `REDIS_URL`
Celery uses Kombu's filesystem transport under `var/broker/`, so a real worker still
delivers asynchronously. Set both to use PostgreSQL and Redis instead.
"""

from pathlib import Path

from .base import *  # noqa: F403
from .base import VAR_DIR, database_from_env, env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="insecure-local-only-key-never-use-in-production-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=True)
# The demo's bank systems run on this machine.
OUTBOUND_ALLOW_PRIVATE_HOSTS = env.bool("OUTBOUND_ALLOW_PRIVATE_HOSTS", default=True)
if SANDBOX_ENABLED:
    INSTALLED_APPS = [*INSTALLED_APPS, "sandbox"]  # noqa: F405
    # The sandbox runs on this machine: let the link flow send browsers back to it.
    LINK_REDIRECT_ALLOWED_HOSTS = [*LINK_REDIRECT_ALLOWED_HOSTS, "localhost", "127.0.0.1"]  # noqa: F405
    LINK_REDIRECT_LOCAL_PATHS = ["/sandbox/link/done"]
    # m.me links open the sandbox's chat, as they would open Messenger.
    MESSENGER_ME_URL = env.str("MESSENGER_ME_URL", default=f"{PUBLIC_BASE_URL}/sandbox/m.me")  # noqa: F405
LOG_FORMAT = env.str("LOG_FORMAT", default="console")
LOGGING["handlers"]["default"]["formatter"] = "json" if LOG_FORMAT == "json" else "console"  # noqa: F405

VAR_DIR.mkdir(exist_ok=True)
DATABASES = {"default": database_from_env(default=f"sqlite:///{VAR_DIR / 'bankside.sqlite3'}")}

if not PSEUDONYM_KEYS:  # noqa: F405
    # The references the demo has made so far were keyed with SECRET_KEY.
    PSEUDONYM_KEYS = [SECRET_KEY]

if not FIELD_ENCRYPTION_KEYS:  # noqa: F405
    # A fixed development key, so the demo works out of the box. Production refuses to
    # start without its own keys.
    FIELD_ENCRYPTION_KEYS = ["x3d684LTE8l76tBIJ3jOjEPkvm_pHFC_t0YSW_GsUyo="]

(VAR_DIR / "static").mkdir(exist_ok=True)
STORAGES["staticfiles"]["BACKEND"] = "django.contrib.staticfiles.storage.StaticFilesStorage"  # noqa: F405

if not CELERY_BROKER_URL:  # noqa: F405
    broker_dir = Path(env.str("EMBEDDED_BROKER_DIR", default=str(VAR_DIR / "broker")))
    for folder in ("queue", "processed", "control"):
        (broker_dir / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(broker_dir / "queue"),
        "data_folder_out": str(broker_dir / "queue"),
        "processed_folder": str(broker_dir / "processed"),
        "control_folder": str(broker_dir / "control"),
        "store_processed": False,
    }
