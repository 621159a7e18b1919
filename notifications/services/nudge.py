"""Waking the delivery workers when something new is due.

The broker message is only a nudge: the outbox rows are the truth and the beat sweeper
re-enqueues anything due. Nudges are coalesced: while one is queued and no worker has
started on it yet, another would find nothing the first will not, so a post only sends a
nudge when none is pending. A flag in Redis says one is; `deliver_due` clears it before
its first claim, so whatever commits after that sends a nudge of its own. The flag
expires on its own, so a nudge the broker lost holds back later ones for at most
`PENDING_MS`, and the sweeper catches up meanwhile.
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


def _pending_key() -> str:
    """One flag per queue: workers of another queue never clear it."""
    return f"bankside:deliver-due:nudge-pending:{current_app.conf.task_default_queue}"


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


def _pending_flag_set() -> bool:
    """Raise the pending flag; False when it was already up (a nudge is on its way)."""
    url = settings.REDIS_URL
    if not url:  # the demo's embedded broker: every post nudges
        return True
    try:
        return _line(url).call(_flag_raise(url, _pending_key(), PENDING_MS)) is not None
    except redis.RedisError:
        return True  # cannot tell: nudge anyway


def deliveries_nudge_taken() -> None:
    """Called by a worker before it claims: later commits must nudge again."""
    if not settings.REDIS_URL:
        return
    try:
        _client(settings.REDIS_URL).delete(_pending_key())
    except redis.RedisError:
        log.warning("could not clear the delivery nudge flag; it expires on its own")


def deliveries_nudge(*, copies: int = 1) -> None:
    """After commit, ask a worker to deliver what is due, unless a nudge is already
    pending (`delay_on_commit`, made robust and coalesced).

    A broker that is down at commit time is logged, never raised into the request that
    has already committed its events. `copies` > 1 asks several workers at once, always.
    """

    def send() -> None:
        from notifications.tasks import deliver_due

        if copies == 1 and not _pending_flag_set():
            return
        for _ in range(copies):
            try:
                deliver_due.apply_async(retry=False)
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
