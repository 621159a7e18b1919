"""The per-Page Send API bucket: shared in Redis, slowed by throttles, local without Redis."""

import time

import pytest

from linking.tests.factories import IntegrationFactory
from notifications import page_limits, services
from notifications.page_limits import LocalPageBuckets, RedisPageBuckets, page_limit, page_rate
from notifications.tests.conftest import DELIVERY_REDIS
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import post
from portal.models import MessengerIntegration
from portal.tests.factories import BankFactory


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


# The Page's own limit, set by its bank's staff


def busiest_second(stamps: list[float]) -> int:
    return max((sum(1 for t in stamps if s <= t < s + 1.0) for s in stamps), default=0)


def test_a_page_set_to_n_gets_no_more_than_n_grants_in_a_second(buckets):
    stamps: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < 1.5:
        grant = buckets.take("p3", 50, setting=40)
        stamps += [time.monotonic()] * grant.granted
        time.sleep(0.005)

    assert 30 <= busiest_second(stamps) <= 40  # 90% of 40, and 50 ms of burst


def test_a_throttle_halves_the_rate_the_page_is_set_to(buckets):
    buckets.throttle("p3", 1.0)
    time.sleep(1.05)
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < 1.0:
        granted += buckets.take("p3", 50, setting=40).granted
        time.sleep(0.01)

    assert 14 <= granted <= 20  # half of 36/s


def test_the_page_s_setting_only_ever_lowers_the_platform_s_limit(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMIT = 300
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p2": 50}

    assert page_limit("p1", 300) == 300
    assert page_limit("p1", 120) == 120
    assert page_limit("p2", 120) == 50  # the deployment's word for a fake Send API
    settings.NOTIFICATIONS_PAGE_RATE_LIMIT = 20
    assert (page_limit("p1", 300), page_limit("p1", 120)) == (20, 20)
    settings.NOTIFICATIONS_PAGE_RATE_LIMIT = 100_000  # a benchmark's unlimited fake
    assert (page_limit("p1", 300), page_limit("p1", 120)) == (100_000, 120)


def test_a_caller_without_the_integration_reads_the_page_s_setting_again_after_a_while(
    db, monkeypatch
):
    integration = IntegrationFactory(bank=BankFactory(), page_id="2233445566", send_rate_limit=60)

    assert page_limit("2233445566") == 60
    MessengerIntegration.objects.filter(pk=integration.pk).update(send_rate_limit=30)
    assert page_limit("2233445566") == 60  # kept for SETTING_TTL
    monkeypatch.setattr(page_limits, "SETTING_TTL", 0.0)
    page_limits._settings_read.clear()
    assert page_limit("2233445566") == 30
    assert page_limit("9999999999") == 300  # a Page no bank has: the platform's limit


def test_delivery_keeps_a_page_within_the_limit_its_bank_set(linked, linked_api, graph):
    MessengerIntegration.objects.filter(pk=linked.integration.pk).update(send_rate_limit=10)
    stamps: list[float] = []

    def stamp(body):
        stamps.append(time.monotonic())

    graph.answers = [stamp] * 100
    accounts = [linked.person()[0] for _ in range(10)]
    post(linked_api, *[event_payload(account=a) for a in accounts for _ in range(3)])

    services.deliveries_run(seconds=2.5, batch_size=30)

    assert len(stamps) >= 15  # sending went on…
    assert busiest_second(stamps) <= 10  # …at no more than the Page's 10 calls a second
