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

**The whole budget, and never more.** The platform counts calls when they arrive, and a
call arrives some time after its token was granted: a few milliseconds, more when the
worker's thread waits for the interpreter or the machine is busy, and calls that wait
longer land in the next second together with calls granted there. A token bucket grants,
in any second, its rate plus its burst, so it had to hand out only 90% of the limit (the
old `NOTIFICATIONS_PAGE_RATE_HEADROOM`, with 50 ms of burst) for those late arrivals and
the burst to stay under the limit; a tenth of the Page's budget was never used.

Here each call is counted instead, in a log of the Page's calls (a Redis sorted set; a
dict in memory), at the latest moment it can reach the platform: once the platform has
answered it, the moment of the answer (a call cannot arrive after its answer; the
sending thread reports it with `answered`, and the next take for the Page writes it);
until then, its grant plus `NOTIFICATIONS_PAGE_ARRIVAL_SECONDS` (20 s, the call's own
timeout: a thread held back for a second is still counted). A call stays in
the count until a second after that moment, and no take is granted while the Page's
limit is counted. So no second at the platform holds more than the limit, however late
calls leave a busy machine: of two calls that arrive within a second of each other, the
one granted later was granted while the other was still counted. What this costs is the
time calls take to be answered, in place of a tenth: against the benchmarks' Send API on
the same machine, a few milliseconds in a second. Against a Send API that answers in
100 ms, calls would be counted 1.1 s each, a tenth again: there, counting from the
moment a call was written rather than answered is what would win the budget back. A
token bucket at the limit's pace (with `BURST_SECONDS` of burst) still spreads the calls
over the second, so the count never fills in one burst.

**Booked slots: the freed slot used at once.** On a saturated Page a slot frees when its
call's second is over, about every 3 ms at 300 calls/s, and every waiting sender was told
the same moment (the oldest call's) and asked again then, a few milliseconds apart: the
first got the slot, the others were told the next moment and came back behind the
threads already waiting. Each slot stood idle for the time between its freeing and its
next take, a few milliseconds a second per slot, 2 to 4% of the budget under a backlog
(the count showed 275 to 290 calls where routine calls could have had 297). A routine
take that passes `ahead` (the sending threads do, `BOOK_AHEAD`: 30 ms) is instead
granted the next slot to free if it frees within that time: the call is counted from now,
at the moment it may start (`Grant.start_in`; the thread sleeps until then and calls),
and each booking takes the next slot, so no two senders wait for the same one. This is
as safe as a grant now: a booking starting at T is made only when the calls that could
still arrive within a second of T number less than the limit, counted as they stand at
the booking (a call's moment only ever moves earlier, when it is answered), which is
the same rule a take granted now obeys with T its own moment. A take granted now counts
the bookings too, so they never double up. What bookings cost: they are counted as
calls, so while routine bookings fill the count beyond the routine share an urgent take
finds no room in the reserve and waits for the next slot, with routine takes standing
aside (`URGENT_HOLD`) and no new booking made meanwhile: at most `BOOK_AHEAD` longer.
A throttle does not call back the bookings already made: like the calls in flight when
it came, they go out, `BOOK_AHEAD` of them at most.

**A reserved lane for urgent sends.** Urgent and routine sends share the Page's budget,
but routine takes may only fill the count to the limit less a reserve
(`NOTIFICATIONS_PAGE_URGENT_RESERVE`, 1% of the limit, at least one call), and only they
are paced by the bucket: an urgent take may use the reserve and is granted at once, its
tokens borrowed from the bucket for routine takes to repay. Why a reserve, and not only
urgent-first claims: a saturated Page has every free slot raced for by routine calls
that threads of every worker already wait to make, so an urgent call would wait its turn
among them, over and over; with the reserve, there is always a slot for it. When urgent
takes outrun the reserve and must wait, routine takes stand aside until then
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
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache

import redis
from django.conf import settings

import messenger
from notifications import metrics
from portal.models import SEND_RATE_LIMIT_MAX, MessengerIntegration

log = logging.getLogger(__name__)

KEY_PREFIX = "bankside:page-rate:"
LOG_SUFFIX = ":calls"  # the Page's count of calls, beside its state
BURST_SECONDS = 0.05  # the pacing bucket holds this much of the Page's rate
URGENT_HOLD = 0.05  # routine takes stand aside this long past an urgent take's wait
BOOK_AHEAD = 0.03  # a routine call may be booked this long before its slot frees
ANSWERS_KEPT = 1000  # per Page, answers waiting for its next take
THROTTLE_FACTOR = 0.5
MIN_FACTOR = 1 / 64
REDIS_DOWN_WAIT = 0.5
SETTING_TTL = 5.0  # seconds a Page's setting read by `take` itself is kept

# KEYS[1]: the Page's state, KEYS[2]: its count of calls (a sorted set: each call at the
# latest moment it can reach the platform). ARGV: limit, arrival seconds, burst seconds,
# tokens wanted, urgent (1/0), reserve share, urgent hold seconds, seconds ahead a routine
# call may be booked (0: none), then pairs of (call, moment of its answer) to count
# answered calls at. Returns {tokens granted, seconds until the next, the last call
# granted, now, seconds until the granted call may start (a booking; else 0)}.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit, arrival, burst_s = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local want, urgent = tonumber(ARGV[4]), ARGV[5] == '1'
local share, hold = tonumber(ARGV[6]), tonumber(ARGV[7])
local ahead = tonumber(ARGV[8])
if #ARGV > 9 then
  for i = 9, #ARGV - 1, 2 do
    redis.call('ZADD', KEYS[2], ARGV[i + 1], ARGV[i])
  end
  redis.call('PEXPIRE', KEYS[2], math.ceil((arrival + 2) * 1000))
end
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'factor', 'factor_until',
  'paused_until', 'urgent_until', 'seq')
local tokens, at = tonumber(s[1]), tonumber(s[2])
local factor, factor_until = tonumber(s[3]) or 1, tonumber(s[4]) or 0
local paused_until, urgent_until = tonumber(s[5]) or 0, tonumber(s[6]) or 0
local seq = tonumber(s[7]) or 0
if now >= factor_until then factor = 1 end
if now < paused_until then return {0, tostring(paused_until - now), '', tostring(now), '0'} end
local cap = math.max(1, math.floor(limit * factor))
local reserve = 0
if share > 0 and cap > 1 then reserve = math.min(cap - 1, math.max(1, math.floor(cap * share))) end
local burst = math.max(1, cap * burst_s)
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * cap)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 1)
local count = redis.call('ZCARD', KEYS[2])
local full = cap
if not urgent then full = cap - reserve end
local room = full - count
if not urgent then
  if now < urgent_until then room = 0 end
  room = math.min(room, math.floor(tokens))
