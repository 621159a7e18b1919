"""Data-subject requests for one customer: one download of everything held.

The download gathers every app's part through `linking.subject_data` (linking's own part
is registered from `LinkingConfig.ready`) plus the audit entries about the customer, and
streams it as one JSON document. The writes — the audited reads, and erasure — are in
`linking.services.subject_requests`.
"""

import json
from collections.abc import Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Q
from django.utils import timezone

from linking.models import Consent, Contact, Customer
from linking.selectors import PLATFORM_NAME, consent_receipt
from linking.services.subject_requests import people_q
from linking.subject_data import contributors
from portal.models import AuditEvent
from portal.pseudonyms import pseudonyms

FORMAT_VERSION = 1


# Linking's own part


def _iso(value):
    return value.isoformat() if value else None


def linking_export(customer: Customer) -> dict:
    """The customer, their accounts, consents with timelines and receipts, and contacts."""
    consents = list(
        Consent.objects.filter(customer=customer)
        .select_related("bank")
        .prefetch_related("accounts", "events")
        .order_by("created_at", "pk")
    )
    people = {(c.page_id, c.psid) for c in consents if c.psid}
    contacts = Contact.objects.filter(bank=customer.bank).filter(people_q(people))
    return {
        "customer": {
            "id": customer.external_id,
            "name": customer.name,
            "locale": customer.locale,
            "demo_login": customer.directory_username or None,
            "created_at": _iso(customer.created_at),
            "updated_at": _iso(customer.updated_at),
            "erased_at": _iso(customer.erased_at),
        },
        "accounts": [
            {
                "id": a.external_id,
                "kind": a.kind,
                "name": a.name,
                "last4": a.last4,
                "currency": a.currency,
                "balance": str(a.balance),
                "active": a.active,
            }
            for a in customer.accounts.order_by("pk")
        ],
        "consents": [
            {
                "id": c.pk,
                "status": c.status,
                "scopes": c.scopes,
                "accounts": [a.external_id for a in c.accounts.all()],
                "purpose": c.purpose,
                "duration_days": c.duration_days,
                "created_at": _iso(c.created_at),
                "granted_at": _iso(c.granted_at),
                "expires_at": _iso(c.expires_at),
                "ended_at": _iso(c.ended_at),
                "messenger_link": {
                    "page_id": c.page_id,
                    "psid": c.psid,
                    "linked_at": _iso(c.linked_at),
                    "platform_told_of_unlink_at": _iso(c.platform_unlinked_at),
                }
                if c.page_id or c.psid
                else None,
                "timeline": [
                    {
                        "from": e.from_status or None,
                        "to": e.to_status,
                        "actor": e.actor,
                        "actor_label": e.actor_label,
                        "reason": e.reason,
                        "at": _iso(e.occurred_at),
                    }
                    for e in c.events.all()
                ],
                "receipt": consent_receipt(c),
            }
            for c in consents
        ],
        "messenger_contacts": [
            {"page_id": c.page_id, "psid": c.psid, "last_message_at": _iso(c.last_inbound_at)}
            for c in contacts
        ],
    }


# Audit entries about the customer


def audit_entries_about(customer: Customer):
    """The bank's audit entries whose target, actor or pseudonymous PSID is this customer."""
    consent_rows = list(Consent.objects.filter(customer=customer).values_list("pk", "psid"))
    consent_ids = [str(pk) for pk, _ in consent_rows]
    refs = sorted({ref for _, psid in consent_rows for ref in pseudonyms(psid)})
    about = (
        Q(target_type="linking.customer", target_id=str(customer.pk))
        | Q(target_type="linking.consent", target_id__in=consent_ids)
        | Q(actor_type="customer", actor_id=str(customer.pk))
    )
    if refs:
        about |= Q(target_type="messenger.psid", target_id__in=refs)
    return (
        AuditEvent.objects.filter(bank=customer.bank)
        .filter(about)
        .select_related("chain")
        .order_by("occurred_at", "id")
    )


def _audit_row(entry: AuditEvent) -> dict:
    return {
        "chain": entry.chain.key,
        "seq": entry.seq,
        "at": _iso(entry.occurred_at),
        "actor": {"type": entry.actor_type, "id": entry.actor_id, "label": entry.actor_label},
        "action": entry.action,
        "target": {"type": entry.target_type, "id": entry.target_id},
        "details": entry.details,
        "data_categories": entry.data_categories,
        "hash": entry.hash,
    }


# The download


def _dump(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, sort_keys=True)


def subject_export_lines(customer: Customer) -> Iterator[str]:
    """The customer's data as one JSON document, produced piece by piece.

    Each app's part (one customer's rows) is built before the first byte goes out, so a
    part that fails is an error page, not a cut-off document; the audit entries, which
    can be many, are then read with a server-side cursor and written one at a time.
    """
    bank = customer.bank
    header = {
        "format": "bankside data-subject export",
        "version": FORMAT_VERSION,
        "generated_at": timezone.now(),
        "bank": {"name": bank.name, "slug": bank.slug},
        "customer_id": customer.external_id,
        "shared_with": PLATFORM_NAME,
        "about": (
            "Everything bankside holds about this customer and everything it shared with "
            "Messenger: the customer and accounts as the bank's core sent them, consents "
            "with their timelines and receipts, the events, the messages sent and received "
            "and their delivery, and the audit entries about them. Audit entries hold "
            "pseudonymous references (psid_ref) instead of Messenger ids."
        ),
    }
    parts = [(c.key, _dump(c.export(customer))) for c in contributors()]
    return _document(header, parts, audit_entries_about(customer))


def _document(header: dict, parts: list[tuple[str, str]], entries) -> Iterator[str]:
    yield _dump(header)[:-1]
    yield ', "parts": {'
    yield ", ".join(f"{_dump(key)}: {part}" for key, part in parts)
    yield '}, "audit_entries": ['
    for n, entry in enumerate(entries.iterator(chunk_size=1000)):
        yield ("" if n == 0 else ",\n") + _dump(_audit_row(entry))
    yield "]}\n"
