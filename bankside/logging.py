"""Log filters: every record carries the request id, and secrets never reach a log line."""

import logging
import re
from collections.abc import Mapping

from bankside import context

REDACTED = "[redacted]"

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
)
_SECRET_KEY = re.compile(
    r"(?i)(?:^|[_-])(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r")$"
)
_SECRET_IN_TEXT = re.compile(
    r"(?i)(?P<name>\b[\w-]*(?:" + "|".join(re.escape(n) for n in SECRET_NAMES) + r"))"
    r"(?P<sep>\"?\s*[=:]\s*\"?)"
    r"(?P<value>(?:Bearer\s+)?[^\s&\"',;}]+)"
)


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_KEY.search(name))


# A card or account number: 13 to 19 digits, possibly in groups split by spaces or dashes.
# It must never reach a log line, even inside a URL a client sent us.
_LONG_NUMBER = re.compile(r"(?<!\d)\d(?:[ -]?\d){12,18}(?!\d)")


def redact_text(text: str) -> str:
    text = _SECRET_IN_TEXT.sub(lambda m: f"{m['name']}{m['sep']}{REDACTED}", text)
    return _LONG_NUMBER.sub("[redacted-number]", text)


def redact(value):
    """A copy of `value` with secret-named keys masked and `name=value` secrets in text."""
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


class SecretRedactingFilter(logging.Filter):
    """Masks secrets in the message, its arguments and any structured `extra` fields."""

    _STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message",
        "asctime",
        "request_id",
    }

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.msg) if isinstance(record.msg, str) else record.msg
        if record.args:
            if isinstance(record.args, Mapping):
                record.args = redact(record.args)
            else:
                record.args = tuple(redact(arg) for arg in record.args)
        for key, value in list(vars(record).items()):
            if key in self._STANDARD:
                continue
            record.__dict__[key] = REDACTED if is_secret_name(key) else redact(value)
        return True
