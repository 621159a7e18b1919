"""The Send API's per-Page rate limit, shared by every worker: a token bucket per Page.

Meta allows about 300 Send API calls per second per Page. Every worker process takes its
tokens from one bucket per Page, kept in Redis (`NOTIFICATIONS_REDIS_URL`, default
`REDIS_URL`) and updated atomically by a Lua script on Redis's own clock, so the limit holds
however many workers run. A worker asks for up to n tokens at once (one round trip for a
whole wave of sends) and gets the number granted and, if short, how long until the next.

A Page's limit is its bank's setting (`MessengerIntegration.send_rate_limit`, 300 calls/s
unless the bank's staff lowered it; see `page_limit`). The delivery pipeline reads it with
the integration at every claim and hands it to `take`, so a change reaches every worker
within one claim, and sending threads never read the database; other callers (a
conversation's reply) leave it out and `take` reads it, kept for `SETTING_TTL` seconds.

The bucket hands out `NOTIFICATIONS_PAGE_RATE_HEADROOM` of the Page's limit (90%) and holds
at most 50 ms of tokens: calls reach the platform a little after their token was taken,
and the headroom keeps any one-second window at the platform under the limit.

When the platform throttles anyway, `throttle` stops the Page for the wait it gave (or a
second) and halves its rate, whatever the Page's limit, for a cool-down, repeatedly if it
keeps happening. Throttles reported while the Page is already stopped are answers to calls
that were in flight when the first came back: they extend the stop but do not halve the
rate again.

Without Redis (the demo's embedded mode) each process keeps its buckets in memory, which
holds the limit for a single worker process. If Redis fails mid-run the bucket fails
closed: no tokens for a moment, rather than a burst past the platform's limit.
"""

import logging
import math
import threading
import time
from dataclasses import dataclass
from functools import cache

import redis
from django.conf import settings

from notifications import metrics
from portal.models import SEND_RATE_LIMIT_MAX, MessengerIntegration

log = logging.getLogger(__name__)

KEY_PREFIX = "bankside:page-rate:"
BURST_SECONDS = 0.05
THROTTLE_FACTOR = 0.5
MIN_FACTOR = 1 / 64
REDIS_DOWN_WAIT = 0.5
SETTING_TTL = 5.0  # seconds a Page's setting read by `take` itself is kept

# KEYS[1]: the Page's bucket. ARGV: rate/s, burst, tokens wanted.
# Returns {tokens granted, seconds until the next token}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'factor', 'factor_until', 'paused_until')
local tokens, at = tonumber(s[1]), tonumber(s[2])
local factor, factor_until = tonumber(s[3]) or 1, tonumber(s[4]) or 0
local paused_until = tonumber(s[5]) or 0
if now >= factor_until then factor = 1 end
if now < paused_until then return {0, tostring(paused_until - now)} end
local r = rate * factor
local cap = math.max(1, burst * factor)
if tokens == nil then tokens, at = cap, now end
tokens = math.min(cap, tokens + math.max(0, now - at) * r)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
local wait = 0
if granted < want then wait = (1 - tokens) / r end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
local keep = math.max(cap / r, factor_until - now, paused_until - now, 0) + 1
redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000))
return {granted, tostring(wait)}
"""

# KEYS[1]: the Page's bucket. ARGV: pause seconds, rate factor, min factor, cool-down seconds.
THROTTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local pause, mult = tonumber(ARGV[1]), tonumber(ARGV[2])
local floor, cooldown = tonumber(ARGV[3]), tonumber(ARGV[4])
local s = redis.call('HMGET', KEYS[1], 'factor', 'factor_until', 'paused_until')
local factor, factor_until = tonumber(s[1]) or 1, tonumber(s[2]) or 0
local paused_until = tonumber(s[3]) or 0
if now >= factor_until then factor = 1 end
if now >= paused_until then factor = math.max(floor, factor * mult) end
paused_until = math.max(paused_until, now + pause)
factor_until = paused_until + cooldown
redis.call('HSET', KEYS[1], 'tokens', 0, 'at', paused_until, 'factor', factor,
  'factor_until', factor_until, 'paused_until', paused_until)
redis.call('PEXPIRE', KEYS[1], math.ceil((factor_until - now + 1) * 1000))
return tostring(factor)
"""


@dataclass(frozen=True)
class Grant:
    """Tokens granted now, and how long until the next one when fewer than asked."""

    granted: int
    wait: float


