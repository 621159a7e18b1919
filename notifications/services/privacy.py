"""Notifications' part of a data-subject erasure and of the retention purge.

Both run as registered parts of a larger write (`linking`'s `subject_erase`, the portal's
`retention_purge`), inside its transaction and under its one audit entry, which counts the
rows they return. They blank what was said (message texts, event data) and the PSIDs, and
keep the rows: the outcome feed, the delivery attempts and the audit chain still refer to
them, and an event id already posted stays a duplicate.
"""

from datetime import datetime

from django.db import transaction
from django.db.models import Q

from linking.models import Consent, Customer
from notifications.models import Event, MessageEcho, Notification, Recipient
from portal.models import Bank, IdempotencyRecord
from portal.pseudonyms import pseudonyms

State = Notification.State
# A notification in these states is done with: the delivery engine never reads it again.
FINISHED = (
    State.SENT,
    State.DELIVERED,
    State.READ,
    State.FAILED,
    State.DEAD,
    State.CANCELLED,
    State.SUPERSEDED,
)
UNFINISHED = (State.PENDING, State.HELD, State.IN_FLIGHT)


@transaction.atomic
def notifications_erase(customer: Customer) -> int:
    """Blank the customer's message texts, event data and PSIDs; forget them as recipients.

    Runs after the customer's links were revoked: anything still open is cancelled here
    (the same service a revocation calls), so the delivery engine never picks up a blanked
    notification. A message a worker is sending right now keeps its state and gets a
    placeholder recipient: the unique in-flight index allows one per person.
    """
    from notifications.services.lifecycle import notifications_cancel_for_link

    consents = list(Consent.objects.filter(customer=customer).values_list("pk", "page_id", "psid"))
    for consent_id, _, _ in consents:
        notifications_cancel_for_link(consent_id=consent_id)
    mine = Notification.objects.filter(consent__customer=customer)
    people = {(page, psid) for _, page, psid in consents if psid}
    people |= {(page, psid) for page, psid in mine.exclude(psid="").values_list("page_id", "psid")}
    changed = 0
    for pk in mine.filter(state=State.IN_FLIGHT).values_list("pk", flat=True):
        changed += Notification.objects.filter(pk=pk).update(text="", psid=f"erased-{pk}")
    changed += (
        mine.exclude(state=State.IN_FLIGHT)
        .filter(~Q(text="") | ~Q(psid=""))
        .update(text="", psid="")
    )
    changed += Event.objects.filter(customer=customer).exclude(data={}).update(data={})
    recipients = Q(pk__in=[])
    for page_id, psid in people:
        recipients |= Q(page_id=page_id, psid=psid)
    changed += Recipient.objects.filter(bank=customer.bank).filter(recipients).delete()[0]
    # Echoes hold the person as a pseudonym only, but nothing needs them any more.
    refs = [ref for _, psid in people for ref in pseudonyms(psid)]
    changed += MessageEcho.objects.filter(bank=customer.bank, recipient_ref__in=refs).delete()[0]
    # A stored reply to the core's PUT of this customer repeats their name.
    changed += (
        IdempotencyRecord.objects.filter(bank=customer.bank)
        .filter(endpoint__endswith=f"/customers/{customer.external_id}")
        .delete()[0]
    )
    return changed


# Retention


@transaction.atomic
def notifications_purge(bank: Bank, cutoff: datetime) -> int:
    """Blank message texts and event data older than `cutoff`; returns the rows changed.

    Only what the delivery engine is done with: finished notifications, and events none
    of whose notifications is still open. Rows stay, so outcomes, attempts and audit
    entries keep pointing at them and an old event id is still a duplicate. Echoes older
    than `cutoff` go: they only served to settle their sends.
    """
    changed = (
        Notification.objects.filter(bank=bank, created_at__lt=cutoff, state__in=FINISHED)
        .exclude(text="")
        .update(text="")
    )
    open_events = Notification.objects.filter(bank=bank, state__in=UNFINISHED).values("event_id")
    changed += (
        Event.objects.filter(bank=bank, received_at__lt=cutoff, status=Event.Status.PROCESSED)
        .exclude(data={})
        .exclude(pk__in=open_events)
        .update(data={})
    )
    changed += MessageEcho.objects.filter(bank=bank, received_at__lt=cutoff).delete()[0]
    return changed
