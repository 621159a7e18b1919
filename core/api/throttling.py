"""Per-API-key rate limits: a token bucket of `per_second` tokens, holding at most `burst`.

With Redis (`REDIS_URL`) the bucket lives there, updated atomically by a Lua script on
Redis's own clock, so every web process and host shares one limit per key. Without Redis
(the demo's embedded mode) each process keeps its own buckets in memory: the limit then
holds per process only, which is enough for a single-process demo.
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

# KEYS[1]: the bucket; ARGV: tokens per second, burst. Returns {allowed, seconds to wait}.
TOKEN_BUCKET = """
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil then tokens, at = burst, now end
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed, wait = 0, (1 - tokens) / rate
if tokens >= 1 then tokens, allowed, wait = tokens - 1, 1, 0 end
redis.call('HSET', KEYS[1], 'tokens', tokens, 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RedisTokenBuckets:
    """The buckets in Redis, taken from over a `RedisLine` (one command a request)."""

    PACKED_LIMIT = 10_000  # commands kept packed, one per key and rate

    def __init__(self, url: str) -> None:
        self.line = RedisLine(url)
        self._packed: dict[tuple[str, float, int], list[bytes]] = {}

    def take(self, key: str, per_second: float, burst: int) -> tuple[bool, float]:
        try:
            allowed, wait = self._run(key, per_second, burst)
        except redis.RedisError:
            # Rate limiting protects the service; an unreachable Redis must not stop the
            # bank's core from posting, so the request goes through and the error is logged.
            log.warning("rate limiter: Redis unavailable, request allowed", exc_info=True)
            return True, 0.0
        return bool(allowed), float(wait)

    def _run(self, key: str, per_second: float, burst: int) -> Any:
        packed = self._packed.get((key, per_second, burst))
        if packed is None:
            if len(self._packed) >= self.PACKED_LIMIT:
                self._packed.clear()
            sha = self.line.script_sha(TOKEN_BUCKET)
            packed = self.line.pack("EVALSHA", sha, 1, key, per_second, burst)
            self._packed[(key, per_second, burst)] = packed
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
