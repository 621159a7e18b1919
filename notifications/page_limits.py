"""The Send API's per-Page rate limit, shared by every worker: a counted window per Page.

Meta allows about 300 Send API calls per second per Page. Every worker process takes its
tokens from one budget per Page, kept in Redis (`NOTIFICATIONS_REDIS_URL`, default
`REDIS_URL`) and updated atomically by a Lua script on Redis's own clock, so the limit holds
however many workers run. A worker asks for up to n tokens at once and gets the number
granted and, if short, how long until the next.

A Page's limit is its bank's setting (`MessengerIntegration.send_rate_limit`, 300 calls/s
unless the bank's staff lowered it; see `page_limit`). The delivery pipeline reads it with
the integration at every claim and hands it to `take`, so a change reaches every worker
within one claim, and sending threads never read the database; other callers (a
conversation's reply) leave it out and `take` reads it, kept for `SETTING_TTL` seconds.

**The whole budget, and never more.** The platform counts calls as they arrive, and a
call arrives a little after its token was granted: a few milliseconds later, more when a
worker's thread waits for the interpreter or the machine is busy. A plain token bucket
grants, in any second, its rate plus its burst, so it had to hand out only 90% of the
limit (`NOTIFICATIONS_PAGE_RATE_HEADROOM` was 0.9, with 50 ms of burst) to keep those
late arrivals and the burst under the limit: a tenth of the Page's budget was never used.
Here every grant is counted instead, in a log of the grants of the last
`1 s + NOTIFICATIONS_PAGE_RATE_JITTER_SECONDS` (a Redis sorted set; a deque in memory):
no take is granted that would put more than the Page's limit in that log. Grants within
any such window are at most the limit, so arrivals within any one second are too, as long
as calls reach the platform within the jitter of each other; the price is the jitter's
share of a second (1% for 10 ms) rather than a tenth. A token bucket at the limit's pace
(`limit / window`, with `BURST_SECONDS` of burst) still spreads the grants over the
second, so the log's own window never fills in one burst.

**A reserved lane for urgent sends.** Urgent and routine sends share the Page's budget,
but routine takes may only fill the log to the limit less a reserve
(`NOTIFICATIONS_PAGE_URGENT_RESERVE`, 1% of the limit, at least one call), and they alone
are paced by the bucket: an urgent take may use the reserve and is granted at once, its
tokens borrowed from the bucket for routine takes to repay. Why a reserve rather than
urgent-first queues alone: a saturated Page has every token spoken for by routine calls
that threads of every worker are already waiting to make, so an urgent call would queue
behind them for the next free slot; with the reserve, free slots are always there for it.
When urgent takes outrun the reserve and must wait, routine takes stand aside until then
(`URGENT_HOLD`), so the next slots that free go to the urgent ones. The reserve costs
routine sends 1% of the limit, and only while urgent sends leave it unused.

When the platform throttles anyway, `throttle` stops the Page for the wait it gave (or a
second) and halves its limit, whatever the Page's setting, for a cool-down, repeatedly if
it keeps happening. Throttles reported while the Page is already stopped are answers to
calls that were in flight when the first came back: they extend the stop but do not halve
the limit again. After the cool-down the Page has its whole limit back.

Without Redis (the demo's embedded mode) each process keeps its budgets in memory, which
holds the limit for a single worker process. If Redis fails mid-run the budget fails
closed: no tokens for a moment, rather than a burst past the platform's limit.
"""

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from functools import cache

import redis
from django.conf import settings

from notifications import metrics
from portal.models import SEND_RATE_LIMIT_MAX, MessengerIntegration

log = logging.getLogger(__name__)

KEY_PREFIX = "bankside:page-rate:"
LOG_SUFFIX = ":grants"  # the Page's log of grants, beside its state
BURST_SECONDS = 0.05  # the pacing bucket holds this much of the Page's rate
URGENT_HOLD = 0.05  # routine takes stand aside this long past an urgent take's wait
THROTTLE_FACTOR = 0.5
MIN_FACTOR = 1 / 64
REDIS_DOWN_WAIT = 0.5
SETTING_TTL = 5.0  # seconds a Page's setting read by `take` itself is kept

