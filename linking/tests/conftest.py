import contextlib
import re

import httpx
import pytest
from celery.contrib.testing.worker import start_worker

from bankside.celery import app as celery_app
from linking import services
from linking.tests.factories import IntegrationFactory
from notifications.services import deliveries_nudge_taken
from portal.audit import Actor
from portal.tests.conftest import sign_in  # noqa: F401  (staff sign-in, second factor included)
from portal.tests.factories import BankFactory

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@contextlib.contextmanager
def celery_worker():
    """A real Celery worker on the test Redis, running tasks in a thread of this process.

    Starting it purges the queue: whatever was enqueued before is lost, as after a
    broker flush, and so no delivery nudge is pending any more.
    """
    from celery.signals import task_postrun
    from django.db import connections

    def close_connections(**kwargs):
        connections.close_all()  # the worker thread's own, before the test database goes

    task_postrun.connect(close_connections, weak=False)
    celery_app.control.purge()
    deliveries_nudge_taken()  # the purged nudges are no longer pending
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            yield
    finally:
        task_postrun.disconnect(close_connections)


@pytest.fixture
def worker(transactional_db):
    """`celery_worker` for the length of a test."""
    with celery_worker():
        yield


@pytest.fixture
def harbour(live_server, settings):
    """A bank whose integration points at the sandbox, with its Page registered there."""
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    bank = BankFactory(name="Harbour Bank", slug="harbour")
    integration = IntegrationFactory(bank=bank, page_id="1122334455")
    response = httpx.post(
        f"{live_server.url}/sandbox/api/pages",
        json={
            "page_id": integration.page_id,
            "name": "Harbour Bank",
            "access_token": integration.page_access_token,
            "app_secret": integration.app_secret,
            "webhook_url": f"{live_server.url}/webhooks/messenger/harbour/",
            "verify_token": integration.verify_token,
        },
        timeout=10,
    )
    assert response.status_code in {200, 201}, response.text
    customer = services.customer_upsert(
        actor=Actor("api_key", "1", "core"),
        bank=bank,
        external_id="cu-ana",
        name="Ana Souza",
        locale="en",
        accounts=[
            {
                "id": "chk",
                "kind": "checking",
                "name": "Everyday account",
                "last4": "4821",
                "currency": "EUR",
                "balance": "1204.50",
            },
            {
                "id": "visa",
                "kind": "credit_card",
                "name": "Visa card",
                "last4": "9012",
                "currency": "EUR",
                "balance": "-80.00",
            },
        ],
        directory_username="ana",
        directory_password="open sesame 42",
    )
    return bank, integration, customer


class Browser:
    """A cookie-keeping HTTP client that fills in forms the way a person's browser would."""

    def __init__(self) -> None:
        self.http = httpx.Client(timeout=15, follow_redirects=True)

    def get(self, url: str) -> httpx.Response:
        return self.http.get(url)

    def submit(self, page: httpx.Response, data: dict, action: str | None = None):
        token = CSRF.search(page.text)
        assert token, "the page has no form"
        return self.http.post(
            action or str(page.url), data={"csrfmiddlewaretoken": token.group(1), **data}
        )

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def browser_http():
    client = Browser()
    yield client
    client.close()
