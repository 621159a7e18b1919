import logging
import time
import uuid

import pytest
import redis
from django.core.management import call_command
from rest_framework.test import APIClient

from core.api.throttling import RedisTokenBuckets, _buckets
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


def _takes_for(buckets, key, per_second, burst, seconds):
    """Take from `buckets` as fast as one thread can for `seconds`: (takes, allowed)."""
    takes = allowed = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        takes += 1
        allowed += buckets.take(key, per_second, burst)[0]
    return takes, allowed


def _takes_counted(buckets):
    """The bucket commands (`EVALSHA`) `buckets` sends to Redis, as it sends them."""
    sent = []
    call = buckets.line.call

    def counted(packed):
        if b"EVALSHA" in b"".join(packed):
            sent.append(packed)
        return call(packed)

    buckets.line.call = counted
    return sent


@pytest.fixture
def bucket_key(settings):
    key = f"bankside:api-rate:test-{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(settings.API_RATE_LIMIT_REDIS_URL).delete(key)


def test_a_busy_key_takes_its_tokens_from_redis_a_few_at_a_time(settings, bucket_key):
    """A process posting hundreds of times a second asks Redis once per lease, not once
    per request."""
    buckets = RedisTokenBuckets(settings.API_RATE_LIMIT_REDIS_URL)
    calls = _takes_counted(buckets)

    takes, allowed = _takes_for(buckets, bucket_key, 1e6, 10**6, 0.4)

    assert allowed == takes
    assert len(calls) * 5 < takes


def test_leases_never_grant_a_key_more_than_its_bucket_over_all_processes(settings, bucket_key):
    """Two web processes serving one key: together they get no more than the burst and
    what the key earns meanwhile, and the tokens one holds unused stop the other only
    briefly."""
    per_second, burst = 200, 100  # leases of up to 10 tokens
    first, second = (RedisTokenBuckets(settings.API_RATE_LIMIT_REDIS_URL) for _ in range(2))
    started = time.monotonic()
    allowed = takes = 0
    # Past several leases, and at least as many takes as the bucket could ever grant here.
    while time.monotonic() < started + 0.3 or takes < 300:
        for buckets in (first, second, second):  # one process twice as busy
            allowed += buckets.take(bucket_key, per_second, burst)[0]
            takes += 1
    elapsed = time.monotonic() - started

    assert allowed <= burst + per_second * elapsed + 1
    assert allowed >= burst - 2 * burst // 10


def test_a_key_earning_few_tokens_a_second_is_never_leased_ahead(settings, bucket_key):
    """At 5 tokens a second every request asks Redis, and a process holds no token the
    next one could have had."""
    first, second = (RedisTokenBuckets(settings.API_RATE_LIMIT_REDIS_URL) for _ in range(2))
    calls = _takes_counted(first)

    answers = [first.take(bucket_key, 5, 100)[0] for _ in range(100)]

    assert answers == [True] * 100
    assert len(calls) == 100
    assert second.take(bucket_key, 5, 100)[0] is False
