"""The writes of a data-subject request: its audited reads, and erasure.

Erasure ends the customer's links and tells Messenger through their `PlatformUnlink` rows
(the same rows a revocation's worker and the sweeper use, so each link is unlinked once),
then runs every app's eraser (`linking.subject_data`) in one transaction: personal data
held only for the Messenger features goes, the rows the bank must keep stay with
pseudonymous references, and audit entries — which never held personal data — are left as
they are, so the chain still verifies.
"""

import logging
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import messenger
from linking.models import (
    Account,
    Consent,
    ConsentEvent,
    ConsentText,
    ConsentVersion,
    Contact,
    Customer,
    LinkInvitation,
)
from linking.services.consents import EndedBecause, customer_links_revoke
from linking.services.unlinks import platform_unlink_attempt, platform_unlink_schedule
from linking.subject_data import contributors
from portal.audit import Actor
from portal.models import AuditEvent
from portal.services import audit_record

log = logging.getLogger(__name__)

ERASED_NAME = "Erased customer"


class ErasureBlockedError(Exception):
    """Erasure cannot go ahead yet (Messenger could not be told a link ended); retry later."""


def people_q(people: set[tuple[str, str]]) -> Q:
    """Rows of any of `people`, given as (Page id, PSID) pairs."""
    q = Q(pk__in=[])
    for page_id, psid in people:
        q |= Q(page_id=page_id, psid=psid)
    return q


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


@transaction.atomic
def linking_erase(customer: Customer) -> int:
    """Wipe PSIDs, names used for messages and last-contact times; keep consents and ids.

    Linking's part of `subject_erase`, run inside its transaction and counted in its
    audit entry.
    """
    consents = Consent.objects.filter(customer=customer)
    people = {(page, psid) for page, psid in consents.values_list("page_id", "psid") if psid}
    changed = Contact.objects.filter(bank=customer.bank).filter(people_q(people)).delete()[0]
    changed += consents.exclude(psid="").update(psid="")
    changed += consents.exclude(messenger_name="").update(messenger_name="")
    # An m.me invitation keeps the PSID that brought its ref: erased with the rest.
    changed += (
        LinkInvitation.objects.filter(customer=customer)
        .exclude(bound_psid="")
        .update(bound_psid="")
    )
    changed += (
        ConsentEvent.objects.filter(consent__customer=customer)
        .exclude(actor_label="")
        .filter(actor=ConsentEvent.Actor.CUSTOMER)
        .update(actor_label="")
    )
    changed += _consent_texts_erase(customer)
    changed += Account.objects.filter(customer=customer).update(name="", active=False)
    changed += Customer.objects.filter(pk=customer.pk).update(
        name=ERASED_NAME,
        directory_username=None,
        directory_password="",
        erased_at=timezone.now(),
    )
    return changed


def _consent_texts_erase(customer: Customer) -> int:
    """The words the customer agreed to name them (and their accounts and Messenger name):
    those names are taken out of the texts only this customer's consents point to. The
    digest stays: it still proves what the original words were to whoever holds them."""
    own = Consent.objects.filter(customer=customer)
    ids = set(own.exclude(text=None).values_list("text_id", flat=True)) | set(
        ConsentVersion.objects.filter(consent__customer=customer)
        .exclude(text=None)
        .values_list("text_id", flat=True)
    )
    others = set(
        Consent.objects.filter(text_id__in=ids)
        .exclude(customer=customer)
        .values_list("text_id", flat=True)
    ) | set(
        ConsentVersion.objects.filter(text_id__in=ids)
        .exclude(consent__customer=customer)
        .values_list("text_id", flat=True)
    )
    names = [
        customer.name,
        *own.exclude(messenger_name="").values_list("messenger_name", flat=True),
    ]
    names += list(Account.objects.filter(customer=customer).values_list("name", flat=True))
    names = sorted({n for n in names if n and n.strip()}, key=len, reverse=True)
    changed = 0
    for text in ConsentText.objects.filter(pk__in=ids - others):
        body = text.body
        for name in names:
            body = body.replace(name, ERASED_NAME)
        if body != text.body:
            ConsentText.objects.filter(pk=text.pk).update(body=body)
            changed += 1
    return changed


def _people_of(customer: Customer) -> list[Consent]:
    return list(
        Consent.objects.filter(customer=customer, platform_unlinked_at__isnull=True)
        .filter(status__in=[Consent.Status.REVOKED, Consent.Status.EXPIRED])
        .exclude(psid="")
        .order_by("pk")
    )


def _tell_platform(customer: Customer, *, actor: Actor) -> list[int]:
    """Tell Messenger of every ended link it does not know of yet; returns the ones told.

    Each goes through the link's `PlatformUnlink` row, written now if the link ended
    before such rows were kept: a worker already telling Messenger is waited for, and a
    link it has told is not told again. A link whose bank has no running integration
    cannot be told: nothing more will be sent to that person anyway, and erasure goes
    ahead without it.
    """
    told = []
    for consent in _people_of(customer):
        with transaction.atomic():
            platform_unlink_schedule(consent=consent)
        try:
            platform_unlink_attempt(actor=actor, consent_id=consent.pk, force=True)
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
    Not one transaction as a whole: the links end, and Messenger hears of it, even when
    the erasure that follows must be tried again.
    """
    reason = reason.strip()
    if not reason:
        raise ValidationError({"reason": "Give the reason for the erasure."})
    if customer.erased_at is not None:
        raise ValidationError("This customer's data was already erased.")
    revoked = customer_links_revoke(
        customer=customer,
        actor=actor,
        reason="Erasure requested by the customer",
        ended_because=EndedBecause.ERASED,
    )
    told = _tell_platform(customer, actor=actor)
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
