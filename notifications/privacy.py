"""What notifications shows auditors, hands over on a data-subject request, erases and purges.

Registered from `NotificationsConfig.ready` into linking's and the portal's registries:
- the "Notifications sent" section of a link's page in the staff console;
- the notifications part of a customer's data-subject download, and its erasure;
- the retention purger of message bodies and event data.

Erasure and purge blank what was said (message texts, event data) and the PSIDs, and keep
the rows: the outcome feed, the delivery attempts and the audit chain still refer to them,
and an event id already posted stays a duplicate.
"""

from django.db import transaction
from django.db.models import Count, Q
from django.template.loader import render_to_string

from linking.models import Consent
from notifications.models import (
    Event,
    IdempotencyRecord,
    Notification,
    Outcome,
    Recipient,
)
from portal.events import DataScope

State = Notification.State
SECTION_LIMIT = 200
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


def _iso(value):
    return value.isoformat() if value else None


# The link's page


def link_notifications_section(consent: Consent):
    """Every notification sent under the link, newest first, with its data and outcome."""
    rows = Notification.objects.filter(consent_id=consent.pk)
    total = rows.count()
    if not total:
        return None
    shown = list(
        rows.select_related("event")
        .annotate(attempt_count=Count("delivery_attempts"))
        .order_by("-created_at", "-pk")[:SECTION_LIMIT]
    )
    labels = dict(DataScope.choices)
    for notification in shown:
        notification.category_labels = [labels.get(c, c) for c in notification.data_categories]
    return render_to_string(
        "notifications/privacy/_link_notifications.html",
        {"notifications": shown, "total": total, "limit": SECTION_LIMIT},
    )


# The data-subject download and erasure


def notifications_export(customer) -> dict:
    """The customer's events, each message sent with its text and delivery, and outcomes."""
    events = Event.objects.filter(customer=customer).select_related("account").order_by("pk")
    notifications = (
        Notification.objects.filter(consent__customer=customer)
        .select_related("event", "account")
        .prefetch_related("delivery_attempts")
        .order_by("pk")
    )
    outcomes = (
        Outcome.objects.filter(bank=customer.bank)
        .filter(Q(event__customer=customer) | Q(notification__consent__customer=customer))
        .order_by("pk")
    )
    return {
        "events": [
            {
                "id": e.event_id,
                "type": e.type,
                "account": e.account.external_id,
                "occurred_at": _iso(e.occurred_at),
                "received_at": _iso(e.received_at),
                "data": e.data,
            }
            for e in events
        ],
        "notifications": [
            {
                "id": n.pk,
                "event": n.event.event_id,
                "event_type": n.event_type,
                "consent": n.consent_id,
                "account": n.account.external_id,
                "sent_to": {"page_id": n.page_id, "psid": n.psid},
                "text": n.text,
                "data_categories": n.data_categories,
                "state": n.state,
                "reason": n.reason,
                "detail": n.detail,
                "form": n.form,
                "message_id": n.message_id,
                "created_at": _iso(n.created_at),
                "sent_at": _iso(n.sent_at),
                "delivered_at": _iso(n.delivered_at),
                "read_at": _iso(n.read_at),
                "finished_at": _iso(n.finished_at),
                "delivery_attempts": [
                    {
                        "number": a.number,
                        "form": a.form,
                        "started_at": _iso(a.started_at),
                        "outcome": a.outcome,
                        "error_code": a.error_code,
                        "error_subcode": a.error_subcode,
                        "detail": a.detail,
                    }
                    for a in n.delivery_attempts.all()
                ],
            }
            for n in notifications
        ],
        "outcomes_reported_to_the_bank": [
            {
                "type": o.type,
                "event": o.event_ref,
                "notification": o.notification_id,
                "at": _iso(o.occurred_at),
                "details": o.details,
            }
            for o in outcomes
        ],
    }


def notifications_erase(customer) -> int:
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
    # A stored reply to the core's PUT of this customer repeats their name.
    changed += (
        IdempotencyRecord.objects.filter(bank=customer.bank)
        .filter(endpoint__endswith=f"/customers/{customer.external_id}")
        .delete()[0]
    )
    return changed


# Retention


@transaction.atomic
def notifications_purge(bank, cutoff) -> int:
    """Blank message texts and event data older than `cutoff`; returns the rows changed.

    Only what the delivery engine is done with: finished notifications, and events none
    of whose notifications is still open. Rows stay, so outcomes, attempts and audit
    entries keep pointing at them and an old event id is still a duplicate.
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
    return changed
