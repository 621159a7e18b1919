"""Hand-back: what Messenger cannot carry goes to the bank's own channels.

An update that Messenger cannot carry is not left held in silence. It becomes a signed
`notification.undeliverable` callback to the bank (DESIGN.md), so that its SMS or app push
reaches the customer instead:

- `outside_window_no_template`: held outside the 24-hour window with no approved utility
  template (or no message template at all);
- `person_unreachable`: the platform says the person cannot be reached;
- `consent_ended`: the customer's consent ended while it waited;
- `dead_lettered`: the retry budget ran out, the platform refused it, or it could not be
  built;
- `integration_paused`: it waits for an integration that staff or the platform paused.

Urgent updates go back at once; routine ones once they are older than the bank's grace
period (`NotificationSettings.hand_back_grace_minutes`), which gives the window time to
open or the integration time to resume. A sweep every few seconds finds them (beat, and a
nudge when the delivery engine records an urgent one).

Handing back is final and happens once: under the row's lock the notification becomes
`handed_back` (its `reason` keeps why), its callback row is written, an outcome
`notification.handed_back` joins the feed and an audit entry the chain, all in one
transaction. Nothing is sent on Messenger afterwards, not even when the window opens, so
the customer never hears of one update on two channels. The callback is then delivered
like every callback to the bank: signed, retried with backoff, and resendable by staff.

A bank without a callback URL (and its signing secret) has nowhere to receive them: its
updates stay as they are, and its dashboard says so while any are waiting.
"""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from notifications import metrics
from notifications.models import HandBackReason, Notification, Outcome
from notifications.services.events import OutcomeRow, outcomes_record
from notifications.services.queue import people_wake
from notifications.signals import notifications_undeliverable
from portal.audit import Actor
from portal.models import Bank, MessengerIntegration, NotificationSettings
from portal.services import AuditEntry, audit_record_many

log = logging.getLogger(__name__)

State, Reason, Urgency = Notification.State, Notification.Reason, Notification.Urgency
HAND_BACK = Actor.system("hand-back")
UNDELIVERABLE = "notification.undeliverable"
DEFAULT_GRACE_MINUTES = 60

# What Messenger cannot carry, whatever the integration's state (the partial index
# `notification_hand_back` covers exactly these rows).
CANNOT_CARRY = Q(state__in=[State.HELD, State.FAILED, State.DEAD]) | Q(
    state=State.CANCELLED, reason=Reason.LINK_ENDED
)


def hand_back_reason(state: str, reason: str, *, paused: bool = False) -> str | None:
    """Why Messenger cannot carry a notification in this state, or None if it still can."""
    if state == State.HELD:
        if reason in (Reason.NO_ALLOWED_FORM, Reason.NO_TEMPLATE):
            return HandBackReason.OUTSIDE_WINDOW_NO_TEMPLATE
        return HandBackReason.DEAD_LETTERED  # a template that cannot be rendered
    if state == State.FAILED:
        if reason == Reason.PERSON_UNAVAILABLE:
            return HandBackReason.PERSON_UNREACHABLE
        return HandBackReason.DEAD_LETTERED
    if state == State.DEAD:
        return HandBackReason.DEAD_LETTERED
    if state == State.CANCELLED and reason == Reason.LINK_ENDED:
        return HandBackReason.CONSENT_ENDED
    if state == State.PENDING and paused:
        return HandBackReason.INTEGRATION_PAUSED
    return None


@dataclass
class HandBackReport:
    """What one sweep did: notifications handed back by reason, and banks passed over
    because they have no callback URL to receive them."""

    handed_back: Counter[str] = field(default_factory=Counter)
    banks_without_callback: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.handed_back.values())