end
local granted = math.max(0, math.min(want, room))
tokens = tokens - granted
local wait, start = 0, now
if granted < want then
  local over = count + granted - full
  if over >= count then
    wait = arrival + 1
  elseif over >= 0 then
    local oldest = redis.call('ZRANGE', KEYS[2], over, over, 'WITHSCORES')
    wait = tonumber(oldest[2]) + 1 - now
  end
  if urgent then
    urgent_until = math.max(urgent_until, now + wait + hold)
  elseif granted == 0 and ahead > 0 and over >= 0 and over < count and now >= urgent_until then
    if wait <= ahead then
      granted, start, wait = 1, now + wait, 0
    else
      wait = wait - ahead
    end
  end
  if not urgent and start == now then
    wait = math.max(wait, (1 - tokens) / cap, urgent_until - now)
  end
end
local last = ''
if granted > 0 then
  local calls = {}
  for i = 1, granted do
    last = string.format('%.6f:%d', start, seq + i)
    calls[2 * i - 1] = start + arrival
    calls[2 * i] = last
  end
  redis.call('ZADD', KEYS[2], unpack(calls))
  redis.call('PEXPIRE', KEYS[2], math.ceil((arrival + ahead + 2) * 1000))
end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now, 'urgent_until', urgent_until,
  'seq', seq + granted)
