"""The per-Page Send API bucket: shared in Redis, slowed by throttles, local without Redis."""

import threading
import time

import pytest

from linking.tests.factories import IntegrationFactory
from notifications import page_limits, services
from notifications.page_limits import (
    LocalPageBuckets,
    RedisPageBuckets,
    page_budget,
    page_limit,
)
from notifications.tests.conftest import DELIVERY_REDIS
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import post
from portal.models import MessengerIntegration
from portal.tests.factories import BankFactory


@pytest.fixture(params=["redis", "local"])
def buckets(request, settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 100, "p2": 100}
    return RedisPageBuckets(DELIVERY_REDIS) if request.param == "redis" else LocalPageBuckets()


def test_the_page_s_budget_is_its_whole_limit_with_a_reserve_for_urgent_calls(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 300, "p2": 10}

    budget = page_budget("p1")

    assert (budget.limit, budget.reserve, budget.arrival) == (300, 3, 20.0)
    assert (budget.rate, budget.burst) == (300, 15)
    assert page_budget("p2").reserve == 1  # at least one call, on a small Page too


def test_a_small_burst_is_granted_then_tokens_come_at_the_rate(buckets):
    first = buckets.take("p1", 50)
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < 0.5:
        grant = buckets.take("p1", 50)
        granted += grant.granted
        time.sleep(0.01)

    assert first.granted == 5  # 50 ms worth of 100/s
    assert 44 <= granted <= 51  # 0.5 s at 100/s
    assert 0 < grant.wait <= 1 / 100 + 0.001


def test_pages_have_their_own_buckets(buckets):
    assert buckets.take("p1", 100, urgent=True).granted == 100

    assert buckets.take("p1", 1, urgent=True).granted == 0
    assert buckets.take("p2", 1, urgent=True).granted == 1


def test_a_throttle_stops_the_page_for_its_wait_then_halves_its_rate(buckets):
    buckets.throttle("p1", 1.2)

    stopped = buckets.take("p1", 5)
    time.sleep(1.45)
    after = buckets.take("p1", 100)

    assert stopped.granted == 0 and 1.1 < stopped.wait <= 1.2
    assert 1 <= after.granted <= 2  # the burst of half the limit, 50 ms of 50/s
    assert buckets.take("p1", 100, urgent=True).granted == 50 - after.granted  # halved


def test_the_redis_bucket_is_one_for_every_worker(settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p1": 300}
    one, two = RedisPageBuckets(DELIVERY_REDIS), RedisPageBuckets(DELIVERY_REDIS)

    granted = one.take("p1", 300, urgent=True).granted

    assert granted == 300
    assert two.take("p1", 1, urgent=True).granted == 0  # the other worker finds it spent


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

    assert 36 <= busiest_second(stamps) <= 39  # 40 less the urgent reserve of one


def test_a_throttle_halves_the_rate_the_page_is_set_to(buckets):
    buckets.throttle("p3", 1.0)
    time.sleep(1.05)
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < 1.0:
        granted += buckets.take("p3", 50, setting=40).granted
        time.sleep(0.01)

    assert 15 <= granted <= 20  # half of 40/s, less the urgent reserve of one


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


# The whole budget, and a reserved lane for urgent sends


def saturate(buckets, page: str, seconds: float, *, stamps: list[float] | None = None) -> int:
    """Routine calls as fast as they are granted for `seconds`, each answered at once, as
    the delivery pipeline makes them; returns how many were granted."""
    granted, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        asked = time.monotonic()
        grant = buckets.take(page, 1)
        if grant.granted:
            buckets.answered(page, grant, time.monotonic() - asked)
            granted += 1
            if stamps is not None:
                stamps.append(time.monotonic())
        else:
            time.sleep(min(grant.wait, 0.002))
    return granted


def answered_calls(buckets, page: str, most: int) -> int:
    """Routine calls one at a time, each answered at once, until one must wait."""
    for n in range(most):
        asked = time.monotonic()
        grant = buckets.take(page, 1)
        if not grant.granted:
            return n
        buckets.answered(page, grant, time.monotonic() - asked)
    return most


def test_routine_calls_have_the_whole_limit_less_the_urgent_reserve_every_second(
    buckets, settings, monkeypatch
):
    monkeypatch.setattr(page_limits, "BURST_SECONDS", 1.0)  # the pace out of the way
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p4": 300}

    first = answered_calls(buckets, "p4", 400)
    time.sleep(1.1)
    second = answered_calls(buckets, "p4", 400)

    assert first == second == 297  # 99% of the limit: no headroom, a reserve of 3


def test_an_urgent_take_is_granted_at_once_while_routine_takes_saturate_the_page(buckets, settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}
    saturate(buckets, "p5", 1.2)
    while buckets.take("p5", 1).granted:  # routine takes until they must wait…
        pass

    urgent = buckets.take("p5", 1, urgent=True)

    assert urgent.granted == 1  # …and the urgent one is granted from the reserve


def test_urgent_takes_beyond_the_reserve_get_the_next_free_slot_before_routine_ones(
    buckets, settings, monkeypatch
):
    monkeypatch.setattr(page_limits, "URGENT_HOLD", 0.5)
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.05  # calls never answered: counted 1.05 s
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}
    assert buckets.take("p5", 10, urgent=True).granted == 10  # the whole second spent

    waiting = buckets.take("p5", 1, urgent=True)
    time.sleep(waiting.wait)
    routine = buckets.take("p5", 1)
    urgent = buckets.take("p5", 1, urgent=True)

    assert waiting.granted == 0 and 1.0 < waiting.wait <= 1.05
    assert routine.granted == 0 and routine.wait > 0  # standing aside for the urgent one
    assert urgent.granted == 1