def hand_backs_run(*, now: datetime | None = None, max_batches: int = 50) -> HandBackReport:
    """Hand back, bank by bank, every notification that is due: urgent ones at once,
    routine ones past the bank's grace period. At most `max_batches` transactions per bank
    per run; what is left waits for the next run."""
    now = now or timezone.now()
    report = HandBackReport()
    graces = dict(NotificationSettings.objects.values_list("bank_id", "hand_back_grace_minutes"))
    for integration in MessengerIntegration.objects.order_by("bank_id"):
        if not _can_receive(integration):
            if _candidates(integration, now=now).exists():  # the dashboard counts them
                report.banks_without_callback.append(integration.bank_id)
            continue
        grace = graces.get(integration.bank_id, DEFAULT_GRACE_MINUTES)
        for _ in range(max_batches):
            ids = _due_ids(integration, grace=grace, now=now)
            if not ids:
                break
            done = _hand_back(integration, ids, now=now)
            report.handed_back.update(done)
            if not done:  # all locked by others, or no longer due: the next run looks again
                break
    if report.total:
        metrics.handed_back_observe(report.handed_back)
    return report


def _can_receive(integration: MessengerIntegration) -> bool:
    return bool(integration.callback_url and integration.callback_signing_secret)


def _paused(integration: MessengerIntegration) -> bool:
    return integration.status == MessengerIntegration.Status.PAUSED


def _candidates(integration: MessengerIntegration, *, now: datetime) -> QuerySet[Notification]:
    """The bank's notifications Messenger cannot carry, written within the horizon."""
    horizon = now - timedelta(hours=settings.NOTIFICATIONS_HAND_BACK_HORIZON_HOURS)
    mine = Notification.objects.filter(bank_id=integration.bank_id, created_at__gte=horizon)
    cannot = CANNOT_CARRY
    if _paused(integration):
        # Waiting for the integration: found by Page through `notification_queue`.
        cannot = cannot | Q(page_id=integration.page_id, state=State.PENDING)
    return mine.filter(cannot)


def _due_ids(integration: MessengerIntegration, *, grace: int, now: datetime) -> list[int]:
    cutoff = now - timedelta(minutes=grace)
    return list(
        _candidates(integration, now=now)
        .filter(Q(urgency=Urgency.URGENT) | Q(created_at__lte=cutoff))
        .order_by("created_at", "id")
        .values_list("pk", flat=True)[: settings.NOTIFICATIONS_HAND_BACK_BATCH]
    )


def hand_back_waiting(
    bank_id: int,
    *,
    integration: MessengerIntegration | None = None,
    now: datetime | None = None,
) -> int:
    """How many of the bank's notifications Messenger cannot carry are waiting to be
    handed back (or would be, had the bank a callback URL)."""
    now = now or timezone.now()
    integration = integration or MessengerIntegration.objects.filter(bank_id=bank_id).first()
    if integration is None:
        return 0
    return _candidates(integration, now=now).count()


_COLUMNS = (
    "pk",
    "state",
    "reason",
    "urgency",
    "event_type",
    "created_at",
    "page_id",
    "psid",
    "consent_id",
    "event_id",
    "event__event_id",
    "event__occurred_at",
    "account__external_id",
    "consent__customer__external_id",
    "uncertain",
    "resent",
)


def _hand_back(integration: MessengerIntegration, ids: list[int], *, now: datetime) -> Counter[str]:
    """Hand back those of `ids` that are still due, in one transaction; returns how many
    by reason. Rows another transaction holds are skipped, not waited for."""
    bank = Bank.objects.get(pk=integration.bank_id)
    with transaction.atomic():
        paused = (
            MessengerIntegration.objects.filter(pk=integration.pk)
            .values_list("status", flat=True)
            .first()
            == MessengerIntegration.Status.PAUSED
        )
        still = CANNOT_CARRY | Q(state=State.PENDING) if paused else CANNOT_CARRY
        rows = [
            dict(zip(_COLUMNS, values, strict=True))
            for values in Notification.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(pk__in=ids)
            .filter(still)
            .order_by("pk")
            .values_list(*_COLUMNS)
        ]
        for row in rows:
            row["hand_back"] = hand_back_reason(row["state"], row["reason"], paused=paused)
        rows = [row for row in rows if row["hand_back"] is not None]
        if not rows:
            return Counter()
        by_reason: dict[str, list[int]] = defaultdict(list)
        for row in rows:
            by_reason[row["hand_back"]].append(row["pk"])
        for why, pks in sorted(by_reason.items()):
            Notification.objects.filter(pk__in=pks).update(
                state=State.HANDED_BACK,
                hand_back_reason=why,
                finished_at=now,
                next_attempt_at=None,
                waiting=False,
                lease_owner="",
                lease_expires_at=None,
            )
        webhook_ids = _callbacks_write(bank, rows, now)
        audit_record_many(
            actor=HAND_BACK,
            bank_id=bank.pk,
            entries=[
                _audit_entry(row, webhook_id)
                for row, webhook_id in zip(rows, webhook_ids, strict=True)
            ],
        )
        outcomes_record(
            bank=bank,
            outcomes=[_outcome(bank.pk, row, now) for row in rows],
        )
    pending = [(row["page_id"], row["psid"]) for row in rows if row["state"] == State.PENDING]
    if pending:
        people_wake(pending)  # the next message of each person is no longer behind these
    return Counter(row["hand_back"] for row in rows)


