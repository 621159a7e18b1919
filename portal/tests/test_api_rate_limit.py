import logging

import pytest
import redis
from django.core.management import call_command
from rest_framework.test import APIClient

from core.api.throttling import _buckets
from notifications.tests.problems import assert_problem
from portal.models import ApiKeyRateLimit
from portal.tests.factories import api_key_for

pytestmark = pytest.mark.django_db

WHOAMI = "/api/v1/whoami"


@pytest.fixture
def tight(issued):
    """This key may make 3 requests at once, then 1 every 10 seconds."""
    call_command("api_rate_limit", "--key", issued.secret, "--per-second", "0.1", "--burst", "3")
    return issued


def test_a_key_past_its_burst_gets_429_with_retry_after(api, tight):
    answers = [api.get(WHOAMI).status_code for _ in range(3)]

    response = api.get(WHOAMI)

    assert answers == [200, 200, 200]
    body = assert_problem(response, 429)
    assert body["code"] == "throttled"
    assert 1 <= int(response["Retry-After"]) <= 10


def test_each_key_has_its_own_bucket(api, tight, bank):
    for _ in range(4):
        api.get(WHOAMI)
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key_for(bank, name='Other').secret}")

    assert other.get(WHOAMI).status_code == 200


def test_without_redis_the_limit_holds_in_process(api, tight, settings):
    settings.API_RATE_LIMIT_REDIS_URL = settings.REDIS_URL = ""
    _buckets.cache_clear()
    try:
        answers = [api.get(WHOAMI).status_code for _ in range(4)]
    finally:
        _buckets.cache_clear()

    assert answers == [200, 200, 200, 429]


def test_a_key_returns_to_the_default_limit(api, tight):
    call_command("api_rate_limit", "--key", tight.secret, "--reset")

    assert not ApiKeyRateLimit.objects.exists()
    assert [api.get(WHOAMI).status_code for _ in range(5)] == [200] * 5


def test_an_unreachable_redis_lets_requests_through_and_says_so(api, tight, settings, caplog):
    settings.API_RATE_LIMIT_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there

    with caplog.at_level(logging.WARNING, logger="core.api.throttling"):
        answers = [api.get(WHOAMI).status_code for _ in range(5)]

    assert answers == [200] * 5
    assert "Redis unavailable, request allowed" in caplog.text


def test_the_limit_holds_when_redis_has_forgotten_its_script(api, tight, settings):
    answers = [api.get(WHOAMI).status_code for _ in range(2)]
    redis.Redis.from_url(settings.API_RATE_LIMIT_REDIS_URL).script_flush()  # as a restart does

    answers += [api.get(WHOAMI).status_code for _ in range(2)]

    assert answers == [200, 200, 200, 429]
