"""Reads of notifications, always scoped to one bank."""

import datetime as dt
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, F
from django.db.models.functions import TruncDay, TruncHour
from django.urls import reverse
from django.utils import timezone

from core.db import partitions
from core.db.partitions import Month
from notifications.models import (
    DeliveryAttempt,
    Event,
    MessageEcho,
    Notification,
    Outcome,
)
from portal.charts import Chart, Series
from portal.dashboard import PanelContent
from portal.models import Bank

FAILED_STATES = (Notification.State.FAILED, Notification.State.DEAD)
PANEL_GROUP = {
    Notification.State.READ: "read",
    Notification.State.DELIVERED: "delivered",
    Notification.State.FAILED: "failed",
    Notification.State.DEAD: "failed",
}
PANEL_SERIES = (
    ("read", "Read", "ok"),
    ("delivered", "Delivered", "info"),
    ("sent", "Sent, no receipt yet", "neutral"),
    ("failed", "Failed or dead-lettered", "bad"),
)


def last_sent_by_consent(consent_ids: list[int]) -> dict[int, datetime]:
    """When the last update was sent under each of these consents (the customer's
    dashboard tells links apart by it)."""
    from django.db.models import Max

    rows = (
        Notification.objects.filter(consent_id__in=consent_ids, sent_at__isnull=False)
        .values("consent_id")
        .annotate(last=Max("sent_at"))
    )
    return {row["consent_id"]: row["last"] for row in rows}


def event_get(*, bank: Bank, event_id: str) -> Event | None:
    return (
        Event.objects.for_bank(bank)
        .select_related("customer", "account")
        .filter(key__bank=bank, key__reference=event_id)
        .first()
    )


def outcome_list(*, bank: Bank, after_id: int, limit: int) -> list[Outcome]:
    """Up to `limit` outcomes of `bank` with ids above `after_id`, oldest first, each
    with its notification's class (`notification_urgency`, None for event outcomes)."""
    return list(
        Outcome.objects.for_bank(bank)
        .filter(id__gt=after_id)
        .annotate(notification_urgency=F("notification__urgency"))
        .order_by("id")[:limit]
    )


def notification_list_for_event(*, event: Event) -> list[Notification]:
    return list(Notification.objects.for_bank(event.bank_id).filter(event=event).order_by("id"))


def uncertain_send_count(*, bank: Bank | None = None) -> int:
    """Sends that may have reached a person without us knowing: a connection lost in
    flight, an unreadable success, or a worker that died mid-send (see `DeliveryAttempt`)."""
    attempts = DeliveryAttempt.objects.filter(outcome__in=DeliveryAttempt.UNKNOWN)
    if bank is not None:
        attempts = attempts.for_bank(bank)
    return attempts.count()


@dataclass(frozen=True)
class EchoCounts:
    """What echoes decided for the bank's uncertain sends since a moment."""

    settled: int  # found sent by their message's echo
    resent: int  # sent again, once, because no echo came within the wait
    waiting: int  # waiting for their echo now


def echo_counts(*, bank: Bank, since: datetime) -> EchoCounts:
    mine = Notification.objects.for_bank(bank)
    return EchoCounts(
        settled=MessageEcho.objects.for_bank(bank)
        .filter(outcome=MessageEcho.Outcome.SETTLED, received_at__gte=since)
        .count(),
        resent=mine.filter(resent=True, queued_at__gte=since).count(),
        waiting=mine.filter(
            state=Notification.State.PENDING, reason=Notification.Reason.AWAITING_ECHO
        ).count(),
    )


def dead_letter_list(*, bank: Bank, limit: int = 100) -> list[Notification]:
    """The bank's dead-lettered notifications, newest first, with their attempts."""
    return list(
        Notification.objects.for_bank(bank)
        .filter(state=Notification.State.DEAD)
        .select_related("event")
        .prefetch_related("delivery_attempts")
        .order_by("-finished_at", "-id")[:limit]
    )


