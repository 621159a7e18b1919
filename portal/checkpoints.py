"""Signing and checking audit-chain checkpoints (Ed25519), with no database access.

A checkpoint's signed payload is its canonical JSON (sorted keys, no spaces, UTF-8):

    {"bank": "harbour", "chain": "bank:3", "head_hash": "…", "head_seq": 42,
     "signed_at": "2026-01-01T00:00:00.000000+00:00"}

so a third party can check an exported checkpoint with any Ed25519 library and the
public key alone.
"""

import base64
import binascii
import datetime as dt
import hashlib
import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT = "bankside.audit-checkpoint/v1"
ALGORITHM = "Ed25519"
# Local and test runs only: production settings refuse to start without their own key.
_DEVELOPMENT_SEED = hashlib.sha256(b"bankside development audit checkpoint key").digest()


class CheckpointInvalid(Exception):
    """An exported checkpoint that is malformed or whose signature does not verify."""


def signing_key() -> Ed25519PrivateKey:
    configured = settings.AUDIT_CHECKPOINT_SIGNING_KEY
    if not configured:
        return Ed25519PrivateKey.from_private_bytes(_DEVELOPMENT_SEED)
    try:
        raw = base64.b64decode(configured, validate=True)
        return Ed25519PrivateKey.from_private_bytes(raw)
    except (binascii.Error, ValueError) as exc:
        raise ImproperlyConfigured(
            "AUDIT_CHECKPOINT_SIGNING_KEY must be the base64 of a raw 32-byte Ed25519 key."
        ) from exc


def public_key_b64(key: Ed25519PublicKey | None = None) -> str:
    key = key or signing_key().public_key()
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def payload(
    *, chain: str, bank: str | None, head_seq: int, head_hash: str, signed_at: dt.datetime
) -> dict:
    return {
        "chain": chain,
        "bank": bank,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "signed_at": signed_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
    }


def canonical_payload(payload: dict) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(document: dict) -> tuple[str, str]:
    """(base64 signature, base64 public key) of a payload under the configured key."""
    key = signing_key()
    signature = key.sign(canonical_payload(document))
    return base64.b64encode(signature).decode(), public_key_b64(key.public_key())


def verify(document: dict) -> dict:
    """The payload of an exported checkpoint, once its signature checks out."""
    try:
        signed = document["payload"]
        if document.get("algorithm") != ALGORITHM or not isinstance(signed, dict):
            raise CheckpointInvalid(f"not an {ALGORITHM} checkpoint")
        public = Ed25519PublicKey.from_public_bytes(
            base64.b64decode(document["public_key"], validate=True)
        )
        signature = base64.b64decode(document["signature"], validate=True)
        public.verify(signature, canonical_payload(signed))
    except CheckpointInvalid:
        raise
    except InvalidSignature as exc:
        raise CheckpointInvalid("the signature does not match the checkpoint") from exc
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise CheckpointInvalid(f"malformed checkpoint: {exc}") from exc
    for field, kind in (("chain", str), ("head_seq", int), ("head_hash", str)):
        if not isinstance(signed.get(field), kind):
            raise CheckpointInvalid(f"malformed checkpoint: {field!r} is missing or wrong")
    return signed
