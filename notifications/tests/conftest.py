import itertools
import json

import httpx
import pytest
import redis
from django.conf import settings as django_settings
from rest_framework.test import APIClient

import messenger
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from notifications import page_limits
from notifications.tests.factories import contact_for, link_for
from notifications.tests.months import old_partitions  # noqa: F401  (past months made, then dropped)
from portal.tests.conftest import sign_in  # noqa: F401  (staff sign-in, second factor included)
from portal.tests.factories import BankFactory, api_key_for

# The delivery engine's per-Page buckets: a Redis database of their own in tests.
DELIVERY_REDIS = django_settings.TEST_PAGE_BUCKETS_REDIS_URL


@pytest.fixture(autouse=True)
def _page_buckets_in_test_redis(settings):
    """Every test starts with full Page buckets: none is left throttled."""
    settings.NOTIFICATIONS_REDIS_URL = DELIVERY_REDIS
    client = redis.Redis.from_url(DELIVERY_REDIS)
    keys = list(client.scan_iter(f"{page_limits.KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    client.close()
    page_limits._buckets.cache_clear()
    page_limits._settings_read.clear()


_psids = itertools.count(7_000_000_000_000_001)


class Linked:
    """A bank with the default policies and templates, live on a Page, and Ana linked."""

    def __init__(self, *, bank, integration, customer, card, checking, consent) -> None:
        self.bank, self.integration, self.customer = bank, integration, customer
        self.card, self.checking, self.consent = card, checking, consent

    def person(self, *, scopes=None, accounts=None, name="Customer", window=True):
        """Another customer of the bank, linked with `scopes` on the same Page."""
        customer = CustomerFactory(bank=self.bank, name=name)
        account = AccountFactory(customer=customer, last4="5555")
        consent = link_for(
            customer,
            accounts or [account],
            scopes=scopes or ["balances", "transactions", "fraud_alerts", "receipts_shipping"],
            page_id=self.integration.page_id,
            psid=str(next(_psids)),
        )
        if window:
            contact_for(consent)
        return account, consent


@pytest.fixture
def linked(db):
    bank = BankFactory(slug="harbour", notification_defaults=True)
    integration = IntegrationFactory(bank=bank, page_id="1122334455")
    customer = CustomerFactory(bank=bank, external_id="cu-ana", name="Ana Souza", locale="en")
    checking = AccountFactory(customer=customer, external_id="chk-001", last4="4821")
    card = AccountFactory(
        customer=customer, external_id="visa-001", kind="credit_card", last4="9012"
    )
    consent = link_for(
        customer,
        [checking, card],
        scopes=["balances", "transactions", "fraud_alerts", "receipts_shipping"],
        page_id=integration.page_id,
        psid=str(next(_psids)),
    )
    contact_for(consent)
    return Linked(
        bank=bank,
        integration=integration,
        customer=customer,
        card=card,
        checking=checking,
        consent=consent,
    )


@pytest.fixture
def linked_api(linked):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(linked.bank).secret}")
    return client


class FakeGraph:
    """The Send API at the messenger client boundary (an httpx MockTransport).

    Answers success with a fresh message id unless `answers` (a list consumed in order,
    or a callable of the request body) says otherwise; records every body sent.
    """

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.answers: list = []
        self._mids = itertools.count(1)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.sent.append(body)
        answer = self.answers.pop(0) if self.answers else None
        if callable(answer):
            answer = answer(body)
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            return httpx.Response(
                200, json={"recipient_id": body["recipient"]["id"], "message_id": self.mid()}
            )
        return answer

    def mid(self) -> str:
        return f"m_fake_{next(self._mids)}"

    def texts(self) -> list[str]:
        return [b["message"].get("text") for b in self.sent]


def graph_error(code, subcode=None, *, status=400, message="(#x) refused", headers=None):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "trace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers or {})


@pytest.fixture
def graph(monkeypatch):
    fake = FakeGraph()
    client = messenger.GraphClient(
        "https://graph.test", "v23.0", transport=httpx.MockTransport(fake)
    )
    monkeypatch.setattr(messenger, "get_client", lambda: client)
    yield fake
    client.close()
