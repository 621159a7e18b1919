"""Delivery metrics for Prometheus, served at `/metrics` to a scraper holding `METRICS_TOKEN`.

Workers run in several processes, so their counters live in one Redis hash
(`NOTIFICATIONS_METRICS_KEY` in `NOTIFICATIONS_REDIS_URL`, default `REDIS_URL`), added to
atomically: each group of recorded results is one pipeline of `HINCRBY`s. Rate-limit
waits are counted in the process as they happen and go out with the next group.
A scrape reads the hash and counts the outbox in PostgreSQL at that moment:

- `bankside_outbox_notifications{state}`: notifications pending, held, in flight or
  dead-lettered (a gauge);
- `bankside_outbox_queue_notifications{urgency}` and
  `bankside_outbox_oldest_due_seconds{urgency}`: pending notifications by class, urgent
  or routine, and how long the oldest due one at the head of its person's queue has been
  due (gauges);
- `bankside_partition_months_ready{table}`: months from this one on whose partition exists,
  for the tables partitioned by month (README "Partitions"): alert below 2;
- `bankside_notification_sends_total{outcome}`: Send API calls by outcome class;
- `bankside_notification_send_latency_seconds`: from the event accepted (or the
  notification replayed) to the Send API's answer, for messages sent (a histogram);
- `bankside_message_echoes_total{outcome}`: echoes by what they did (`settled` an
  uncertain send, `confirmed` a recorded one, `unknown` reference, `duplicate`, …), and
  `bankside_notification_settled_by_echo_total`: notifications made sent by their echo,
  `bankside_notification_resent_after_no_echo_total`: uncertain sends sent again, once,
  because no echo came within `NOTIFICATIONS_ECHO_WAIT_SECONDS`;
- `bankside_page_rate_limit_waits_total` and `bankside_page_rate_limit_wait_seconds_total`:
  how often and how long senders waited for a Page's rate limit;
- `bankside_webhook_events_unmodelled_total{type}` and
  `bankside_webhook_events_unreadable_total{type}`: signed webhook events the product does
  not model (a `message_edit`, a `policy_enforcement`…) or could not read, by event type.

Metrics never stop delivery: when Redis fails, the numbers are dropped and logged.
Without Redis (the demo) each process counts for itself.
"""

import hmac
import logging
import threading
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from functools import cache

import redis
from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector, CollectorRegistry

log = logging.getLogger(__name__)

# Upper bounds of the latency buckets, in seconds: milliseconds to quiet hours' end.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)
SENDS = "sends:"  # + the attempt's outcome class
LATENCY_BUCKET = "latency:le:"  # + the bucket's bound, or "+Inf"
LATENCY_SUM, LATENCY_COUNT = "latency:sum", "latency:count"
WAITS, WAIT_SECONDS = "waits:count", "waits:seconds"
ECHOES = "echoes:"  # + what the echo did (`MessageEcho.Outcome`, or "duplicate")
RESENT = "resent:no_echo"  # uncertain sends sent again after no echo came
SETTLED = "settled:echo"  # notifications made sent by their message's echo
HANDED_BACK = "handed_back:"  # + why (`HandBackReason`): notification.undeliverable callbacks
UNMODELLED, UNREADABLE = "webhook:unmodelled:", "webhook:unreadable:"  # + the event type
SENT = "sent"


def _bucket_field(seconds: float) -> str:
    for bound in LATENCY_BUCKETS:
        if seconds <= bound:
            return f"{LATENCY_BUCKET}{bound:g}"
    return f"{LATENCY_BUCKET}+Inf"


# Storage: one Redis hash shared by every process, or this process's own counters.


class RedisCounters:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    def add(self, counts: dict[str, int], amounts: dict[str, float]) -> None:
        key = settings.NOTIFICATIONS_METRICS_KEY
        pipe = self.client.pipeline(transaction=False)
        for name, n in counts.items():
            pipe.hincrby(key, name, n)
        for name, amount in amounts.items():
            pipe.hincrbyfloat(key, name, amount)
        pipe.execute()

    def read(self) -> dict[str, float]:
        raw = self.client.hgetall(settings.NOTIFICATIONS_METRICS_KEY)
        return {name.decode(): float(value) for name, value in raw.items()}