def callback_data(row: dict[str, Any]) -> dict[str, Any]:
    """The `data` of a `notification.undeliverable` callback: what the bank needs to reach
    the customer on its own channels, and no more (the bank has the event itself)."""
    return {
        "notification_id": str(row["pk"]),
        "event_id": row["event__event_id"],
        "event_type": row["event_type"],
        "customer_id": row["consent__customer__external_id"],
        "account_id": row["account__external_id"],
        "reason": row["hand_back"],
        "urgency": row["urgency"],
        "occurred_at": _iso(row["event__occurred_at"]),
        # A send that may have reached the person (its echo never came): the bank may
        # choose not to repeat it.
        "may_have_reached_customer": bool(row["uncertain"] or row["resent"]),
    }


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def _callbacks_write(bank: Bank, rows: list[dict[str, Any]], now: datetime) -> list[str]:
    """Write one callback per row (a receiver above, the conversation's callback outbox,
    does); returns their `webhook-id`s in order. Without a receiver that wrote them all,
    the transaction is undone: nothing is handed back that the bank will not receive."""
    items = [callback_data(row) for row in rows]
    written: list[str] = []
    for _, answer in notifications_undeliverable.send(
        sender=Notification, bank_id=bank.pk, items=items, at=now
    ):
        if answer:
            written = list(answer)
    if len(written) != len(rows):
        raise RuntimeError(
            f"hand-back of {len(rows)} notifications of bank {bank.pk}: "
            f"{len(written)} callbacks written"
        )
    return written


def _audit_entry(row: dict[str, Any], webhook_id: str) -> AuditEntry:
    return AuditEntry(
        action="notification.handed_back",
        target_type="linking.consent",
        target_id=str(row["consent_id"]),
        details={
            "notification": row["pk"],
            "event": row["event__event_id"],
            "event_type": row["event_type"],
            "urgency": row["urgency"],
            "state_before": row["state"],
            "reason": row["hand_back"],
            "webhook_id": webhook_id,
        },
    )


def _outcome(bank_id: int, row: dict[str, Any], now: datetime) -> OutcomeRow:
    return OutcomeRow(
        bank_id=bank_id,
        type=Outcome.Type.NOTIFICATION_HANDED_BACK,
        event_id=row["event_id"],
        notification_id=row["pk"],
        event_ref=row["event__event_id"],
        event_type=row["event_type"],
        details={"reason": row["reason"], "hand_back_reason": row["hand_back"]},
        occurred_at=now,
    )


def hand_back_wanted(results: list[tuple[str, str, str]]) -> bool:
    """Whether any of these (state, reason, urgency) is an urgent notification that
    Messenger cannot carry: the delivery engine then nudges the hand-back at once."""
    return any(
        urgency == Urgency.URGENT and hand_back_reason(state, reason) is not None
        for state, reason, urgency in results
    )


def handed_back_by_reason(bank: Bank, *, since: datetime) -> dict[str, int]:
    """How many of the bank's notifications were handed back since then, by reason."""
    rows = (
        Notification.objects.filter(bank=bank, state=State.HANDED_BACK, finished_at__gte=since)
        .values_list("hand_back_reason")
        .annotate(n=Count("pk"))
        .order_by()
    )
    return dict(rows)
