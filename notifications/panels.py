"""Dashboard panels of notifications that are not charts."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.urls import reverse
from django.utils import timezone

from notifications.models import DeliveryAttempt, HandBackReason, Notification
from notifications.services.hand_back import hand_back_waiting, handed_back_by_reason
from portal.dashboard import PanelContent, PanelTable
from portal.models import Bank, MessengerIntegration

RECENT_FAILURES = 8
RECENT_FAILURES_DAYS = 30


def _classified(notification: Notification) -> str:
    """What went wrong, in the words of the error class of the last attempt that failed."""
    attempts = [a for a in notification.delivery_attempts.all() if a.outcome != "sent"]
    reason = notification.get_reason_display()
    if not attempts:
        return reason
    last = attempts[-1]
    label = last.get_outcome_display()
    if last.error_code is not None:
        code = f"{last.error_code}" + (f"/{last.error_subcode}" if last.error_subcode else "")
        label = f"{label} (error {code})"
    return f"{label}: {reason}" if reason and reason != label else label


def recent_failures_panel(bank: Bank) -> PanelContent | None:
    """The bank's latest failed and dead-lettered notifications, each with its classified
    reason, so staff see what broke without opening the delivery log."""
    since = timezone.now() - timedelta(days=RECENT_FAILURES_DAYS)
    failed = list(
        Notification.objects.for_bank(bank)
        .filter(state__in=(Notification.State.FAILED, Notification.State.DEAD))
        .filter(finished_at__gte=since)
        .select_related("event")
        .prefetch_related(
            Prefetch(
                "delivery_attempts",
                queryset=DeliveryAttempt.objects.order_by("number"),
            )
        )
        .order_by("-finished_at", "-id")[:RECENT_FAILURES]
    )
    if not failed:
        return None
    rows = [
        (
            timezone.localtime(n.finished_at, ZoneInfo(bank.timezone)).strftime("%d %b %H:%M"),
            n.get_event_type_display(),
            n.event.event_id,
            n.get_state_display(),
            _classified(n),
            n.detail,
        )
        for n in failed
    ]
    return PanelContent(
        caption=f"The latest {len(rows)} failures of the last {RECENT_FAILURES_DAYS} days, "
        f"newest first, in {bank.timezone} time.",
        table=PanelTable(
            columns=("When", "Update", "Event", "Outcome", "Why", "Messenger said"),
            rows=rows,
            caption="Recent delivery failures",
        ),
    )


HAND_BACK_DAYS = 30


def hand_back_panel(bank: Bank) -> PanelContent | None:
    """What Messenger could not carry: handed back to the bank's own channels lately, or,
    while the bank has no callback URL to receive them, a warning that such updates are
    waiting with nowhere to go."""
    integration = MessengerIntegration.objects.for_bank(bank).first()
    if integration is None:
        return None
    if not (integration.callback_url and integration.callback_signing_secret):
        waiting = hand_back_waiting(bank.pk, integration=integration)
        if not waiting:
            return None
        return PanelContent(
            value=waiting,
            caption=(
                f"update{'s' if waiting != 1 else ''} Messenger cannot carry "
                f"{'are' if waiting != 1 else 'is'} being held: no callback URL is set, so "
                "they cannot be handed back to your own channels (SMS, app push). Set it "
                "under Page credentials."
            ),
            link_url=reverse("portal:integration_credentials", args=[bank.slug]),
            link_text="Page credentials",
            alarm=True,
        )
    since = timezone.now() - timedelta(days=HAND_BACK_DAYS)
    counts = handed_back_by_reason(bank, since=since)
    total = sum(counts.values())
    if not total:
        return None
    return PanelContent(
        value=total,
        caption=f"updates handed back to your callback in the last {HAND_BACK_DAYS} days, "
        "for your own channels to deliver",
        table=PanelTable(
            columns=("Why Messenger could not carry them", "Updates"),
            rows=[
                (HandBackReason(reason).label, str(counts[reason]))
                for reason in HandBackReason.values
                if counts.get(reason)
            ],
            caption="Handed back, by reason",
        ),
        link_url=reverse("conversation:fraud_answers", args=[bank.slug]) + "#callback-log",
        link_text="The callback log",
    )
