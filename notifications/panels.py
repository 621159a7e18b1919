"""Dashboard panels of notifications that are not charts."""

from datetime import timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification
from portal.dashboard import PanelContent, PanelTable
from portal.models import Bank

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
