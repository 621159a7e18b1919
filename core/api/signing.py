"""Signed API requests, the Standard Webhooks way: `webhook-id`, `webhook-timestamp` and
`webhook-signature` over the body, keyed with the tenant's `whsec_` secret."""

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from django.utils import timezone

from core.api.keys import api_keys

TOLERANCE = timedelta(minutes=5)
HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")


class SignatureError(Exception):
    """A signed request that cannot be trusted; the message says why, for the caller."""


class SignatureHeaderError(SignatureError):
    """A signature header that is not written as Standard Webhooks writes it: a bad
    request rather than a failed authentication."""


# Standard Webhooks: an id of visible ASCII, and Unix seconds as digits. Twelve digits reach
# past the year 30000; more can only be a value no clock gives, and no float holds exactly.
_WEBHOOK_ID = re.compile(r"[\x21-\x7e]{1,255}")
_WEBHOOK_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def signature_for(*, secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, keyed with the secret's bytes."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{webhook_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signed_request_verify(
    *,
    tenant: Any,
    headers: Mapping[str, str],
    body: bytes | None = None,
    read_body: Callable[[], bytes] | None = None,
    required: bool | None = None,
) -> bool:
    """Check a request's Standard Webhooks signature; returns whether it was signed.

    Unsigned requests pass unless the tenant requires signing. A signed request must carry
    all three headers, a timestamp within 5 minutes, a matching `v1` signature (any one of
    several, space-separated, so a sender can sign with two secrets while rotating) and a
    `webhook-id` never used before by this tenant. Raises SignatureError otherwise.
    `required` is whether the tenant requires signing, if the caller has read it already.
    """
    keys = api_keys()
    present = [name for name in HEADERS if headers.get(name)]
    if not present:
        # Most requests: only whether signing is required matters, not the secret.
        if required is None:
            required = keys.signing_required(tenant)
        if required:
            raise SignatureError(
                "This bank requires signed requests: send webhook-id, webhook-timestamp "
                "and webhook-signature."
            )
        return False
    secret = keys.signing_secret(tenant)
    if not secret:
        raise SignatureError("Request signing is not set up for this bank; send no signature.")
    if len(present) != len(HEADERS):
        raise SignatureError(
            "A signed request needs webhook-id, webhook-timestamp and webhook-signature."
        )
    webhook_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if not _WEBHOOK_ID.fullmatch(webhook_id):
        raise SignatureHeaderError(
            "webhook-id must be 1 to 255 visible ASCII characters, without spaces."
        )
    if not _WEBHOOK_TIMESTAMP.fullmatch(timestamp):
        raise SignatureHeaderError(
            "webhook-timestamp must be whole seconds since the epoch, in at most 12 digits."
        )
    if abs(timezone.now().timestamp() - int(timestamp)) > TOLERANCE.total_seconds():
        raise SignatureError("webhook-timestamp is more than 5 minutes away from now.")
    # A caller passes `body` or `read_body`.
    body = read_body() if body is None else body  # type: ignore[misc]
    try:
        expected = signature_for(
            secret=secret, webhook_id=webhook_id, timestamp=timestamp, body=body
        )
    except (binascii.Error, ValueError):
        raise SignatureError("The signing secret could not be read.") from None
    offered = headers["webhook-signature"].split()
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in offered):
        raise SignatureError("webhook-signature does not match the request.")
    if not keys.signed_request_id_claim(tenant, webhook_id):
        raise SignatureError("This webhook-id was already used: a request is signed once.")
    return True
