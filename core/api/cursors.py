"""Cursors of the API's lists: opaque to the caller, the id after which the next page starts."""

import base64
import binascii
import re

from core.api.problems import invalid

CURSOR_PREFIX = "o1:"


def cursor_encode(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"{CURSOR_PREFIX}{after_id}".encode()).decode().rstrip("=")


CURSOR = re.compile(r"[A-Za-z0-9_-]+")
NOT_ISSUED = "is not a cursor this API issued"


def cursor_decode(cursor: str) -> int:
    if not cursor:
        raise invalid(
            [{"path": "cursor", "reason": "must not be empty; leave it out to read from the start"}]
        )
    if not CURSOR.fullmatch(cursor):
        raise invalid([{"path": "cursor", "reason": NOT_ISSUED}])
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not text.startswith(CURSOR_PREFIX):
            raise ValueError(cursor)
        after_id = int(text.removeprefix(CURSOR_PREFIX))
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise invalid([{"path": "cursor", "reason": NOT_ISSUED}]) from None
    if after_id < 0:
        raise invalid([{"path": "cursor", "reason": NOT_ISSUED}])
    return after_id
