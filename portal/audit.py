"""The pieces of the audit log shared by writing and verifying: actors and entry hashes."""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass

from django.core.serializers.json import DjangoJSONEncoder

from bankside.logging import redact
from portal.pseudonyms import pseudonymise

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who did something: a staff user, an API key, a customer, the platform, or the system."""

    type: str
    id: str = ""
    label: str = ""

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls("staff", str(user.pk), user.get_username())

    @classmethod
    def system(cls, label: str) -> "Actor":
        return cls("system", "", label)


def normalise_json(value):
    """`value` as it will read back from a JSON column, so the hash covers what is stored."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def stored_details(details: dict | None) -> dict:
    """Audit details as an entry stores and hashes them.

    Personal values (a PSID) become their pseudonymous reference first, then secret-named
    keys are masked: in that order, or a PSID's digits would be masked as a card number
    and the entry could no longer be found by it. Entries are never erased, so they never
    hold personal data.
    """
    return normalise_json(redact(pseudonymise(details or {})))


def canonical_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def entry_hash(
    *,
    chain_key: str,
    seq: int,
    bank_id: int | None,
    occurred_at: dt.datetime,
    actor_type: str,
    actor_id: str,
    actor_label: str,
    action: str,
    target_type: str,
    target_id: str,
    request_id: str,
    source_ip: str | None,
    details,
    data_categories,
    prev_hash: str,
) -> str:
    document = {
        "chain": chain_key,
        "seq": seq,
        "bank": bank_id,
        "occurred_at": canonical_time(occurred_at),
        "actor": [actor_type, actor_id, actor_label],
        "action": action,
        "target": [target_type, target_id],
        "request_id": request_id,
        "source_ip": source_ip,
        "details": details,
        "data_categories": data_categories,
        "prev_hash": prev_hash,
    }
    encoded = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode()).hexdigest()


def hash_of(event, chain_key: str) -> str:
    """Recompute the hash of a stored `AuditEvent` of the chain `chain_key` from its fields."""
    return entry_hash(
        chain_key=chain_key,
        seq=event.seq,
        bank_id=event.bank_id,
        occurred_at=event.occurred_at,
        actor_type=event.actor_type,
        actor_id=event.actor_id,
        actor_label=event.actor_label,
        action=event.action,
        target_type=event.target_type,
        target_id=event.target_id,
        request_id=event.request_id,
        source_ip=event.source_ip,
        details=event.details,
        data_categories=event.data_categories,
        prev_hash=event.prev_hash,
    )
