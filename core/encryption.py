"""Secrets encrypted at rest with Fernet, keys rotated through MultiFernet.

`FIELD_ENCRYPTION_KEYS` lists the keys: the first encrypts, every one decrypts, so a new
key goes first, `manage.py rotate_encryption_keys` re-encrypts every stored secret with
it, and the old key is removed afterwards.
"""

from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.db import models
from django.db.models.lookups import Lookup


class DecryptionError(Exception):
    """A stored secret could not be decrypted with any configured key."""


@cache
def _cipher(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS is empty: secrets cannot be stored or read without it."
        )
    return MultiFernet([Fernet(key) for key in keys])


def cipher() -> MultiFernet:
    return _cipher(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(plaintext: str) -> str:
    return cipher().encrypt(plaintext.encode()).decode("ascii")


def decrypt(token: str) -> str:
    try:
        return cipher().decrypt(token.encode("ascii")).decode()
    except InvalidToken as exc:
        raise DecryptionError(
            "A stored secret could not be decrypted: is the key that encrypted it still "
            "listed in FIELD_ENCRYPTION_KEYS?"
        ) from exc


def rotate(token: str) -> str:
    """The same secret encrypted with the first (newest) key."""
    try:
        return cipher().rotate(token.encode("ascii")).decode("ascii")
    except InvalidToken as exc:
        raise DecryptionError("A stored secret could not be decrypted for rotation.") from exc


def _on_setting_changed(setting: str, **kwargs: Any) -> None:
    if setting == "FIELD_ENCRYPTION_KEYS":
        _cipher.cache_clear()


setting_changed.connect(_on_setting_changed)


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]  # generic in the stubs only
    """A text secret stored as a Fernet token; the Python value is the plaintext.

    The token is different on every save, so the field cannot be filtered on or indexed:
    it holds secrets, which are only ever read by primary key.
    """

    description = "Text encrypted at rest"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("unique") or kwargs.get("db_index") or kwargs.get("primary_key"):
            raise ImproperlyConfigured("EncryptedTextField cannot be unique, indexed or a key.")
        super().__init__(*args, **kwargs)

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(value)

    def get_lookup(self, lookup_name: str) -> "type[Lookup[Any]] | None":
        # A fresh token per encryption means `field=value` could never match: refuse it
        # rather than silently return nothing.
        if lookup_name != "isnull":
            return None
        return super().get_lookup(lookup_name)


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    """Every (model, field) pair in the project that holds an encrypted secret."""
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