# KEYS[1]: the Page's state, KEYS[2]: its log of grants (a sorted set by time).
# ARGV: limit in the window, window seconds, burst seconds, tokens wanted, urgent (1/0),
# reserve share, urgent hold seconds. Returns {tokens granted, seconds until the next}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, window, burst_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, urgent = tonumber(ARGV[4]), ARGV[5] == '1'
local share, hold = tonumber(ARGV[6]), tonumber(ARGV[7])
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'factor', 'factor_until',
  'paused_until', 'urgent_until', 'seq')
local tokens, at = tonumber(s[1]), tonumber(s[2])
local factor, factor_until = tonumber(s[3]) or 1, tonumber(s[4]) or 0
local paused_until, urgent_until = tonumber(s[5]) or 0, tonumber(s[6]) or 0
local seq = tonumber(s[7]) or 0
if now >= factor_until then factor = 1 end
if now < paused_until then return {0, tostring(paused_until - now)} end
local cap = math.max(1, math.floor(limit * factor))
local reserve = 0
if share > 0 and cap > 1 then reserve = math.min(cap - 1, math.max(1, math.floor(cap * share))) end
local rate = cap / window
local burst = math.max(1, rate * burst_s)
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[2])
local granted, room = 0, cap - count
if not urgent then
  room = cap - reserve - count
  if now < urgent_until then room = 0 end
  room = math.min(room, math.floor(tokens))
end
granted = math.max(0, math.min(want, room))
tokens = tokens - granted
local wait = 0
if granted < want then
  local full = cap
  if not urgent then full = cap - reserve end
  local over = count + granted - full
  if over >= count then
    wait = window
  elseif over >= 0 then
    local oldest = redis.call('ZRANGE', KEYS[2], over, over, 'WITHSCORES')
    wait = tonumber(oldest[2]) + window - now
  end
  if urgent then
    urgent_until = math.max(urgent_until, now + wait + hold)
  else
    wait = math.max(wait, (1 - tokens) / rate, urgent_until - now)
  end
