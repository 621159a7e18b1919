"""Fixtures of the core-banking API's tests: a bank, its API key, a client and a card.

Test modules that call `/api/v1/` import these into their conftest.
"""

import pytest
from django.conf import settings as django_settings
from rest_framework.test import APIClient

from linking.tests.factories import AccountFactory, CustomerFactory
from portal.tests.factories import BankFactory, api_key_for

TEST_REDIS = django_settings.TEST_API_LIMITS_REDIS_URL


@pytest.fixture(autouse=True)
def _rate_limits_in_test_redis(settings):
    """The API's rate-limit buckets have a Redis database of their own."""
    settings.API_RATE_LIMIT_REDIS_URL = TEST_REDIS


class Clock:
    """A monotonic clock moved by hand: `now` is what it reads."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def kept_callers_clock(monkeypatch) -> Clock:
    """The clock by which a web process ages the API keys it keeps
    (`core.api.auth.KeptCallers`)."""
    from core.api import auth

    clock = Clock()
    monkeypatch.setattr(auth.time, "monotonic", clock)
    return clock


@pytest.fixture
def bank(db):
    return BankFactory(slug="harbour")


@pytest.fixture
def issued(bank):
    return api_key_for(bank, name="Core banking")


@pytest.fixture
def api(issued):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    return client


@pytest.fixture
def card(bank):
    """Ana's Visa card, the account the example events are about."""
    customer = CustomerFactory(bank=bank, external_id="cu-ana", name="Ana Souza")
    AccountFactory(customer=customer, external_id="chk-001", last4="4821")
    return AccountFactory(
        customer=customer, external_id="visa-001", kind="credit_card", last4="9012"
    )
