"""The pieces of the audit log shared by writing and verifying: actors and entry hashes."""

import datetime as dt
import json
from dataclasses import dataclass
from json.encoder import encode_basestring  # what `_canonical` writes a text with

from django.core.serializers.json import DjangoJSONEncoder

from core.digests import sha256_hex
from core.logging import redact
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


_READ_BACK_AS_WRITTEN = (str, int, bool, type(None))


def normalise_json(value):
    """`value` as it will read back from a JSON column, so the hash covers what is stored.

    A flat object of texts, integers, truths and nulls under text keys (most details) reads
    back as it is: copied without the round trip through JSON, a text choice as its text."""
    if type(value) is dict:
        flat = {}
        for key, item in value.items():
            if type(key) is not str:
                break
            if type(item) in _READ_BACK_AS_WRITTEN:
                flat[key] = item
            elif isinstance(item, str):  # a text choice (`TextChoices`): its text
                flat[key] = str.__str__(item)
            else:
                break
        else:
            return flat
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


_canonical = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode


def _scalar(value: object) -> str:
    """`_canonical(value)`, at once for a text, an integer or None: what the encoder itself
    does with them, without setting one up for each of an entry's dozen small values."""
    if type(value) is str:
        return encode_basestring(value)
    if type(value) is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return _canonical(value)


def _items(values: object) -> str:
    """`_canonical(values)` for a list or tuple, each item as `_scalar` writes it."""
    if type(values) is list or type(values) is tuple:
        return "[" + ",".join(map(_scalar, values)) + "]"
    return _canonical(values)


@dataclass(frozen=True, slots=True)
class EntryDocument:
    """The canonical JSON text an entry's hash is taken of (every field, keys sorted, no
    spaces, text as it is), with holes for the three values the chain gives it: `head`,
    then the key of the lane the entry is appended to as a JSON string, `before`, the
    previous entry's hash as a JSON string, `between`, the entry's sequence number, then
    `after`.

    The holes let the database fill them in from the lane head it has locked, in the
    statement that appends the entry (portal.services.audit), and hash the same text
    `entry_hash` does.
    """

    head: str
    before: str
    between: str
    after: str
    details: str  # the details' canonical JSON, part of `before`

    def text(self, *, chain_key: str, prev_hash: str, seq: int) -> str:
        return (
            f"{self.head}{_scalar(chain_key)}{self.before}{_scalar(prev_hash)}"
            f"{self.between}{_scalar(seq)}{self.after}"
        )


def entry_document(
    *,
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
) -> EntryDocument:
    """The document of an entry, its keys in sorted order: action, actor, bank, chain (a
    hole), data_categories, details, occurred_at, prev_hash (a hole), request_id, seq (a
    hole), source_ip, target."""
    details_text = _canonical(details)
    return EntryDocument(
        head=(
            f'{{"action":{_scalar(action)}'
            f',"actor":{_items((actor_type, actor_id, actor_label))}'
            f',"bank":{_scalar(bank_id)}'
            f',"chain":'
        ),
        before=(
            f',"data_categories":{_items(data_categories)}'
            f',"details":{details_text}'
            f',"occurred_at":{_scalar(canonical_time(occurred_at))}'
            f',"prev_hash":'
        ),
        between=f',"request_id":{_scalar(request_id)},"seq":',
        after=(f',"source_ip":{_scalar(source_ip)},"target":{_items((target_type, target_id))}}}'),
        details=details_text,
    )


def entry_hash(*, chain_key: str, seq: int, prev_hash: str, **fields) -> str:
    """The hash of an entry of the lane `chain_key`: SHA-256 of its document with the
    lane's key, `prev_hash` and `seq` filled in. `fields` are `entry_document`'s."""
    text = entry_document(**fields).text(chain_key=chain_key, prev_hash=prev_hash, seq=seq)
    return sha256_hex(text)


def hash_of(event, chain_key: str) -> str:
    """Recompute the hash of a stored `AuditEvent` of the lane `chain_key` from its fields."""
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
