"""The per-Page Send API bucket: shared in Redis, slowed by throttles, local without Redis."""

import time

import pytest

from notifications.page_limits import LocalPageBuckets, RedisPageBuckets, page_rate
from notifications.tests.conftest import DELIVERY_REDIS


@pytest.fixture(params=["redis", "local"])
def buckets(request, settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 100, "p2": 100}
    return RedisPageBuckets(DELIVERY_REDIS) if request.param == "redis" else LocalPageBuckets()


def test_the_bucket_hands_out_the_limit_less_its_headroom(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 300}

    rate, burst = page_rate("p1")

    assert rate == pytest.approx(270) and burst == pytest.approx(13.5)


def test_a_small_burst_is_granted_then_tokens_come_at_the_rate(buckets):
    first = buckets.take("p1", 50)
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < 0.5:
        grant = buckets.take("p1", 50)
        granted += grant.granted
        time.sleep(0.01)

    assert first.granted == 4  # 50 ms worth of 90/s
    assert 38 <= granted <= 50  # 0.5 s at 90/s
    assert 0 < grant.wait <= 1 / 90 + 0.001


def test_pages_have_their_own_buckets(buckets):
    buckets.take("p1", 50)

    assert buckets.take("p2", 4).granted == 4


def test_a_throttle_stops_the_page_for_its_wait_then_halves_its_rate(buckets):
    buckets.throttle("p1", 1.2)

    stopped = buckets.take("p1", 5)
    time.sleep(1.45)
    after = buckets.take("p1", 100)

    assert stopped.granted == 0 and 1.1 < stopped.wait <= 1.2
    assert 1 <= after.granted <= 2  # half the burst (2 tokens) after the pause


def test_the_redis_bucket_is_one_for_every_worker(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 100}
    one, two = RedisPageBuckets(DELIVERY_REDIS), RedisPageBuckets(DELIVERY_REDIS)

    granted = one.take("p1", 50).granted + two.take("p1", 50).granted

    assert granted == 4


def test_an_unreachable_redis_fails_closed(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 100}
    buckets = RedisPageBuckets("redis://127.0.0.1:1/0")

    grant = buckets.take("p1", 5)

    assert grant.granted == 0 and grant.wait > 0
