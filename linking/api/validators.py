"""Checks shared by every endpoint of the core-banking API.

Card and account numbers must never reach bankside in full: the API refuses any text that
looks like one, and says where, without ever echoing the value back.
"""

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import pycountry

from core.cards import THIRTEEN_DIGITS, holds_card_number

EXTERNAL_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
EXTERNAL_ID_RULE = "must be 1 to 64 letters, digits, dots, colons, dashes or underscores"

# ISO 4217 codes in use; XTS (testing) and XXX (no currency) are not amounts anyone holds.
CURRENCIES = frozenset(c.alpha_3 for c in pycountry.currencies) - {"XTS", "XXX"}
CURRENCY_RULE = "must be an ISO 4217 currency code such as EUR"

CARD_NUMBER_REASON = (
    "looks like a full card or account number; send at most the last 4 digits "
    "(the value was refused and not stored)"
)
LAST4_TOO_LONG_REASON = (
    "must be only the last 4 digits; a full card or account number is refused and not stored"
)

# In free text, an unbroken run longer than this may be an account number.
_LONG_RUN = re.compile(r"\d{13}")
# Fields that hold identifiers (the last part of a path, such as `accounts[0].id`). A long
# run of digits there is an id, unless it is shaped like a card number.
IDENTIFIER_FIELDS = frozenset(
    {"id", "customer_id", "account_id", "alert_id", "order_number", "tracking_url"}
)


def looks_like_card_number(text: str, *, identifier: bool = False) -> bool:
    """Whether `text` holds something that may be a full card (PAN) or account number.

    Everywhere, digits that add up to 13-19 and pass the Luhn check are refused, written
    in one run or in groups split by spaces or dashes: that is the shape of every card
    number. In free text, any unbroken run of 13 or more digits is refused as well, as it
    may be an account number; dates, phone numbers and amounts get through. In an
    identifier (`identifier=True`) other digit runs are allowed: they are ids, not cards.
    """
    if THIRTEEN_DIGITS.search(text) is None:
        return False
    if not identifier and _LONG_RUN.search(text):
        return True
    return holds_card_number(text)


def is_identifier_path(path: str) -> bool:
    """Whether the field at `path` (as `strings_in` writes it) holds an identifier."""
    return path.rpartition(".")[2].split("[", 1)[0] in IDENTIFIER_FIELDS


_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def field_name(key: Any) -> str:
    """`key` as it may appear in an error path: anything odd becomes `*`, never echoed."""
    if type(key) is str:
        return key if _is_plain_field_name(key) else "*"
    if isinstance(key, str) and _FIELD_NAME.fullmatch(key) and not looks_like_card_number(key):
        return key
    return "*"


@lru_cache(maxsize=1024)
def _is_plain_field_name(key: str) -> bool:
    # The same few names come in every event.
    return _FIELD_NAME.fullmatch(key) is not None and not looks_like_card_number(key)


# No field of the API nests deeper than this; anything deeper is refused by the checks of
# its shape, so the scan need not (and, against a hostile body, must not) recurse further.
MAX_DEPTH = 16


def strings_in(value: Any, path: str = "", depth: int = 0) -> Iterator[tuple[str, str]]:
    """Every string value inside a JSON value, with its path such as `a.b[2].c`.

    Keys are not values: callers refuse unknown keys without echoing them.
    """
    if isinstance(value, str):
        yield path, value
    elif depth >= MAX_DEPTH:
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            segment = field_name(key)
            yield from strings_in(item, f"{path}.{segment}" if path else segment, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from strings_in(item, f"{path}[{index}]", depth + 1)


def card_number_paths(value: Any, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """The paths of every string in `value` that looks like a full card or account number.

    The strings and paths of `strings_in`, in its order, walked without its generators:
    this runs on every string of every posted event.
    """
    found: list[str] = []
    _scan(value, "", 0, False, skip, found)
    return found


def _scan(
    value: Any, path: str, depth: int, identifier: bool, skip: frozenset[str], found: list[str]
) -> None:
    """`card_number_paths` of `value`, found at `path` and `depth` by `strings_in`.

    `identifier` is `is_identifier_path(path)`: a list item is in its list's field, and a
    field of an object is an identifier when its own name is one.
    """
    if isinstance(value, str):
        _check(value, path, identifier, skip, found)
    elif depth >= MAX_DEPTH:
        return
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                if THIRTEEN_DIGITS.search(item) is None:  # most strings: no path made
                    continue
            elif not isinstance(item, dict | list):
                continue
            segment = field_name(key)
            where = f"{path}.{segment}" if path else segment
            if isinstance(item, str):
                _check(item, where, segment in IDENTIFIER_FIELDS, skip, found)
            else:
                _scan(item, where, depth + 1, segment in IDENTIFIER_FIELDS, skip, found)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, str):
                if THIRTEEN_DIGITS.search(item) is not None:
                    _check(item, f"{path}[{index}]", identifier, skip, found)
            elif isinstance(item, dict | list):
                _scan(item, f"{path}[{index}]", depth + 1, identifier, skip, found)


def _check(text: str, path: str, identifier: bool, skip: frozenset[str], found: list[str]) -> None:
    if (
        THIRTEEN_DIGITS.search(text) is not None
        and path not in skip
        and path not in found
        and looks_like_card_number(text, identifier=identifier)
    ):
        found.append(path)


def is_external_id(value: Any) -> bool:
    return isinstance(value, str) and EXTERNAL_ID.fullmatch(value) is not None


def is_currency(value: Any) -> bool:
    return isinstance(value, str) and value in CURRENCIES
