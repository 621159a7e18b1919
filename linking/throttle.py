"""Customer sign-in throttling: guessing a demo-directory password is slowed to a crawl.

Five failures for one username from one address, or thirty from one address across
usernames, lock sign-in for 15 minutes. Counters live in the cache (Redis in production),
so every web process shares them.
"""

from django.core.cache import cache

from core.digests import sha256_hex

WINDOW_SECONDS = 15 * 60
PER_USERNAME = 5
PER_ADDRESS = 30


def _keys(bank_slug: str, username: str, ip: str | None) -> tuple[str, str]:
    who = sha256_hex(f"{bank_slug}\0{username.lower()}\0{ip}")[:32]
    where = sha256_hex(f"{bank_slug}\0{ip}")[:32]
    return f"linking:login:user:{who}", f"linking:login:ip:{where}"


def blocked(bank_slug: str, username: str, ip: str | None) -> bool:
    user_key, ip_key = _keys(bank_slug, username, ip)
    counts = cache.get_many([user_key, ip_key])
    return counts.get(user_key, 0) >= PER_USERNAME or counts.get(ip_key, 0) >= PER_ADDRESS


def failed(bank_slug: str, username: str, ip: str | None) -> None:
    for key in _keys(bank_slug, username, ip):
        cache.add(key, 0, WINDOW_SECONDS)
        cache.incr(key)


def succeeded(bank_slug: str, username: str, ip: str | None) -> None:
    cache.delete(_keys(bank_slug, username, ip)[0])