class LocalCounters:
    """Without Redis: this process's counters only."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values: Counter[str] = Counter()

    def add(self, counts: dict[str, int], amounts: dict[str, float]) -> None:
        with self.lock:
            self.values.update(counts)
            self.values.update(amounts)

    def read(self) -> dict[str, float]:
        with self.lock:
            return {name: float(value) for name, value in self.values.items()}


@cache
def _counters(url: str) -> RedisCounters | LocalCounters:
    return RedisCounters(url) if url.startswith(("redis://", "rediss://")) else LocalCounters()


def counters() -> RedisCounters | LocalCounters:
    return _counters(settings.NOTIFICATIONS_REDIS_URL or settings.REDIS_URL or "")


# Recording, from the delivery engine


_waits_lock = threading.Lock()
_waits = {"count": 0, "seconds": 0.0}


def rate_limit_wait_observe(short: int, seconds: float) -> None:
    """A Page's bucket granted `short` tokens fewer than asked: the sender waits `seconds`.

    Called from the sending threads; counted here and written with the next results.
    """
    if short <= 0:
        return
    with _waits_lock:
        _waits["count"] += 1
        _waits["seconds"] += max(0.0, seconds)


def results_observe(results: Iterable) -> None:
    """Count a group of recorded delivery results (`services.delivery.jobs.Result`).

    One Redis round trip: sends by outcome class, the latency of each message sent,
    and the rate-limit waits counted since the last group.
    """
    counts: Counter[str] = Counter()
    latency_sum = 0.0
    for result in results:
        if not result.outcome:  # no call was made
            continue
        counts[SENDS + result.outcome] += 1
        if result.outcome == SENT and result.started_at is not None:
            answered = result.started_at + timedelta(milliseconds=result.latency_ms or 0)
            seconds = max(0.0, (answered - result.job.queued_at).total_seconds())
            counts[_bucket_field(seconds)] += 1
            counts[LATENCY_COUNT] += 1
            latency_sum += seconds
    with _waits_lock:
        waits, wait_seconds = _waits["count"], _waits["seconds"]
        _waits["count"], _waits["seconds"] = 0, 0.0
    if waits:
        counts[WAITS] += waits
    amounts = {
        name: value
        for name, value in ((LATENCY_SUM, latency_sum), (WAIT_SECONDS, wait_seconds))
        if value
    }
    if not counts and not amounts:
        return
    try:
        counters().add(dict(counts), amounts)
    except Exception:
        log.warning(
            "delivery metrics not recorded: %d counts dropped", counts.total(), exc_info=True
        )


def echo_observe(outcome: str, n: int = 1) -> None:
    """Count echoes by what they did: `settled` an uncertain send, `confirmed` a recorded
    one, an `unknown` reference, a `duplicate`, a `page_inbox` message, …"""
    _add({ECHOES + outcome: n})


def settled_observe(n: int) -> None:
    """`n` notifications were made sent by their message's echo, whatever their call said."""
    _add({SETTLED: n})


def resend_observe(n: int) -> None:
    """`n` uncertain sends were handed to the Send API again: no echo came in time."""
    _add({RESENT: n})


def handed_back_observe(by_reason: dict[str, int]) -> None:
    """Notifications handed back to the bank (`notification.undeliverable`), by reason."""
    _add({HANDED_BACK + reason: n for reason, n in by_reason.items()})


def _add(counts: dict[str, int]) -> None:
    try:
        counters().add(counts, {})
    except Exception:
        log.warning("delivery metrics not recorded: %s dropped", counts, exc_info=True)


def webhook_event_not_applied_observe(event_type: str, *, readable: bool) -> None:
    """Count one webhook event the product does not model (or could not read), by type."""
    name = (UNMODELLED if readable else UNREADABLE) + event_type
    try:
        counters().add({name: 1}, {})
    except Exception:
        log.warning("webhook metrics not recorded: one %s event dropped", event_type, exc_info=True)


# Reading, for a scrape


