"""Waking the delivery workers when something new is due.

The broker message is only a nudge: the outbox rows are the truth and the beat sweeper
re-enqueues anything due. Nudges are coalesced: while one is queued and no worker has
started on it yet, another would find nothing the first will not, so a post only sends a
nudge when none is pending. A flag in Redis says one is; `deliver_due` clears it before
its first claim, so whatever commits after that sends a nudge of its own. The flag
expires on its own, so a nudge the broker lost holds back later ones for at most
`PENDING_MS`, and the sweeper catches up meanwhile.

Two queues take delivery nudges (bankside/celery.py): `deliver_urgent` on the urgent
queue when an urgent notification is due, `deliver_due` on the routine queue for the
rest. Each has its own flag.
"""

import logging
from functools import cache

import redis
from celery import current_app
from django.conf import settings
from django.db import transaction

from core.redis_line import RedisLine

log = logging.getLogger(__name__)

PENDING_MS = 2000


def nudge_queue(*, urgent: bool) -> str:
    """The queue an urgent (or routine) delivery nudge goes to: where Celery's routes
    send `deliver_urgent` (or `deliver_due`)."""
    return _routed(urgent, current_app.conf.task_default_queue)


@cache
def _routed(urgent: bool, default_queue: str) -> str:
    """`nudge_queue`, asked of Celery's router once per lane and default queue (the
    routes derive the queue's name from the default one, which a benchmark sets)."""
    task = "notifications.deliver_urgent" if urgent else "notifications.deliver_due"
    route = current_app.amqp.router.route({}, task)
    queue = route.get("queue")
    return str(getattr(queue, "name", queue or default_queue))


def _pending_key(*, urgent: bool) -> str:
    """One flag per queue: workers of another queue never clear it."""
    return f"bankside:deliver-due:nudge-pending:{nudge_queue(urgent=urgent)}"


@cache
def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


@cache
def _line(url: str) -> RedisLine:
    """What every post that wrote a notification raises the flag over."""
    return RedisLine(url)


@cache
def _flag_raise(url: str, key: str, milliseconds: int) -> list[bytes]:
    return _line(url).pack("SET", key, 1, "NX", "PX", milliseconds)


def _pending_flag_set(*, urgent: bool) -> bool:
    """Raise the pending flag; False when it was already up (a nudge is on its way)."""
    url = settings.REDIS_URL
    if not url:  # the demo's embedded broker: every post nudges
        return True
    try:
        key = _pending_key(urgent=urgent)
        return _line(url).call(_flag_raise(url, key, PENDING_MS)) is not None
    except redis.RedisError:
        return True  # cannot tell: nudge anyway


def deliveries_nudge_taken(*, urgent: bool | None = None) -> None:
    """Called by a worker before it claims: later commits must nudge again. `urgent`: the
    urgent queue's flag (False: the routine one's; None: both, as after a purge)."""
    if not settings.REDIS_URL:
        return
    lanes = [urgent] if urgent is not None else [True, False]
    try:
        _client(settings.REDIS_URL).delete(*(_pending_key(urgent=lane) for lane in lanes))
    except redis.RedisError:
        log.warning("could not clear the delivery nudge flag; it expires on its own")


def deliveries_nudge(*, copies: int = 1, urgent: bool = False, routine: bool = True) -> None:
    """After commit, ask a worker to deliver what is due, unless a nudge is already
    pending (`delay_on_commit`, made robust and coalesced).

    `urgent`: urgent notifications are due, so the urgent queue is nudged; `routine`: so
    are others, and the routine queue is nudged (its workers take urgent ones first too).
    A broker that is down at commit time is logged, never raised into the request that
    has already committed its events. `copies` > 1 asks several routine workers at once,
    always.
    """

    def send() -> None:
        from notifications.tasks import deliver_due, deliver_urgent

        lanes = [(True, deliver_urgent, 1)] if urgent else []
        if routine:
            lanes.append((False, deliver_due, copies))
        for lane, task, count in lanes:
            if count == 1 and not _pending_flag_set(urgent=lane):
                continue
            for _ in range(count):
                try:
                    task.apply_async(retry=False)
                except Exception:  # any broker failure: the sweeper catches up
                    log.warning("delivery nudge not sent; the sweeper will catch up", exc_info=True)
                    return

    transaction.on_commit(send, robust=True)


def hand_back_nudge() -> None:
    """After commit, ask a worker to hand back at once what Messenger cannot carry (an
    urgent update is not kept waiting for the next sweep). A lost nudge delays it by
    one beat at most."""

    def send() -> None:
        from notifications.tasks import hand_back

        try:
            hand_back.apply_async(retry=False)
        except Exception:  # any broker failure: the beat catches up
            log.warning("hand-back nudge not sent; the beat will catch up", exc_info=True)

    transaction.on_commit(send, robust=True)