def dead_letters_filtered(
    *,
    bank: Bank,
    event_type: str = "",
    reason: str = "",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
):
    """The bank's dead-lettered notifications matching a filter, newest first, with their
    event and attempts; `date_from`/`date_to` bound the day (UTC) they were dead-lettered."""
    found = Notification.objects.for_bank(bank).filter(state=Notification.State.DEAD)
    if event_type:
        found = found.filter(event_type=event_type)
    if reason:
        found = found.filter(reason=reason)
    if date_from:
        found = found.filter(finished_at__gte=_day_start(date_from))
    if date_to:
        found = found.filter(finished_at__lt=_day_start(date_to + timedelta(days=1)))
    return (
        found.select_related("event")
        .prefetch_related("delivery_attempts")
        .order_by(F("finished_at").desc(nulls_last=True), "-id")
    )


def _day_start(day: dt.date) -> datetime:
    return datetime.combine(day, dt.time.min, tzinfo=dt.UTC)


def dead_letter_get(*, bank: Bank, pk: int) -> Notification | None:
    return Notification.objects.for_bank(bank).filter(pk=pk, state=Notification.State.DEAD).first()


# The states whose counts make the outbox's depth, each counted through a partial index.
DEPTH_STATES = (
    Notification.State.PENDING,
    Notification.State.HELD,
    Notification.State.IN_FLIGHT,
    Notification.State.DEAD,
)


def outbox_depth(*, bank: Bank | None = None) -> dict[str, int]:
    """Notifications in the outbox by state: waiting to go out, held, being sent, and
    dead-lettered (waiting for staff). Read by `/metrics` (every bank) and the dashboard's
    deliveries panel (one bank). Rows that reached a final state are never counted, so
    the cost follows the backlog, not the history."""
    rows = Notification.objects.all() if bank is None else Notification.objects.for_bank(bank)
    return {state: rows.filter(state=state).count() for state in DEPTH_STATES}


@dataclass(frozen=True)
class ClassQueue:
    """One class's queue: notifications waiting to go out, and how long the oldest one
    that could go now (due, at the head of its person's queue) has been due."""

    depth: int
    oldest_due_seconds: float