def test_urgent_and_routine_takes_together_never_exceed_the_limit_in_any_second(buckets):
    stamps: list[float] = []
    urgent_granted = 0
    started = time.monotonic()
    while time.monotonic() - started < 2.5:
        saturate(buckets, "p1", 0.05, stamps=stamps)
        for _ in range(3):
            asked = time.monotonic()
            grant = buckets.take("p1", 1, urgent=True)
            if grant.granted:
                buckets.answered("p1", grant, time.monotonic() - asked)
                urgent_granted += 1
                stamps.append(time.monotonic())

    assert urgent_granted >= 10  # more than the reserve of one a second: they went first
    assert busiest_second(stamps) <= 100


def test_a_throttle_halves_the_limit_of_both_lanes_then_it_comes_back(buckets, settings):
    settings.NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS = 0.5
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.05  # calls never answered: counted 1.05 s
    buckets.throttle("p1", 1.0)
    time.sleep(1.05)

    halved = buckets.take("p1", 100, urgent=True).granted
    time.sleep(1.15)  # the cool-down is over, the calls have left the count
    whole = buckets.take("p1", 200, urgent=True).granted

    assert (halved, whole) == (50, 100)


def test_an_answered_call_leaves_the_count_a_second_after_its_answer(buckets, settings):
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.5
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}
    answered = buckets.take("p5", 1, urgent=True)
    buckets.answered("p5", answered, 0.01)
    assert buckets.take("p5", 9, urgent=True).granted == 9  # unanswered: counted 1.5 s

    time.sleep(1.1)

    assert buckets.take("p5", 10, urgent=True).granted == 1


def test_each_call_of_a_group_s_take_leaves_the_count_a_second_after_its_own_answer(
    buckets, settings
):
    """A take for several calls (a group of jobs entering the pool) names each of them, so
    each is answered on its own: the answered ones leave the count, the others stay."""
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.5
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p6": 10}
    group = buckets.take("p6", 4, urgent=True)
    calls = group.each()
    assert [call.granted for call in calls] == [1, 1, 1, 1]
    assert len({call.call for call in calls}) == 4
    for call in calls[:3]:
        buckets.answered("p6", call, 0.01)
    assert buckets.take("p6", 6, urgent=True).granted == 6  # the group counted: 4 of 10

    time.sleep(1.1)

    assert buckets.take("p6", 10, urgent=True).granted == 3  # the unanswered call and 6