end
if granted > 0 then
  local members = {}
  for i = 1, granted do
    members[2 * i - 1] = now
    members[2 * i] = string.format('%.6f:%d', now, seq + i)
  end
  redis.call('ZADD', KEYS[2], unpack(members))
  redis.call('PEXPIRE', KEYS[2], math.ceil((window + 1) * 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'urgent_until', urgent_until,
  'seq', seq + granted)
local keep = math.max(window, factor_until - now, paused_until - now, urgent_until - now) + 1
redis.call('PEXPIRE', KEYS[1], math.ceil(keep * 1000))
return {granted, tostring(math.max(0, wait))}
"""

# KEYS[1]: the Page's state. ARGV: pause seconds, limit factor, min factor, cool-down seconds.
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


@dataclass(frozen=True)
class Budget:
    """What a Page may be granted: `limit` calls in any `window` seconds, `reserve` of
    them for urgent takes only, routine ones paced at `rate` with `burst`."""

    limit: int
    window: float
    reserve: int

    @property
    def rate(self) -> float:
        return self.limit / self.window

    @property
    def burst(self) -> float:
        return max(1.0, self.rate * BURST_SECONDS)

    def slowed(self, factor: float) -> "Budget":
        """The budget while a throttle has cut the limit to `factor` of it."""
        if factor >= 1:
            return self
        return page_budget_of(self.limit * factor, self.window, _reserve_share())


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


def page_budget(page_id: str, setting: int | None = None) -> Budget:
    """The Page's budget: its limit (less `NOTIFICATIONS_PAGE_RATE_HEADROOM`, whole by
    default) in any window of a second and the jitter, and its urgent reserve."""
    limit = page_limit(page_id, setting) * settings.NOTIFICATIONS_PAGE_RATE_HEADROOM
    window = 1.0 + float(settings.NOTIFICATIONS_PAGE_RATE_JITTER_SECONDS)
    return page_budget_of(limit, window, _reserve_share())


def page_budget_of(limit: float, window: float, share: float) -> Budget:
    cap = max(1, math.floor(limit))
    reserve = min(cap - 1, max(1, math.floor(cap * share))) if share > 0 and cap > 1 else 0
    return Budget(cap, window, reserve)


def _reserve_share() -> float:
    return float(settings.NOTIFICATIONS_PAGE_URGENT_RESERVE)


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

    def take(
        self, page_id: str, wanted: int, *, setting: int | None = None, urgent: bool = False
    ) -> Grant:
        """Up to `wanted` tokens; `setting` is the Page's own limit if the caller has it,
        `urgent` takes from the urgent lane (the reserve, granted ahead of routine takes)."""
        budget = page_budget(page_id, setting)
        try:
            granted, wait = self._take(
                keys=[KEY_PREFIX + page_id, KEY_PREFIX + page_id + LOG_SUFFIX],
                args=[
                    budget.limit,
                    budget.window,
                    BURST_SECONDS,
                    wanted,
                    1 if urgent else 0,
                    _reserve_share(),
                    URGENT_HOLD,
                ],
            )
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


@dataclass
class _LocalPage:
    tokens: float | None = None
    at: float = 0.0
    factor: float = 1.0
    factor_until: float = 0.0
    paused_until: float = 0.0
    urgent_until: float = 0.0
    grants: deque[float] = field(default_factory=deque)


class LocalPageBuckets:
    """The in-process fallback without Redis: the same rules (`TAKE`), per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, _LocalPage] = {}

    def take(
        self, page_id: str, wanted: int, *, setting: int | None = None, urgent: bool = False
    ) -> Grant:
        whole = page_budget(page_id, setting)
        now = time.monotonic()
        with self.lock:
            s = self.state.setdefault(page_id, _LocalPage())
            if now >= s.factor_until:
                s.factor = 1.0
            if now < s.paused_until:
                return Grant(0, s.paused_until - now)
            budget = whole.slowed(s.factor)
            tokens = budget.burst if s.tokens is None else s.tokens
            tokens = min(budget.burst, tokens + max(0.0, now - s.at) * budget.rate)
            while s.grants and s.grants[0] <= now - budget.window:
                s.grants.popleft()
            full = budget.limit if urgent else budget.limit - budget.reserve
            room = full - len(s.grants)
            if not urgent:
                room = 0 if now < s.urgent_until else min(room, math.floor(tokens))
            granted = max(0, min(wanted, room))
            tokens -= granted
            wait = 0.0
            if granted < wanted:
                over = len(s.grants) + granted - full
                if over >= len(s.grants):
                    wait = budget.window
                elif over >= 0:
                    wait = s.grants[over] + budget.window - now
                if urgent:
                    s.urgent_until = max(s.urgent_until, now + wait + URGENT_HOLD)
                else:
                    wait = max(wait, (1 - tokens) / budget.rate, s.urgent_until - now)
            s.grants.extend([now] * granted)
            s.tokens, s.at = tokens, now
            return Grant(granted, max(0.0, wait))

    def throttle(self, page_id: str, seconds: float | None) -> None:
        now = time.monotonic()
        with self.lock:
            s = self.state.setdefault(page_id, _LocalPage())
            factor = s.factor if now < s.factor_until else 1.0
            if now >= s.paused_until:
                factor = max(MIN_FACTOR, factor * THROTTLE_FACTOR)
            s.paused_until = max(s.paused_until, now + max(1.0, seconds or 0.0))
            s.tokens, s.at, s.factor = 0.0, s.paused_until, factor
            s.factor_until = s.paused_until + _cooldown()


def _cooldown() -> float:
    return float(settings.NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS)


@cache
def _buckets(url: str) -> RedisPageBuckets | LocalPageBuckets:
    return (
        RedisPageBuckets(url) if url.startswith(("redis://", "rediss://")) else LocalPageBuckets()
    )


def page_buckets() -> RedisPageBuckets | LocalPageBuckets:
    return _buckets(settings.NOTIFICATIONS_REDIS_URL or settings.REDIS_URL or "")
