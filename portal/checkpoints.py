"""Signing and checking audit-log checkpoints (Ed25519), with no database access.

A checkpoint signs the heads of every lane of one audit log (a bank's, or the platform's;
portal.services.audit) together. Its signed payload is its canonical JSON (sorted keys,
no spaces, UTF-8):

    {"bank": "harbour", "format": "bankside.audit-checkpoint/v2",
     "lanes": [{"chain": "bank:3", "head_hash": "…", "head_seq": 42},
               {"chain": "bank:3/1", "head_hash": "…", "head_seq": 17}],
     "scope": "bank:3", "signed_at": "2026-01-01T00:00:00.000000+00:00"}

so a third party can check an exported checkpoint with any Ed25519 library and the
public key alone: the signature (base64) is over exactly those bytes, the payload
re-encoded with sorted keys, "," and ":" as separators and non-ASCII text as is. Each
lane is a hash chain of its own; since all of a log's lane heads are signed at once, a
lane cut short or dropped later no longer reaches its signed head, or is missing.

Checkpoints signed before lanes (v1) sign one chain's head and still verify:

    {"bank": "harbour", "chain": "bank:3", "head_hash": "…", "head_seq": 42,
     "signed_at": "2026-01-01T00:00:00.000000+00:00"}
"""

import base64
import binascii
import datetime as dt
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

FORMAT = "bankside.audit-checkpoint/v2"
FORMAT_V1 = "bankside.audit-checkpoint/v1"
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
    *, scope: str, bank: str | None, lanes: list[dict[str, Any]], signed_at: dt.datetime
) -> dict[str, Any]:
    """The signed payload of a checkpoint of every lane of `scope`; `lanes` lists each
    lane's {"chain": key, "head_seq": n, "head_hash": hex}, lane 0 first."""
    return {
        "format": FORMAT,
        "scope": scope,
        "bank": bank,
        "lanes": [
            {"chain": lane["chain"], "head_seq": lane["head_seq"], "head_hash": lane["head_hash"]}
            for lane in lanes
        ],
        "signed_at": _time(signed_at),
    }


def payload_v1(
    *, chain: str, bank: str | None, head_seq: int, head_hash: str, signed_at: dt.datetime
) -> dict[str, Any]:
    """The signed payload of a checkpoint of one chain, as signed before lanes."""
    return {
        "chain": chain,
        "bank": bank,
        "head_seq": head_seq,
        "head_hash": head_hash,
        "signed_at": _time(signed_at),
    }


def lanes_digest(lanes: list[dict[str, Any]]) -> str:
    """One hash standing for every lane head a checkpoint signs (what its list shows)."""
    return hashlib.sha256(canonical_payload({"lanes": lanes})).hexdigest()


def _time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


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
    if "lanes" not in signed:  # v1: one chain's head
        _require(signed, (("chain", str), ("head_seq", int), ("head_hash", str)))
        return signed
    _require(signed, (("format", str), ("scope", str), ("lanes", list)))
    if signed["format"] != FORMAT:
        raise CheckpointInvalid(f"unknown checkpoint format {signed['format']!r}")
    if not signed["lanes"]:
        raise CheckpointInvalid("malformed checkpoint: it lists no lane")
    for lane in signed["lanes"]:
        if not isinstance(lane, dict):
            raise CheckpointInvalid("malformed checkpoint: a lane is not an object")
        _require(lane, (("chain", str), ("head_seq", int), ("head_hash", str)))
    return signed


def _require(fields: dict[str, Any], kinds: tuple[tuple[str, type], ...]) -> None:
    for field, kind in kinds:
        value = fields.get(field)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointInvalid(f"malformed checkpoint: {field!r} is missing or wrong")