class DeliveryCollector(Collector):
    """The delivery metrics at the moment of a scrape (see the module's docstring)."""

    def collect(self):
        from notifications.models import Notification
        from notifications.selectors import (
            outbox_depth,
            outbox_queue_by_class,
            partition_months_ready,
        )

        depth = GaugeMetricFamily(
            "bankside_outbox_notifications",
            "Notifications in the outbox by state: pending, held, in flight, dead-lettered.",
            labels=["state"],
        )
        states = outbox_depth()
        for state, count in states.items():
            depth.add_metric([state], count)
        yield depth

        queue = GaugeMetricFamily(
            "bankside_outbox_queue_notifications",
            "Pending notifications by class: urgent or routine.",
            labels=["urgency"],
        )
        oldest = GaugeMetricFamily(
            "bankside_outbox_oldest_due_seconds",
            "By class, how long the oldest due notification at the head of its person's "
            "queue has been due (0 with none due).",
            labels=["urgency"],
        )
        pending = states[Notification.State.PENDING]
        for urgency, by_class in outbox_queue_by_class(pending=pending).items():
            queue.add_metric([urgency], by_class.depth)
            oldest.add_metric([urgency], by_class.oldest_due_seconds)
        yield queue
        yield oldest

        ready = GaugeMetricFamily(
            "bankside_partition_months_ready",
            "By month-partitioned table, the months from this one on that have their "
            "partition (beat keeps NOTIFICATIONS_PARTITIONS_AHEAD + 1; at 0 rows fail).",
            labels=["table"],
        )
        for table, months in partition_months_ready().items():
            ready.add_metric([table], months)
        yield ready

        values = counters().read()
        sends = CounterMetricFamily(
            "bankside_notification_sends",
            "Send API calls by outcome class.",
            labels=["outcome"],
        )
        for name in sorted(values):
            if name.startswith(SENDS):
                sends.add_metric([name.removeprefix(SENDS)], values[name])
        yield sends

        cumulative, buckets = 0.0, []
        for bound in [f"{b:g}" for b in LATENCY_BUCKETS] + ["+Inf"]:
            cumulative += values.get(LATENCY_BUCKET + bound, 0.0)
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "bankside_notification_send_latency_seconds",
            "From the event accepted (or the notification replayed) to the Send API's answer, "
            "for messages sent.",
            buckets=buckets,
            sum_value=values.get(LATENCY_SUM, 0.0),
        )
        echoes = CounterMetricFamily(
            "bankside_message_echoes",
            "Echoes of messages the Page sent, by what they did: settled (an uncertain send "
            "found sent), confirmed, early, extra, reply, link, page_inbox, unknown, duplicate.",
            labels=["outcome"],
        )
        for name in sorted(values):
            if name.startswith(ECHOES):
                echoes.add_metric([name.removeprefix(ECHOES)], values[name])
        yield echoes
        yield CounterMetricFamily(
            "bankside_notification_settled_by_echo",
            "Notifications made sent by their message's echo, whatever the call recorded.",
            value=values.get(SETTLED, 0.0),
        )
        yield CounterMetricFamily(
            "bankside_notification_resent_after_no_echo",
            "Uncertain sends sent again, once, because no echo came within the wait.",
            value=values.get(RESENT, 0.0),
        )
        handed_back = CounterMetricFamily(
            "bankside_notifications_handed_back",
            "Notifications Messenger could not carry, handed back to the bank's own channels "
            "(notification.undeliverable), by reason.",
            labels=["reason"],
        )
        for name in sorted(values):
            if name.startswith(HANDED_BACK):
                handed_back.add_metric([name.removeprefix(HANDED_BACK)], values[name])
        yield handed_back
        yield CounterMetricFamily(
            "bankside_page_rate_limit_waits",
            "Times a sender waited for a Page's rate limit.",
            value=values.get(WAITS, 0.0),
        )
        yield CounterMetricFamily(
            "bankside_page_rate_limit_wait_seconds",
            "Seconds senders were told to wait for a Page's rate limit.",
            value=values.get(WAIT_SECONDS, 0.0),
        )
        for prefix, metric, text in (
            (UNMODELLED, "bankside_webhook_events_unmodelled", "not modelled"),
            (UNREADABLE, "bankside_webhook_events_unreadable", "that could not be read"),
        ):
            family = CounterMetricFamily(
                metric, f"Signed webhook events {text}, by event type.", labels=["type"]
            )
            for name in sorted(values):
                if name.startswith(prefix):
                    family.add_metric([name.removeprefix(prefix)], values[name])
            yield family


def exposition() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DeliveryCollector())
    return generate_latest(registry)


def _token_matches(header: str) -> bool:
    scheme, _, token = header.partition(" ")
    expected = settings.METRICS_TOKEN.encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), expected)


@never_cache
@require_GET
def metrics_endpoint(request):
    """Prometheus' scrape target. Without `METRICS_TOKEN` configured it does not exist (404);
    a request without the right bearer token gets a 401; with Redis down, a 503."""
    if not settings.METRICS_TOKEN:
        return HttpResponse(
            "Metrics are not served: set METRICS_TOKEN to enable /metrics.\n",
            status=404,
            content_type="text/plain; charset=utf-8",
        )
    if not _token_matches(request.headers.get("Authorization", "")):
        response = HttpResponse(
            "Send the metrics token: Authorization: Bearer <METRICS_TOKEN>.\n",
            status=401,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    try:
        body = exposition()
    except redis.RedisError:
        log.warning("metrics scrape: Redis unavailable", exc_info=True)
        return HttpResponse(
            "The delivery counters' store (Redis) is unavailable.\n",
            status=503,
            content_type="text/plain; charset=utf-8",
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
