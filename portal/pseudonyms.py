"""Pseudonymous references to personal data, for records that can never be erased.

Audit entries are append-only and hash-chained: whatever they hold stays for good. So they
never hold a customer's Messenger id (PSID); they hold a keyed HMAC of it instead. Someone
holding the PSID and the server's key can find the entries about that person; someone
holding only the audit log cannot tell who they are, and erasing the PSID everywhere else
leaves nothing to link the entries back to the person.

The key is `PSEUDONYM_KEYS`' first; look-ups try every listed key (`pseudonyms`), so the
key can be replaced without losing the entries made under the old one. A reference is the
same HMAC it always was, with the key in SECRET_KEY's place: references made before
PSEUDONYM_KEYS existed are found by listing that SECRET_KEY among the keys.
"""

import base64
import hmac
from collections.abc import Mapping
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.crypto import salted_hmac

# Keys of audit details whose values are personal data, and the key their reference takes.
PERSONAL_KEYS = {"psid": "psid_ref", "recipient_psid": "recipient_psid_ref"}


def pseudonym(value: str, *, kind: str = "psid") -> str:
    """A stable, keyed reference to `value` that does not reveal it ("" for ""), under the
    current key: what new records hold."""
    if not value:
        return ""
    return _reference(str(value), kind, _keys()[0])


def pseudonyms(value: str, *, kind: str = "psid") -> list[str]:
    """Every reference to `value` a record may hold, one per key of PSEUDONYM_KEYS, the
    current one first: what to look records up by."""
    if not value:
        return []
    return list(dict.fromkeys(_reference(str(value), kind, key) for key in _keys()))


_keys_read: list[str] | None = None  # PSEUDONYM_KEYS, read once (every audit entry asks)


def _keys() -> list[str]:
    global _keys_read
    keys = _keys_read
    if keys is None:
        keys = settings.PSEUDONYM_KEYS
        if not keys:
            raise ImproperlyConfigured("PSEUDONYM_KEYS is empty: see .env.example.")
        _keys_read = keys
    return keys


@receiver(setting_changed)
def _keys_forget(*, setting: str, **kwargs: object) -> None:
    """Settings changed while running (tests): read the keys again."""
    global _keys_read
    if setting == "PSEUDONYM_KEYS":
        _keys_read = None


def _reference(value: str, kind: str, key: str) -> str:
    mac = _keyed(kind, key).copy()
    mac.update(value.encode())
    digest = mac.digest()
    # Base32, not hex: a long run of digits would read as a card number to the log redactor.
    return f"{kind}:{base64.b32encode(digest[:20]).decode().lower()}"


@lru_cache(maxsize=64)
def _keyed(kind: str, key: str) -> "hmac.HMAC":
    """`salted_hmac(f"bankside.pseudonym.{kind}", …, secret=key, algorithm="sha256")` before
    any value: its key derived and its pads hashed once, copied for each value."""
    return salted_hmac(f"bankside.pseudonym.{kind}", b"", secret=key, algorithm="sha256")


def pseudonymise(value):
    """A copy of `value` (audit details) with personal values replaced by their references."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if isinstance(value, Mapping):
        clean = {}
        for key, item in value.items():
            if key in PERSONAL_KEYS and isinstance(item, str | int):
                clean[PERSONAL_KEYS[key]] = pseudonym(str(item))
            else:
                clean[key] = pseudonymise(item)
        return clean
    if isinstance(value, list | tuple):
        return [pseudonymise(item) for item in value]
    return value