def test_a_routine_take_on_a_full_page_books_the_next_slot_to_free_each_its_own(
    buckets, settings, monkeypatch
):
    monkeypatch.setattr(page_limits, "BOOK_AHEAD", 1.5)
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.05  # calls never answered: counted 1.05 s
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}
    assert buckets.take("p5", 10, urgent=True).granted == 10  # the whole second spent

    unbooked = buckets.take("p5", 1)
    booked = [buckets.take("p5", 1, ahead=1.5) for _ in range(10)]

    assert unbooked.granted == 0  # without `ahead`, a take is only ever for now
    # The routine share (10 less the reserve of 1), each booked for when a slot frees…
    assert [grant.granted for grant in booked] == [1] * 9 + [0]
    assert all(1.0 < grant.start_in <= 1.05 and grant.wait == 0 for grant in booked[:9])
    # …and the tenth would have to wait for a booked call's own second to end.
    assert booked[9].wait > 0 and booked[9].start_in == 0


def test_urgent_takes_wait_for_no_booking_made_after_them(buckets, settings, monkeypatch):
    monkeypatch.setattr(page_limits, "BOOK_AHEAD", 1.5)
    monkeypatch.setattr(page_limits, "URGENT_HOLD", 0.5)
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.05
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}
    assert buckets.take("p5", 10, urgent=True).granted == 10

    refused = buckets.take("p5", 1, urgent=True)
    routine = buckets.take("p5", 1, ahead=1.5)

    assert refused.granted == 0
    assert routine.granted == 0 and routine.wait > 0  # no booking while the urgent one waits


def test_booked_routine_and_urgent_calls_never_exceed_the_limit_in_any_second(buckets):
    """Sending threads as the pipeline runs them: each books its call, sleeps until the
    slot is its own, calls, and reports the answer; urgent calls come in meanwhile."""
    stamps: list[float] = []
    lock = threading.Lock()
    counts = {"booked": 0, "urgent": 0}
    stop = time.monotonic() + 2.5

    def sender(urgent: bool) -> None:
        while time.monotonic() < stop:
            asked = time.monotonic()
            grant = buckets.take("p1", 1, urgent=urgent, ahead=0.0 if urgent else 0.03)
            if not grant.granted:
                time.sleep(0.02 if urgent else min(grant.wait, 0.005))
                continue
            time.sleep(grant.start_in)
            with lock:
                stamps.append(time.monotonic())
                counts["booked"] += grant.start_in > 0
                counts["urgent"] += urgent
            buckets.answered("p1", grant, time.monotonic() - asked)
            if urgent:
                time.sleep(0.02)  # an alert now and then

    threads = [threading.Thread(target=sender, args=(n == 0,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert counts["booked"] > 0 and counts["urgent"] > 0
    assert busiest_second(stamps) <= 100


def test_a_throttled_page_books_nothing_while_stopped_then_half_then_all_again(
    buckets, settings, monkeypatch
):
    """As the platform would have it: a 613 stops the Page, then it runs at half its
    limit for the cool-down, bookings included, then at the whole of it."""
    monkeypatch.setattr(page_limits, "BOOK_AHEAD", 1.5)
    settings.NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS = 1.5  # half rate until 2.5 s
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 0.05  # calls never answered: counted 1.05 s
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {"p5": 10}

    def booked(limit: int) -> list[int]:
        # The Page's whole second taken, then routine calls booked for the slots it frees.
        urgent = buckets.take("p5", limit, urgent=True).granted
        return [urgent, sum(buckets.take("p5", 1, ahead=1.5).granted for _ in range(10))]

    buckets.throttle("p5", 1.0)
    stopped = buckets.take("p5", 1, ahead=1.5)
    time.sleep(1.05)
    halved = booked(5)  # 5 a second, 1 of them reserved for urgent calls
    time.sleep(2.2)  # the cool-down is over, every call has left the count (3.15 s)
    whole = booked(10)

    assert stopped.granted == 0 and stopped.wait > 0.9
    assert (halved, whole) == ([5, 4], [10, 9])
