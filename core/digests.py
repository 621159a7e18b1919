"""The one SHA-256 of the project, as every stored digest is written."""

import hashlib


def sha256_hex(data: str | bytes) -> str:
    """SHA-256 of `data` (a text as its UTF-8 bytes), in lowercase hex.

    Fast and unsalted, which is right for what it is stored for: random secrets of 256
    bits (API keys, invitation tokens, authorisation codes) that no slow hash or pepper
    would make harder to guess, and the audit entries' hashes. Never for a password.
    """
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()
