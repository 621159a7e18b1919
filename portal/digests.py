"""Kept so that `from portal.digests import sha256_hex` still works: the helper is core's."""

from core.digests import sha256_hex

__all__ = ["sha256_hex"]
