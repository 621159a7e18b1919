"""What notifications shows auditors and hands over on a data-subject request.

Registered from `NotificationsConfig.ready` into linking's and the portal's registries:
- the "Notifications sent" section of a link's page in the staff console;
- the notifications part of a customer's data-subject download.
Its erasure and the retention purge are writes: `notifications.services.privacy`.
"""

from django.db.models import Count, Q
from django.template.loader import render_to_string

from linking.models import Consent
from notifications.models import Event, Notification, Outcome
from portal.events import DataScope

SECTION_LIMIT = 200


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


# The data-subject download


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
                # Sent in one message with others (a digest): the notification leading it.
                "digest": n.digest,
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
