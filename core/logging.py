"""Log filters: every record carries the request id, and secrets never reach a log line.

Secrets are masked twice over: in every record as it is made (`logging`'s record factory,
installed when this module is imported, which the settings' `LOGGING` does in every
process), whichever logger and handler it goes to, gunicorn's, Celery's and Django's own
included; and by `SecretRedactingFilter` on the project's handler, which also masks the
structured `extra` fields a record gets after it is made.
"""

import logging
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from core import context
from core.cards import THIRTEEN_DIGITS, card_numbers_masked

REDACTED = "[redacted]"
REDACTED_NUMBER = "[redacted-number]"

# Names whose values are secrets wherever they appear: as query parameters, JSON keys,
# form fields or headers.
SECRET_NAMES = (
    "access_token",
    "page_token",
    "appsecret_proof",
    "app_secret",
    "client_secret",
    "secret",
    "password",
    "passwd",
    "api_key",
    "authorization",
    "token",
    "signing_secret",
    "authorization_code",
    "account_linking_token",
    "code_verifier",
)
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_-])(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r")$"
)
_SECRET_IN_TEXT = re.compile(
    r"(?i)(?P<name>\b[\w-]*(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r"))"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?)"
    r"(?P<value>(?:Bearer\s+)?[^\s&\"',;}]+)"
)
# What every match of `_SECRET_IN_TEXT` holds, looked for in an ASCII text made lower
# case (where that is what ignoring case means), several times faster than the pattern:
# a text without it is let through unchanged.
_SECRET_HINT = re.compile(r"(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r")[\"']?\s*[=:]")


def _may_name_secret(text: str) -> bool:
    return not text.isascii() or _SECRET_HINT.search(text.lower()) is not None


@lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Remembered: the keys of what is logged and audited are few and asked about often."""
    return bool(_SECRET_KEY.search(name))


# A card or account number: 13 to 19 digits, possibly in groups split by spaces or dashes.
# It must never reach a log line, even inside a URL a client sent us. A card number
# written next to other digits, in a longer run, is found by the card number scan.
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


# Secrets that are not named `…token` or `…secret` where they appear: a staff invitation's
# token is the last part of its path, and an OpenID provider's authorization code and the
# state bound to the sign-in come back as `code` and `state` in the callback's query.
_INVITATION_PATH = re.compile(r"(/staff/invitations/)[^/?#\s\"'<>]+")
_CALLBACK_PARAM = re.compile(r"(?i)([?&](?:code|state|session_state)=)[^&#\s\"'<>]+")


def redact_text(text: str) -> str:
    # What every pattern below needs: a `=` or `:` (a named secret, a callback's
    # parameter), an invitation's path, or thirteen digits (a card or account number).
    # Most texts (an event's id, a state, a Page id) have none and are let through here.
    if (
        "=" not in text
        and ":" not in text
        and "/invitations/" not in text
        and THIRTEEN_DIGITS.search(text) is None
    ):
        return text
    if _may_name_secret(text):
        text = _SECRET_IN_TEXT.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    if "/invitations/" in text:
        text = _INVITATION_PATH.sub(rf"\1{REDACTED}", text)
    if "=" in text:
        text = _CALLBACK_PARAM.sub(rf"\1{REDACTED}", text)
    text = card_numbers_masked(text, replacement=REDACTED_NUMBER)
    return _LONG_NUMBER.sub(REDACTED_NUMBER, text)


def redact(value: Any) -> Any:
    """A copy of `value` with secret-named keys masked and `name=value` secrets in text."""
    kind = type(value)
    if kind is str:  # the common cases first, before the abstract types' slower checks
        return redact_text(value)
    if kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_secret_name(key) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(redact(item) for item in value)
    if isinstance(value, str):
        return redact_text(value)
    return value


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        current = context.current()
        record.request_id = current.request_id if current else "-"
        return True


def redact_record(record: logging.LogRecord) -> None:
    """Mask secrets in a record's message and exception text, whatever their types.

    The message is formatted here, once: an argument may be any object (an `httpx.URL`,
    an exception, a number), and only its text shows what it holds. A traceback is
    formatted here too, for the same reason.
    """
    if record.args:
        if isinstance(record.args, Mapping):
            record.args = redact(record.args)
        else:
            record.args = tuple(redact(arg) for arg in record.args)
    if isinstance(record.msg, Mapping):
        record.msg = redact(record.msg)
    else:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string is the handler's to report
            message = None
        if message is not None:
            record.msg, record.args = redact_text(message), ()
    if record.exc_info and record.exc_info[0] is not None:
        record.exc_text = redact_text(_TRACEBACKS.formatException(record.exc_info))
        record.exc_info = None
    elif record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)


_TRACEBACKS = logging.Formatter()
# Lines that are redacted field by field before they are logged (`core.access_log`).
_REDACTED_ALREADY = frozenset({"gunicorn.access"})
_make_record = logging.getLogRecordFactory()


# Set on a record whose message, arguments and traceback are masked already.
_MASKED = "_secrets_masked"


def _redacted_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    if record.name not in _REDACTED_ALREADY:
        redact_record(record)
    setattr(record, _MASKED, True)
    return record


def _install_record_factory() -> None:
    if getattr(logging.getLogRecordFactory(), "__name__", "") != _redacted_record.__name__:
        logging.setLogRecordFactory(_redacted_record)


_install_record_factory()


class SecretRedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any structured `extra` fields.

    A record the record factory made has its message masked already; only its `extra`
    fields, set after it was made, are left to mask.
    """

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message",
        "asctime",
        "request_id",
        _MASKED,
    }

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, _MASKED, False):
            redact_record(record)
        for key, value in list(vars(record).items()):
            if key in self._STANDARD:
                continue
            record.__dict__[key] = REDACTED if is_secret_name(key) else redact(value)
        return True
