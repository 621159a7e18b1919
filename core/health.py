"""Probes of the servers bankside needs, for health checks and for `check_services`."""

from celery import current_app as celery_app
from django.conf import settings
from django.db import connections


def database_error(alias: str = "default") -> str | None:
    """None when the database answers a query, else what went wrong."""
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure is the answer
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def broker_error(timeout: float = 3.0) -> str | None:
    """None when the Celery broker accepts a connection, else what went wrong."""
    try:
        with celery_app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}".strip()
    return None


def broker_description() -> str:
    url = settings.CELERY_BROKER_URL
    if url.startswith("filesystem://"):
        return "embedded filesystem broker"
    with celery_app.connection_for_write() as connection:
        return str(connection.as_uri())  # the password is masked by kombu