local keep = math.max(arrival + 1, factor_until - now, paused_until - now, urgent_until - now)
redis.call('PEXPIRE', KEYS[1], math.ceil((keep + 1) * 1000))
return {granted, tostring(math.max(0, wait)), last, tostring(now), tostring(start - now)}
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
    """Tokens granted now, and how long until the next one when fewer than asked.

    `call` names the last call granted and `at` is when, on the budget's clock: hand
    them back with `answered` once the platform answered it.
    """

    granted: int
    wait: float
    call: str = ""
    at: float = 0.0
    start_in: float = 0.0  # a booked call: start it no sooner than this many seconds on
    calls: tuple[str, ...] = ()  # every call granted, where several were

    def each(self) -> list["Grant"]:
        """One grant per call granted, each to be handed back with `answered` on its own."""
        if self.granted <= 1:
            return [self] if self.granted else []
        return [Grant(1, 0.0, call, self.at) for call in self.calls]


@dataclass(frozen=True)
class Budget:
    """What a Page may be granted: `limit` calls counted in any second, `reserve` of them
    for urgent takes only, each counted from `arrival` seconds after its grant until
    answered, and a second more."""

    limit: int
    reserve: int
    arrival: float

    @property
    def rate(self) -> float:
        return float(self.limit)

    @property
    def burst(self) -> float:
        return max(1.0, self.rate * BURST_SECONDS)

    def slowed(self, factor: float) -> "Budget":
        """The budget while a throttle has cut the limit to `factor` of it."""
        if factor >= 1:
            return self
        return _budget(self.limit * factor, self.arrival)


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
    """The Page's budget: its limit (all of it unless `NOTIFICATIONS_PAGE_RATE_HEADROOM`
    says otherwise) and its urgent reserve."""
    limit = page_limit(page_id, setting) * settings.NOTIFICATIONS_PAGE_RATE_HEADROOM
    return _budget(limit, float(settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS))


def _budget(limit: float, arrival: float) -> Budget:
    share = _reserve_share()
    cap = max(1, math.floor(limit))
    reserve = min(cap - 1, max(1, math.floor(cap * share))) if share > 0 and cap > 1 else 0
    return Budget(cap, reserve, arrival)


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
        self._lock = threading.Lock()
        self._answers: defaultdict[str, list[str | float]] = defaultdict(list)

    def take(
        self,
        page_id: str,
        wanted: int,
        *,
        setting: int | None = None,
        urgent: bool = False,
        ahead: float = 0.0,
        counted: bool = True,
    ) -> Grant:
        """Up to `wanted` tokens; `setting` is the Page's own limit if the caller has it,
        `urgent` takes from the urgent lane (the reserve, and ahead of routine takes).
        `ahead` (routine takes): when the Page's count is full, book one call for the
        moment a slot frees if that is at most this many seconds away (`Grant.start_in`).
        `counted`: a grant short of `wanted` counts as a sender's wait in the metrics
        (not where the caller does not wait, and asks again for each call it still needs)."""
        budget = page_budget(page_id, setting)
        with self._lock:
            answers = self._answers.pop(page_id, [])
        try:
            granted, wait, call, now, start_in = self._take(
                keys=[KEY_PREFIX + page_id, KEY_PREFIX + page_id + LOG_SUFFIX],
                args=[
                    budget.limit,
                    budget.arrival,
                    BURST_SECONDS,
                    wanted,
                    1 if urgent else 0,
                    _reserve_share(),
                    URGENT_HOLD,
                    0.0 if urgent else max(0.0, min(ahead, BOOK_AHEAD)),
                    *answers,
                ],
            )
        except redis.RedisError:
            log.warning("page rate limit: Redis unavailable, holding sends", exc_info=True)
            return Grant(0, REDIS_DOWN_WAIT)
        booked = float(start_in)
        if counted:
            short = wanted - int(granted) or int(booked > 0)
            metrics.rate_limit_wait_observe(short, float(wait) or booked)
        last, granted = _text(call), int(granted)
        calls: tuple[str, ...] = ()
        if granted > 1:  # the script names the calls `<start>:<number>`, numbered in a row
            start, _, number = last.rpartition(":")
            first = int(number) - granted + 1
            calls = tuple(f"{start}:{first + n}" for n in range(granted))
        return Grant(granted, float(wait), last, float(now), booked, calls)

    def answered(self, page_id: str, grant: Grant, seconds: float) -> None:
        """The platform answered the call of `grant` at most `seconds` after the take that
        granted it began: the call reached it by then, so count it until a second after
        (sooner or later than its `arrival` bound). Written with the next take for the
        Page, whichever thread makes it."""
        if not grant.call:
            return
        with self._lock:
            answers = self._answers[page_id]
            if len(answers) < 2 * ANSWERS_KEPT:
                answers += [grant.call, grant.at + seconds]

    def throttle(self, page_id: str, seconds: float | None) -> None:
        try:
            self._throttle(
                keys=[KEY_PREFIX + page_id],
                args=[max(1.0, seconds or 0.0), THROTTLE_FACTOR, MIN_FACTOR, _cooldown()],
            )
        except redis.RedisError:
            log.warning("page rate limit: Redis unavailable, throttle not recorded", exc_info=True)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass
class _LocalPage:
    tokens: float | None = None
    at: float = 0.0
    factor: float = 1.0
    factor_until: float = 0.0
    paused_until: float = 0.0
    urgent_until: float = 0.0
    seq: int = 0
    calls: dict[str, float] = field(default_factory=dict)  # call: counted until a second after


class LocalPageBuckets:
    """The in-process fallback without Redis: the same rules (`TAKE`), per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.state: dict[str, _LocalPage] = {}

    def take(
        self,
        page_id: str,
        wanted: int,
        *,
        setting: int | None = None,
        urgent: bool = False,
        ahead: float = 0.0,
        counted: bool = True,
    ) -> Grant:
        whole = page_budget(page_id, setting)
        ahead = 0.0 if urgent else max(0.0, min(ahead, BOOK_AHEAD))
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
            s.calls = {call: moment for call, moment in s.calls.items() if moment > now - 1}
            full = budget.limit if urgent else budget.limit - budget.reserve
            room = full - len(s.calls)
            if not urgent:
                room = 0 if now < s.urgent_until else min(room, math.floor(tokens))
            granted = max(0, min(wanted, room))
            tokens -= granted
            wait, start = 0.0, now
            if granted < wanted:
                over = len(s.calls) + granted - full
                if over >= len(s.calls):
                    wait = budget.arrival + 1
                elif over >= 0:
                    wait = sorted(s.calls.values())[over] + 1 - now
                if urgent:
                    s.urgent_until = max(s.urgent_until, now + wait + URGENT_HOLD)
                elif granted == 0 and ahead > 0 and 0 <= over < len(s.calls):
                    if now >= s.urgent_until and wait <= ahead:
                        granted, start, wait = 1, now + wait, 0.0
                    elif now >= s.urgent_until:
                        wait -= ahead
                if not urgent and start == now:
                    wait = max(wait, (1 - tokens) / budget.rate, s.urgent_until - now)
            calls = []
            for _ in range(granted):
                s.seq += 1
                calls.append(str(s.seq))
                s.calls[calls[-1]] = start + budget.arrival
            s.tokens, s.at = tokens, now
            return Grant(
                granted,
                max(0.0, wait),
                calls[-1] if calls else "",
                now,
                start - now,
                tuple(calls) if granted > 1 else (),
            )

    def answered(self, page_id: str, grant: Grant, seconds: float) -> None:
        with self.lock:
            calls = self.state.setdefault(page_id, _LocalPage()).calls
            if grant.call:
                calls[grant.call] = grant.at + seconds

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


@contextmanager
def call_counted(
    buckets: "RedisPageBuckets | LocalPageBuckets", page_id: str, taken: tuple[Grant, float]
) -> Iterator[None]:
    """Around the Send API call of `taken` (a grant, and the monotonic moment its take
    began): once the platform answers, success or error, the call is counted as having
    reached it by then (`answered`). A call without an answer (the connection failed or
    was lost) stays counted as on its way."""
    grant, asked = taken
    try:
        yield
    except messenger.MessengerError as exc:
        if exc.http_status is not None:
            buckets.answered(page_id, grant, time.monotonic() - asked)
        raise
    buckets.answered(page_id, grant, time.monotonic() - asked)


def _cooldown() -> float:
    return float(settings.NOTIFICATIONS_PAGE_THROTTLE_COOLDOWN_SECONDS)


@cache
def _buckets(url: str) -> RedisPageBuckets | LocalPageBuckets:
    return (
        RedisPageBuckets(url) if url.startswith(("redis://", "rediss://")) else LocalPageBuckets()
    )


def page_buckets() -> RedisPageBuckets | LocalPageBuckets:
    return _buckets(settings.NOTIFICATIONS_REDIS_URL or settings.REDIS_URL or "")