def page_limit(page_id: str, setting: int | None = None) -> float:
    """The Page's limit in Send API calls per second.

    `NOTIFICATIONS_PAGE_RATE_LIMIT` is the platform's limit (Meta's 300, or a fake Send
    API's in tests and benchmarks), and a Page's entry in `NOTIFICATIONS_PAGE_RATE_LIMITS`
    replaces it for that Page. The bank's `setting` only ever lowers it: left at the
    platform's 300 (the default), the Page has the whole of the deployment's figure.
    `setting` None reads the Page's setting (`page_setting`).
    """
    override = settings.NOTIFICATIONS_PAGE_RATE_LIMITS.get(page_id)
    if override is not None:
        return float(override)
    platform = float(settings.NOTIFICATIONS_PAGE_RATE_LIMIT)
    if setting is None:
        setting = page_setting(page_id)
    if setting is None or setting >= SEND_RATE_LIMIT_MAX:
        return platform
    return min(float(setting), platform)


def page_rate(page_id: str, setting: int | None = None) -> tuple[float, float]:
    """(tokens per second, burst) of a Page's bucket: its limit less the headroom."""
    rate = max(0.1, page_limit(page_id, setting) * settings.NOTIFICATIONS_PAGE_RATE_HEADROOM)
    return rate, max(1.0, rate * BURST_SECONDS)


_settings_read: dict[str, tuple[float, int | None]] = {}


def page_setting(page_id: str) -> int | None:
    """The Page's `send_rate_limit` as its bank set it, read again after `SETTING_TTL`.

    For callers that do not hold the integration; None for a Page no bank has.
    """
    now = time.monotonic()
    kept = _settings_read.get(page_id)
    if kept is not None and now < kept[0]:
        return kept[1]
    value = (
        MessengerIntegration.objects.filter(page_id=page_id)
        .values_list("send_rate_limit", flat=True)
        .first()
    )
    _settings_read[page_id] = (now + SETTING_TTL, value)
    return value


class RedisPageBuckets:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self._take = self.client.register_script(TAKE)
        self._throttle = self.client.register_script(THROTTLE)

    def take(self, page_id: str, wanted: int, *, setting: int | None = None) -> Grant:
        """Up to `wanted` tokens; `setting` is the Page's own limit if the caller has it."""
        rate, burst = page_rate(page_id, setting)
        try:
            granted, wait = self._take(keys=[KEY_PREFIX + page_id], args=[rate, burst, wanted])
        except redis.RedisError:
            log.warning("page rate limit: Redis unavailable, holding sends", exc_info=True)
            return Grant(0, REDIS_DOWN_WAIT)
        metrics.rate_limit_wait_observe(wanted - int(granted), float(wait))
        return Grant(int(granted), float(wait))

    def throttle(self, page_id: str, seconds: float | None) -> None:
        try:
            self._throttle(
                keys=[KEY_PREFIX + page_id],
                args=[max(1.0, seconds or 0.0), THROTTLE_FACTOR, MIN_FACTOR, _cooldown()],
            )
        except redis.RedisError:
            log.warning("page rate limit: Redis unavailable, throttle not recorded", exc_info=True)


class LocalPageBuckets:
    """The in-process fallback without Redis: the same rules, per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, dict[str, float]] = {}

    def take(self, page_id: str, wanted: int, *, setting: int | None = None) -> Grant:
        rate, burst = page_rate(page_id, setting)
        now = time.monotonic()
        with self.lock:
            s = self.state.setdefault(page_id, {})
            factor = s.get("factor", 1.0) if now < s.get("factor_until", 0.0) else 1.0
            if now < s.get("paused_until", 0.0):
                return Grant(0, s["paused_until"] - now)
            r, cap = rate * factor, max(1.0, burst * factor)
            tokens = s.get("tokens", cap)
            tokens = min(cap, tokens + max(0.0, now - s.get("at", now)) * r)
            granted = min(wanted, math.floor(tokens))
            tokens -= granted
            s.update(tokens=tokens, at=now)
            return Grant(granted, (1 - tokens) / r if granted < wanted else 0.0)

    def throttle(self, page_id: str, seconds: float | None) -> None:
        now = time.monotonic()
        with self.lock:
            s = self.state.setdefault(page_id, {})
            factor = s.get("factor", 1.0) if now < s.get("factor_until", 0.0) else 1.0
            if now >= s.get("paused_until", 0.0):
                factor = max(MIN_FACTOR, factor * THROTTLE_FACTOR)
            paused_until = max(s.get("paused_until", 0.0), now + max(1.0, seconds or 0.0))
            s.update(
                tokens=0.0,
                at=paused_until,
                factor=factor,
                paused_until=paused_until,
                factor_until=paused_until + _cooldown(),
            )


def _cooldown() -> float:
    return float(settings.NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS)


@cache
def _buckets(url: str) -> RedisPageBuckets | LocalPageBuckets:
    return (
        RedisPageBuckets(url) if url.startswith(("redis://", "rediss://")) else LocalPageBuckets()
    )


def page_buckets() -> RedisPageBuckets | LocalPageBuckets:
    return _buckets(settings.NOTIFICATIONS_REDIS_URL or settings.REDIS_URL or "")
