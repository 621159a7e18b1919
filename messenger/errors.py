"""Graph API errors, classified from the error body rather than the HTTP status.

Meta does not document which HTTP status goes with which error code (libraries mostly
see 400), so `classify` decides on `error.error_subcode` first, then `error.code`, and
falls back to the HTTP status only when the body carries no usable error.

Each class tells the caller what to do:

- `TransientError`: retry with backoff (codes 1, 2, network failures, 5xx without a body).
- `ThrottledError`: back off, for `retry_after_seconds` when Meta says how long.
- `TagOveruseError`: stop tagged sends for this Page. Deliberately *not* a
  `ThrottledError`: retrying a throttled send with backoff is right, retrying this is not.
- `OutsideWindowError`: the 24-hour window is closed; use a utility template or a human
  agent reply.
- `PersonUnavailableError`: the customer cannot be reached; do not retry, flag the link.
- `PageRestrictedError`: Meta has restricted the Page; stop sending.
- `BadTokenError`: the Page token is invalid or expired; pause the integration.
- `ConfigError` (and `ThreadOwnedError`): permissions, app review or routing to fix.
- `BadRequestError`: the request itself is wrong (including the tags retired in 2026).
- `LinkingTokenError`: the account-linking token is invalid or expired.
- `UnexpectedResponseError`: a success status whose body we cannot read. For a send
  the message may have gone out, so it is not retryable.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

__all__ = [
    "BadRequestError",
    "BadTokenError",
    "ConfigError",
    "LinkingTokenError",
    "MessengerError",
    "OutsideWindowError",
    "PageRestrictedError",
    "PersonUnavailableError",
    "TagOveruseError",
    "ThreadOwnedError",
    "ThrottledError",
    "TransientError",
    "UnexpectedResponseError",
    "classify",
    "retry_after_from_headers",
]


class MessengerError(Exception):
    """An error from the Messenger Platform, or from reaching it."""

    retryable: ClassVar[bool] = False
    default_user_message: ClassVar[str] = (
        "Messenger rejected the request for a reason we could not identify. "
        "Contact support with the trace id if it keeps happening."
    )

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        fbtrace_id: str | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
        user_message: str | None = None,
    ) -> None:
        self.message = message
        self.code = code
        self.subcode = subcode
        self.fbtrace_id = fbtrace_id
        self.http_status = http_status
        self.error_type = error_type
        self.user_message = user_message or self.default_user_message
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = []
        if self.code is not None:
            parts.append(f"#{self.code}" + (f"/{self.subcode}" if self.subcode else ""))
        if self.http_status is not None:
            parts.append(f"HTTP {self.http_status}")
        head = f"({', '.join(parts)}) " if parts else ""
        trace = f" [fbtrace_id={self.fbtrace_id}]" if self.fbtrace_id else ""
        return f"{head}{self.message}{trace}"


class TransientError(MessengerError):
    """Retry with backoff.

    `maybe_processed` is True when the request may have reached Meta before the failure
    (a read timeout, a dropped connection): a retried send could then deliver twice.
    """

    retryable = True
    default_user_message = (
        "Messenger is temporarily unavailable. The message will be retried automatically."
    )

    def __init__(self, message: str, *, maybe_processed: bool = False, **kwargs: Any) -> None:
        self.maybe_processed = maybe_processed
        super().__init__(message, **kwargs)


class ThrottledError(MessengerError):
    retryable = True
    default_user_message = (
        "Messenger is limiting how fast this Page can send. Messages will be retried "
        "automatically once the limit resets."
    )

    def __init__(
        self, message: str, *, retry_after_seconds: float | None = None, **kwargs: Any
    ) -> None:
        self.retry_after_seconds = retry_after_seconds
        super().__init__(message, **kwargs)


class TagOveruseError(MessengerError):
    default_user_message = (
        "Messenger has blocked tagged messages from this Page because the tag was overused. "
        "Stop sending tagged messages and use approved utility templates instead."
    )


class OutsideWindowError(MessengerError):
    default_user_message = (
        "The customer has not written to the Page in the last 24 hours, so a free-form "
        "message is not allowed. Use an approved utility template or a human agent reply."
    )


class PersonUnavailableError(MessengerError):
    default_user_message = (
        "This customer can no longer be reached on Messenger (they may have blocked the "
        "Page or deleted their account). The message will not be retried."
    )


class PageRestrictedError(MessengerError):
    default_user_message = (
        "Meta has restricted this Facebook Page from sending messages. Check the Page's "
        "quality status in Meta Business Suite; sending is stopped until it is resolved."
    )


class BadTokenError(MessengerError):
    default_user_message = (
        "The Facebook Page access token is invalid or has expired. Generate a new Page "
        "token in Meta's developer dashboard and update the integration settings."
    )


class ConfigError(MessengerError):
    default_user_message = (
        "The Meta app is missing a permission or is not live for this Page. Check the app's "
        "permissions (pages_messaging, page_utility_messaging) and App Review status."
    )


class ThreadOwnedError(ConfigError):
    default_user_message = (
        "Another app (for example the Page Inbox) currently owns this conversation. "
        "Check the Page's conversation routing settings."
    )


class BadRequestError(MessengerError):
    default_user_message = (
        "Messenger rejected the message as invalid. This needs a fix in the message or "
        "its settings; it will not be retried."
    )


class LinkingTokenError(MessengerError):
    default_user_message = (
        "The account-linking session is invalid or has expired (it lasts 5 minutes). "
        "Ask the customer to tap Log In again."
    )


class UnexpectedResponseError(MessengerError):
    default_user_message = (
        "Messenger answered in an unexpected way. The request may have succeeded; check "
        "before sending it again."
    )


_MENTIONS_TAG = re.compile(r"(?<![a-z])tags?(?![a-z])", re.IGNORECASE)
_DEPRECATED_TAG_MESSAGE = (
    "Messenger rejected the message tag. The ACCOUNT_UPDATE, CONFIRMED_EVENT_UPDATE and "
    "POST_PURCHASE_UPDATE tags stopped working on 27 April 2026: send an approved "
    "utility template instead."
)
_BAD_PROOF_MESSAGE = (
    "Messenger refused the app secret proof: the app secret does not belong to the app "
    "that issued this Page access token. Check the app secret."
)

# Subcodes are checked before codes: 200/1545041 is an unavailable person, not a
# permission problem, and 613/2018338 is tag overuse, not a plain rate limit.
_BY_SUBCODE: dict[int, type[MessengerError]] = {
    2018338: TagOveruseError,
    2534040: ThrottledError,
    2018278: OutsideWindowError,
    2534022: OutsideWindowError,
    1893063: PageRestrictedError,
    1545041: PersonUnavailableError,
    2018108: PersonUnavailableError,
    2018300: ThreadOwnedError,
    2018028: ConfigError,
    2018001: BadRequestError,
}

_BY_CODE: dict[int, type[MessengerError]] = {
    1: TransientError,
    2: TransientError,
    4: ThrottledError,
    17: ThrottledError,
    32: ThrottledError,
    613: ThrottledError,
    80006: ThrottledError,
    10: ConfigError,
    200: ConfigError,
    551: PersonUnavailableError,
    100: BadRequestError,
    190: BadTokenError,
    2500: BadTokenError,
    10303: LinkingTokenError,
    2018300: ThreadOwnedError,
}


def error_kind(exc: BaseException) -> str:
    """The error's class and codes, never its text: for a row that outlives the person (the
    text of a platform error can quote the message or name the person)."""
    codes = []
    if isinstance(exc, MessengerError):
        codes += [f"#{exc.code}"] if exc.code is not None else []
        codes += [f"HTTP {exc.http_status}"] if exc.http_status is not None else []
    return (type(exc).__name__ + (f" ({', '.join(codes)})" if codes else ""))[:200]


def classify(
    status_code: int,
    body: bytes | str | Mapping[str, Any] | None,
    headers: Mapping[str, str] | None = None,
) -> MessengerError:
    """Turn a failed Graph API response into the matching `MessengerError` subclass."""
    error = _error_object(body)
    code = _as_int(error.get("code"))
    subcode = _as_int(error.get("error_subcode"))
    message = _as_str(error.get("message")) or _as_str(error.get("error_description"))

    cls = _BY_SUBCODE.get(subcode) if subcode is not None else None
    if cls is None and code is not None:
        cls = _BY_CODE.get(code)
    if cls is None:
        cls = _by_status(status_code)

    kwargs: dict[str, Any] = {
        "code": code,
        "subcode": subcode,
        "fbtrace_id": _as_str(error.get("fbtrace_id")),
        "http_status": status_code,
        "error_type": _as_str(error.get("type")),
    }
    if cls is BadRequestError and message and "appsecret_proof" in message:
        # Meta answers a wrong app secret with a plain code 100: it is configuration.
        cls = ConfigError
        kwargs["user_message"] = _BAD_PROOF_MESSAGE
    elif cls is BadRequestError and message and _MENTIONS_TAG.search(message):
        kwargs["user_message"] = _DEPRECATED_TAG_MESSAGE
    if issubclass(cls, ThrottledError):
        kwargs["retry_after_seconds"] = retry_after_from_headers(headers or {})
    return cls(message or f"Graph API request failed with HTTP {status_code}", **kwargs)


def retry_after_from_headers(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait, from Meta's usage headers; None when they do not say.

    `X-Business-Use-Case-Usage` maps ids to lists of usage entries whose
    `estimated_time_to_regain_access` is in minutes; the longest wait wins.
    `X-App-Usage` is read the same way in case it carries the field, and a standard
    `Retry-After` (seconds) is the last resort.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    minutes = [
        *_regain_minutes(lowered.get("x-business-use-case-usage")),
        *_regain_minutes(lowered.get("x-app-usage")),
    ]
    positive = [m for m in minutes if m > 0]
    if positive:
        return max(positive) * 60.0
    retry_after = _as_float(lowered.get("retry-after"))
    return retry_after if retry_after is not None and retry_after > 0 else None


def _regain_minutes(raw: str | None) -> list[float]:
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return []
    found: list[float] = []
    _collect_regain(data, found, depth=0)
    return found


def _collect_regain(node: Any, found: list[float], depth: int) -> None:
    if depth > 4:
        return
    if isinstance(node, list):
        for item in node:
            _collect_regain(item, found, depth + 1)
    elif isinstance(node, dict):
        value = _as_float(node.get("estimated_time_to_regain_access"))
        if value is not None:
            found.append(value)
        for item in node.values():
            if isinstance(item, (list, dict)):
                _collect_regain(item, found, depth + 1)


def _by_status(status_code: int) -> type[MessengerError]:
    if status_code >= 500:
        return TransientError
    if status_code == 429:
        return ThrottledError
    if 200 <= status_code < 300:
        return UnexpectedResponseError
    if 300 <= status_code < 400:
        return ConfigError
    return BadRequestError


def _error_object(body: bytes | str | Mapping[str, Any] | None) -> Mapping[str, Any]:
    data: Any = body
    if isinstance(body, (bytes, bytearray, str)):
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(data, Mapping):
        return {}
    error = data.get("error")
    if isinstance(error, Mapping):
        return error
    if isinstance(error, str):
        return {"message": error, "error_description": data.get("error_description")}
    return {}


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
