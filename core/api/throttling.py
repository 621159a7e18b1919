"""Per-API-key rate limits: a token bucket of `per_second` tokens, holding at most `burst`.

With Redis (`REDIS_URL`) the bucket lives there, updated atomically by a Lua script on
Redis's own clock, so every web process and host shares one limit per key. Without Redis
(the demo's embedded mode) each process keeps its own buckets in memory: the limit then
holds per process only, which is enough for a single-process demo.

A process that serves a key many times a second takes its tokens from Redis a few at a
time (a lease), rather than one round trip per request: as many as it used in the last
`LEASE_SECONDS`, at most a tenth of the burst, what the key earns in `LEASE_SECONDS`, and
`LEASE_MAX`. Every token still comes out of the shared bucket, so no key ever gets more
than its limit, over all processes; a lease only lets one process hold a few tokens
another might have had, for `LEASE_SECONDS` at most. The tokens a lease did not use go
back to the bucket with the process's next request for the key. A key earning less than
20 tokens a second, or with a burst under 20, is leased one token at a time: every
request asks Redis, as without leases.
"""

import logging
import threading
import time
from functools import cache
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from redis.exceptions import NoScriptError
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

from core.api.keys import api_keys
from core.redis_line import RedisLine

if TYPE_CHECKING:
    from rest_framework.views import APIView

log = logging.getLogger(__name__)

# KEYS[1]: the bucket; ARGV: tokens per second, burst, tokens wanted, tokens handed back
# (a lease's unused ones). Returns {tokens granted (0 to wanted), seconds to wait for one}.
TOKEN_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local wanted, back = tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate + back)
local granted, wait = math.min(wanted, math.floor(tokens)), 0
if granted >= 1 then tokens = tokens - granted else granted, wait = 0, (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {granted, tostring(wait)}
"""

LEASE_SECONDS = 0.1  # how long a process may hold tokens it has not used yet
LEASE_MAX = 100  # tokens in one lease
LEASE_SHARE = 10  # a lease holds at most burst / LEASE_SHARE tokens


class _Lease:
    """The tokens of one key (and limit) this process holds, and how fast it uses them."""

    __slots__ = ("since", "taken", "tokens", "until", "used")

    def __init__(self, now: float) -> None:
        self.tokens = 0  # held, unused
        self.until = now  # when the held ones go back
        self.since = now  # the current count of requests began
        self.taken = 0  # requests since then
        self.used = 1  # requests in the last full `LEASE_SECONDS`

    def count(self, now: float) -> None:
        if now - self.since >= LEASE_SECONDS:
            self.used, self.since, self.taken = max(1, self.taken), now, 0
        self.taken += 1

    def wanted(self, per_second: float, burst: int) -> int:
        most = min(LEASE_MAX, burst // LEASE_SHARE, int(per_second * LEASE_SECONDS))
        return max(1, min(self.used, most))


class RedisTokenBuckets:
    """The buckets in Redis, taken from over a `RedisLine` in leases (module docstring)."""

    PACKED_LIMIT = 10_000  # commands kept packed, one per key, limit and lease
    LEASES_LIMIT = 10_000

    def __init__(self, url: str) -> None:
        self.line = RedisLine(url)
        self._packed: dict[tuple[str, float, int, int, int], list[bytes]] = {}
        self._leases: dict[tuple[str, float, int], _Lease] = {}
        self._lock = threading.Lock()

    def take(self, key: str, per_second: float, burst: int) -> tuple[bool, float]:
        now = time.monotonic()
        with self._lock:
            lease = self._leases.get((key, per_second, burst))
            if lease is None:
                if len(self._leases) >= self.LEASES_LIMIT:
                    self._leases.clear()
                lease = self._leases[(key, per_second, burst)] = _Lease(now)
            lease.count(now)
            if lease.tokens and now < lease.until:
                lease.tokens -= 1
                return True, 0.0
            back, lease.tokens = lease.tokens, 0
            wanted = lease.wanted(per_second, burst)
        try:
            granted, wait = self._run(key, per_second, burst, wanted, back)
        except redis.RedisError:
            # Rate limiting protects the service; an unreachable Redis must not stop the
            # bank's core from posting, so the request goes through and the error is logged.
            log.warning("rate limiter: Redis unavailable, request allowed", exc_info=True)
            return True, 0.0
        granted = int(granted)
        if granted < 1:
            return False, float(wait)
        if granted > 1:
            with self._lock:
                lease.tokens += granted - 1
                lease.until = time.monotonic() + LEASE_SECONDS
        return True, 0.0

    def _run(self, key: str, per_second: float, burst: int, wanted: int, back: int) -> Any:
        command = (key, per_second, burst, wanted, back)
        packed = self._packed.get(command)
        if packed is None:
            if len(self._packed) >= self.PACKED_LIMIT:
                self._packed.clear()
            sha = self.line.script_sha(TOKEN_BUCKET)
            packed = self._packed[command] = self.line.pack("EVALSHA", sha, 1, *command)
        try:
            return self.line.call(packed)
        except NoScriptError:  # Redis restarted: load the script again (same SHA1)
            self.line.script_forget(TOKEN_BUCKET)
            self.line.script_sha(TOKEN_BUCKET)
            return self.line.call(packed)


class LocalTokenBuckets:
    """The in-process fallback when no Redis is configured (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, per_second: float, burst: int) -> tuple[bool, float]:
        now = time.monotonic()
        with self.lock:
            tokens, at = self.buckets.get(key, (float(burst), now))
            tokens = min(burst, tokens + (now - at) * per_second)
            if tokens >= 1:
                self.buckets[key] = (tokens - 1, now)
                return True, 0.0
            self.buckets[key] = (tokens, now)
            return False, (1 - tokens) / per_second


@cache
def _buckets(url: str) -> RedisTokenBuckets | LocalTokenBuckets:
    return RedisTokenBuckets(url) if url else LocalTokenBuckets()


def buckets() -> RedisTokenBuckets | LocalTokenBuckets:
    return _buckets(settings.API_RATE_LIMIT_REDIS_URL or settings.REDIS_URL)


class ApiKeyRateThrottle(BaseThrottle):
    """429 with `Retry-After` once a key has used up its bucket."""

    def __init__(self) -> None:
        self.seconds_to_wait = 0.0

    def allow_request(self, request: Request, view: "APIView") -> bool:
        api_key = getattr(request.user, "api_key", None)
        if api_key is None:
            return True
        # Read with the key by `SignedApiKeyAuthentication`; any other principal, here.
        rate_limit = getattr(request.user, "rate_limit", None)
        per_second, burst = api_keys().rate_limit(api_key) if rate_limit is None else rate_limit
        allowed, self.seconds_to_wait = buckets().take(
            f"bankside:api-rate:{api_key.prefix}", per_second, burst
        )
        return allowed

    def wait(self) -> float:
        return self.seconds_to_wait