def outbox_queue_by_class(
    *, bank: Bank | None = None, pending: int | None = None, now: datetime | None = None
) -> dict[str, ClassQueue]:
    """The pending queue of each class, urgent and routine (`ClassQueue`), for `/metrics`
    (every bank) and the deliveries panel (one bank).

    Urgent rows are counted through their own partial indexes (due, and waiting behind
    a message of the same person); routine ones are the other pending rows (`pending`
    counts them all when the caller has counted them already, `outbox_depth`). The oldest
    due head of each class is the first of its due index, so a growing routine age with
    a flat urgent one is a Page at its limit doing what it should.
    """
    now = now or timezone.now()
    rows = Notification.objects.all() if bank is None else Notification.objects.for_bank(bank)
    pending_rows = rows.filter(state=Notification.State.PENDING)
    urgent = pending_rows.filter(urgency=Notification.Urgency.URGENT)
    urgent_depth = urgent.filter(waiting=False).count() + urgent.filter(waiting=True).count()
    depth = {
        Notification.Urgency.URGENT: urgent_depth,
        # Counted a moment apart from the urgent ones: never below zero.
        Notification.Urgency.ROUTINE: max(
            0, (pending_rows.count() if pending is None else pending) - urgent_depth
        ),
    }
    queues = {}
    for urgency in Notification.Urgency:
        oldest = (
            pending_rows.filter(waiting=False, urgency=urgency, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "id")
            .values_list("next_attempt_at", flat=True)
            .first()
        )
        waited = 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())
        queues[urgency.value] = ClassQueue(depth[urgency], waited)
    return queues


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def deliveries_panel(bank: Bank) -> PanelContent | None:
    """The dashboard's deliveries panel: the last 24 hours by hour, 30 days by day.

    Each bar stacks the messages sent in that hour or day by what became of them (read,
    delivered, no receipt yet) and the notifications that failed or were dead-lettered.
    """
    mine = Notification.objects.for_bank(bank)
    if not mine.exists():
        return None
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    hours = [hour - timedelta(hours=n) for n in range(23, -1, -1)]
    days = [day - timedelta(days=n) for n in range(29, -1, -1)]
    charts, totals = [], {}
    for title, slots, trunc, label in (
        ("Last 24 hours", hours, TruncHour, "%H:00"),
        ("Last 30 days", days, TruncDay, "%d %b"),
    ):
        since = slots[0]
        counts: dict[tuple[datetime, str], int] = {}
        sent = (
            mine.filter(sent_at__gte=since)
            .annotate(slot=trunc("sent_at", tzinfo=dt.UTC))
            .values_list("slot", "state")
            .annotate(n=Count("pk"))
            .order_by()
        )
        failed = (
            mine.filter(finished_at__gte=since, state__in=FAILED_STATES)
            .annotate(slot=trunc("finished_at", tzinfo=dt.UTC))
            .values_list("slot", "state")
            .annotate(n=Count("pk"))
            .order_by()
        )
        for slot, state, n in [*sent, *failed]:
            key = (slot, PANEL_GROUP.get(state, "sent"))
            counts[key] = counts.get(key, 0) + n
        series = [
            Series(name, [counts.get((slot, group), 0) for slot in slots], tone)
            for group, name, tone in PANEL_SERIES
        ]
        totals[title] = {
            group: sum(counts.get((slot, group), 0) for slot in slots) for group, *_ in PANEL_SERIES
        }
        charts.append(
            Chart(
                title=title,
                labels=[slot.strftime(label) for slot in slots],
                series=series,
                description=f"Notifications sent, delivered, read and failed, {title.lower()}.",
            )
        )
    day_totals = totals["Last 24 hours"]
    sent_today = day_totals["read"] + day_totals["delivered"] + day_totals["sent"]
    echoes = echo_counts(bank=bank, since=days[0])
    depth = outbox_depth(bank=bank)
    dead_waiting = depth[Notification.State.DEAD]
    waiting = depth[Notification.State.PENDING] + depth[Notification.State.IN_FLIGHT]
    return PanelContent(
        value=sent_today,
        caption=(
            f"messages sent in the last 24 hours; {day_totals['failed']} failed, "
            f"{dead_waiting} dead-lettered in all; {waiting} on their way, "
            f"{depth[Notification.State.HELD]} held; "
            + "; ".join(
                f"{urgency}: {queue.depth} waiting"
                + (f", oldest due {_age(queue.oldest_due_seconds)}" if queue.depth else "")
                for urgency, queue in outbox_queue_by_class(
                    bank=bank, pending=depth[Notification.State.PENDING]
                ).items()
            )
            + f"; uncertain sends in 30 days: {echoes.settled} found sent by their echo, "
            f"{echoes.resent} resent once for want of one"
            + (f", {echoes.waiting} waiting for their echo" if echoes.waiting else "")
        ),
        charts=charts,
        link_url=reverse("deliveries:dead_letters", kwargs={"bank": bank.slug}),
        link_text=f"Dead letters ({dead_waiting})",
    )


def partition_months_ready(*, now: datetime | None = None) -> dict[str, int]:
    """By month-partitioned table, how many months from this one on have their partition
    (0: this month's rows cannot be written); empty where tables are plain (SQLite)."""
    if not partitions.supported():
        return {}
    this = Month.of(now or timezone.now())
    ready = {}
    for model in (Event, Notification, Outcome, DeliveryAttempt):
        table = model._meta.db_table
        months = {p.month for p in partitions.partitions_list(table) if p.month is not None}
        count = 0
        while this + count in months:
            count += 1
        ready[table] = count
    return ready
