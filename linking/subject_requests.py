"""Data-subject requests for one customer: one download of everything held, and erasure.

The download gathers every app's part through `linking.subject_data` (linking's own part
is registered from `LinkingConfig.ready`) plus the audit entries about the customer, and
streams it as one JSON document. Erasure ends the customer's links (Messenger is told),
then runs every app's eraser in one transaction: personal data held only for the
Messenger features goes, the rows the bank must keep stay with pseudonymous references,
and audit entries — which never held personal data — are left as they are, so the chain
still verifies.
"""

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import messenger
from linking import services
from linking.models import Account, Consent, ConsentEvent, Contact, Customer
from linking.selectors import PLATFORM_NAME, consent_receipt
from linking.subject_data import contributors
from portal.audit import Actor
from portal.models import AuditEvent
from portal.pseudonyms import pseudonyms
from portal.services import audit_record

log = logging.getLogger(__name__)

ERASED_NAME = "Erased customer"
FORMAT_VERSION = 1


class ErasureBlockedError(Exception):
    """Erasure cannot go ahead yet (Messenger could not be told a link ended); retry later."""


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
    contacts = Contact.objects.filter(bank=customer.bank).filter(_people_q(people))
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


def linking_erase(customer: Customer) -> int:
    """Wipe PSIDs, names used for messages and last-contact times; keep consents and ids."""
    consents = Consent.objects.filter(customer=customer)
    people = {(page, psid) for page, psid in consents.values_list("page_id", "psid") if psid}
    changed = Contact.objects.filter(bank=customer.bank).filter(_people_q(people)).delete()[0]
    changed += consents.exclude(psid="").update(psid="")
    changed += (
        ConsentEvent.objects.filter(consent__customer=customer)
        .exclude(actor_label="")
        .filter(actor=ConsentEvent.Actor.CUSTOMER)
        .update(actor_label="")
    )
    changed += Account.objects.filter(customer=customer).update(name="", active=False)
    changed += Customer.objects.filter(pk=customer.pk).update(
        name=ERASED_NAME,
        directory_username=None,
        directory_password="",
        erased_at=timezone.now(),
    )
    return changed


def _people_q(people: set[tuple[str, str]]) -> Q:
    q = Q(pk__in=[])
    for page_id, psid in people:
        q |= Q(page_id=page_id, psid=psid)
    return q


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
    return AuditEvent.objects.filter(bank=customer.bank).filter(about).order_by("seq")


def _audit_row(entry: AuditEvent) -> dict:
    return {
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


@transaction.atomic
def subject_page_view_record(*, customer: Customer, actor: Actor) -> AuditEvent:
    """Record that staff opened the customer's data-subject page (reads are audited)."""
    return audit_record(
        actor=actor,
        action="customer_data.viewed",
        bank=customer.bank,
        target=customer,
        details={"page": "data-subject request"},
    )


@transaction.atomic
def subject_export_record(*, customer: Customer, actor: Actor) -> AuditEvent:
    """Record that `actor` downloaded the customer's data, before anything is sent."""
    return audit_record(
        actor=actor,
        action="subject_data.exported",
        bank=customer.bank,
        target=customer,
        details={"parts": [c.key for c in contributors()]},
    )


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


# Erasure


def _people_of(customer: Customer) -> list[Consent]:
    return list(
        Consent.objects.filter(customer=customer, platform_unlinked_at__isnull=True)
        .filter(status__in=[Consent.Status.REVOKED, Consent.Status.EXPIRED])
        .exclude(psid="")
        .order_by("pk")
    )


def _tell_platform(customer: Customer) -> list[int]:
    """Tell Messenger of every ended link it does not know of yet; returns the ones told.

    A link whose bank has no running integration cannot be told: nothing more will be
    sent to that person anyway, and erasure goes ahead without it.
    """
    from linking.tasks import unlink_in_messenger

    told = []
    for consent in _people_of(customer):
        try:
            unlink_in_messenger(consent.pk)
        except messenger.MessengerError as exc:
            log.warning("erasure of customer %s: unlink failed: %s", customer.pk, exc)
            raise ErasureBlockedError(
                "Messenger could not be told that the customer's link ended "
                f"({type(exc).__name__}). The links are revoked; nothing was erased yet. "
                "Try the erasure again later."
            ) from exc
        if Consent.objects.filter(pk=consent.pk, platform_unlinked_at__isnull=False).exists():
            told.append(consent.pk)
    return told


def _scrub(text: str, customer: Customer) -> str:
    """The admin's reason without the customer's name: the audit entry is kept for good."""
    if customer.name and customer.name != ERASED_NAME:
        lowered, name = text.lower(), customer.name.lower()
        while name in lowered:
            start = lowered.index(name)
            text = text[:start] + "[customer]" + text[start + len(name) :]
            lowered = text.lower()
    return text


@dataclass(frozen=True)
class Erasure:
    rows_changed: dict[str, int]
    links_revoked: list[int]
    messenger_told: list[int]


def subject_erase(*, customer: Customer, actor: Actor, reason: str) -> Erasure:
    """Erase the customer's personal data held for the Messenger features.

    First every active link is revoked through `consent_revoke` (audited, pending updates
    stop) and Messenger is told through the unlink API while the PSID is still known.
    Then, in one transaction, every app's eraser runs; one failing undoes them all. The
    audit entry names the customer by the bank's id and holds the counts, never the data.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for the erasure."})
    if customer.erased_at is not None:
        raise ValidationError("This customer's data was already erased.")
    revoked = services.customer_links_revoke(
        customer=customer, actor=actor, reason="Erasure requested by the customer"
    )
    told = _tell_platform(customer)
    with transaction.atomic():
        customer = Customer.objects.select_for_update().get(pk=customer.pk)
        if customer.erased_at is not None:
            raise ValidationError("This customer's data was already erased.")
        counts = {}
        for contributor in sorted(contributors(), key=lambda c: (-c.order, c.key)):
            if contributor.erase is not None:
                counts[contributor.key] = int(contributor.erase(customer) or 0)
        audit_record(
            actor=actor,
            action="subject_data.erased",
            bank=customer.bank,
            target=customer,
            details={
                "reason": _scrub(reason, customer)[:300],
                "customer_id": customer.external_id,
                "links_revoked": [c.pk for c in revoked],
                "messenger_told": told,
                "rows_changed": counts,
            },
        )
    return Erasure(rows_changed=counts, links_revoked=[c.pk for c in revoked], messenger_told=told)
