"""The API keys the API platform serves, as the app that owns them lends them.

core knows no bank and no key model. The app that owns API keys and their tenants (the
portal) registers one `ApiKeys` from its `AppConfig.ready()`; authentication, signing,
throttling and idempotency ask it for rows and never import it.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class ApiCaller:
    """An API key with its tenant (`api_key.bank`), and what every request made with it
    needs to know: whether the tenant requires signed requests and the key's rate limit
    (requests per second, burst)."""

    api_key: Any
    signing_required: bool
    rate_limit: tuple[float, int]


class IdempotencyKeyReusedError(Exception):
    """The key was first used with another request body."""


class ApiKeys(Protocol):
    """What the API platform needs of the keys' owner: reads, and the two records it keeps
    (a signed request's id, a response to replay)."""

    def parse(self, presented: str) -> tuple[str, str] | None:
        """The (prefix, secret) of a well-formed key, or None."""

    def caller(self, prefix: str) -> ApiCaller | None:
        """The key with `prefix`, revoked or not, with its tenant and settings, or None."""

    def verify(self, api_key: Any, secret: str) -> bool:
        """Whether `secret` is the key's and the key is active (recording its use)."""

    def rate_limit(self, api_key: Any) -> tuple[float, int]:
        """(requests per second, burst) for a key."""

    def signing_required(self, tenant: Any) -> bool:
        """Whether the tenant refuses unsigned requests."""

    def signing_secret(self, tenant: Any) -> str:
        """The tenant's signing secret, or "" when it has none."""

    def signed_request_id_claim(self, tenant: Any, webhook_id: str) -> bool:
        """Record a signed request's id; False if the tenant has sent it before."""

    def idempotency_claim(
        self, *, tenant: Any, key: str, endpoint: str, fingerprint: str
    ) -> tuple[Any, bool]:
        """Claim `key` for a request, or find the record stored for it: (record, claimed).
        Raises `IdempotencyKeyReusedError` if it was claimed with another fingerprint.
        The record has `status_code`, `content_type` and `body`."""

    def idempotency_complete(
        self, *, record: Any, status_code: int, content_type: str, body: str
    ) -> None:
        """Store the response of a claimed request."""


_registered: ApiKeys | None = None


def api_keys_register(keys: ApiKeys) -> None:
    global _registered
    _registered = keys


def api_keys() -> ApiKeys:
    if _registered is None:
        raise ImproperlyConfigured(
            "No app lends the API its keys: the app that owns them calls api_keys_register()."
        )
    return _registered
