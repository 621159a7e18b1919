"""What happens to notifications after they are written, besides sending them.

Delivery and read receipts from Messenger, a link that ends, a person who writes to the
Page again, and staff replaying dead-lettered notifications. The webhook-driven ones
run inside Messenger's webhook request, so each is a few statements.
"""

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.utils import timezone

from linking.models import Consent
from notifications.models import DeliveryReceipt, Notification, Outcome, Recipient
from notifications.services.events import outcomes_record
from notifications.services.nudge import deliveries_nudge
from notifications.services.outbox import sequences_assign
from notifications.services.queue import people_wake
from portal.audit import Actor
from portal.events import EVENT_SCOPES
from portal.models import Bank, MessengerIntegration
from portal.services import audit_record

State, Reason = Notification.State, Notification.Reason
ENGINE = Actor.system("delivery engine")
REPLAYABLE = (State.DEAD, State.HELD)


def _moment(watermark_ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(watermark_ms / 1000, tz=dt.UTC)


@transaction.atomic
def notifications_mark_delivered(
    *, bank_id: int, page_id: str, psid: str, mids: list[str], watermark_ms: int
) -> int:
    """A delivery receipt: these message ids, and everything sent before the watermark.

    Each notification that becomes delivered gets one `notification.delivered` outcome; a
    repeated receipt changes nothing and writes none. Message ids we do not hold yet (the
    sending worker has not committed them) are kept as receipts for the worker to apply
    when it does.
    """
    now = timezone.now()
    sent = Notification.objects.filter(
        bank_id=bank_id, page_id=page_id, psid=psid, state=State.SENT
    )
    changing = _lock_for_status(
        sent.filter(Q(message_id__in=mids) | Q(sent_at__lte=_moment(watermark_ms)))
    )
    updated = Notification.objects.filter(pk__in=[row[0] for row in changing]).update(
        state=State.DELIVERED, delivered_at=now
    )
    if mids and updated < len(mids):
        DeliveryReceipt.objects.bulk_create(
            [DeliveryReceipt(bank_id=bank_id, message_id=mid, delivered_at=now) for mid in mids],
            ignore_conflicts=True,
        )
    _status_outcomes_record(bank_id, changing, Outcome.Type.NOTIFICATION_DELIVERED, now)
    return updated


@transaction.atomic
def notifications_mark_read(*, bank_id: int, page_id: str, psid: str, watermark_ms: int) -> int:
    """A read receipt: everything sent to the person before the watermark was read.

    Each notification that becomes read gets one `notification.read` outcome (one that
    skipped `delivered` gets only this one); a repeated receipt writes none.
    """
    now = timezone.now()
    changing = _lock_for_status(
        Notification.objects.filter(
            bank_id=bank_id,
            page_id=page_id,
            psid=psid,
            state__in=(State.SENT, State.DELIVERED),
            sent_at__lte=_moment(watermark_ms),
        )
    )
    updated = Notification.objects.filter(pk__in=[row[0] for row in changing]).update(
        state=State.READ, read_at=now, delivered_at=Coalesce("delivered_at", now)
    )
    _status_outcomes_record(bank_id, changing, Outcome.Type.NOTIFICATION_READ, now)
    return updated


_StatusRow = tuple[int, int, str, str]  # id, event id, the bank's event id, event type


def _lock_for_status(notifications: QuerySet[Notification]) -> list[_StatusRow]:
    """Lock the notifications a receipt changes, in id order, before changing them.

    A concurrent receipt for the same messages waits here, then finds them changed and
    leaves them out: each change of state is reported once.
    """
    return list(
        notifications.select_for_update(of=("self",))
        .order_by("pk")
        .values_list("pk", "event_id", "event__event_id", "event_type")
    )


def _status_outcomes_record(
    bank_id: int, rows: list[_StatusRow], kind: str, at: dt.datetime, bank: Bank | None = None
) -> None:
    """The outcome feed's entries for notifications whose status changed: written last,
    holding the bank's feed lock after the notification rows (see `Outcome`)."""
    if not rows:
        return
    outcomes_record(
        bank=bank or Bank.objects.get(pk=bank_id),
        outcomes=[
            Outcome(
                bank_id=bank_id,
                type=kind,
                event_id=event_id,
                notification_id=pk,
                event_ref=event_ref,
                event_type=event_type,
                occurred_at=at,
            )
            for pk, event_id, event_ref, event_type in rows
        ],
    )


def delivered_early_outcomes_record(
    *, results: list[Any], applied: set[int], banks: dict[int, Bank]
) -> None:
    """`notification.delivered` outcomes for messages whose delivery receipt came before
    their worker recorded them (`services.delivery.record.results_record` applies those).

    Runs in that transaction after the `notification.sent` outcomes, so each bank's feed
    lock is already held and the feed shows sent before delivered.
    """
    jobs = {r.job.id: r.job for r in results if r.message_id and r.job.id in applied}
    if not jobs:
        return
    delivered = Notification.objects.filter(pk__in=list(jobs), state=State.DELIVERED)
    by_bank: dict[int, list[_StatusRow]] = defaultdict(list)
    for pk in delivered.values_list("pk", flat=True):
        job = jobs[pk]
        by_bank[job.bank_id].append((pk, job.event_id, job.event_ref, job.event_type))
    now = timezone.now()
    for bank_id in sorted(by_bank):
        _status_outcomes_record(
            bank_id, by_bank[bank_id], Outcome.Type.NOTIFICATION_DELIVERED, now, banks.get(bank_id)
        )


def recipient_acted(*, bank_id: int, page_id: str, psid: str) -> int:
    """The person acted (wrote, tapped, followed a link, reacted, opted in): they are
    reachable, and the 24-hour window is open.

    Notifications held for want of an allowed form go back in the queue (as long as the
    retry budget's hours allow), and ones that had switched to the utility template try
    free-form again. Returns how many were released.
    """
    now = timezone.now()
    Recipient.objects.filter(page_id=page_id, psid=psid, unreachable_at__isnull=False).update(
        unreachable_at=None, unreachable_reason=""
    )
    mine = Notification.objects.filter(bank_id=bank_id, page_id=page_id, psid=psid)
    mine.filter(state=State.PENDING, window_closed=True).update(window_closed=False)
    released = mine.filter(
        state=State.HELD,
        reason=Reason.NO_ALLOWED_FORM,
        queued_at__gte=now - dt.timedelta(hours=settings.NOTIFICATIONS_MAX_AGE_HOURS),
    ).update(
        state=State.PENDING,
        reason=Reason.QUEUED,
        detail="",
        next_attempt_at=now,
        window_closed=False,
        waiting=False,
    )
    if released:
        deliveries_nudge()
    return released


@transaction.atomic
def notifications_cancel_for_link(*, consent_id: int) -> int:
    """A link ended: nothing more is sent under it. One statement, one audit entry."""
    consent = Consent.objects.select_related("bank").filter(pk=consent_id).first()
    if consent is None:
        return 0
    cancelled = Notification.objects.filter(
        consent_id=consent_id, state__in=Notification.OPEN
    ).update(
        state=State.CANCELLED,
        reason=Reason.LINK_ENDED,
        detail=f"The consent was {consent.get_status_display().lower()}.",
        finished_at=timezone.now(),
    )
    if cancelled:
        people_wake([(consent.page_id, consent.psid)])
        audit_record(
            actor=ENGINE,
            action="notifications.cancelled",
            bank=consent.bank,
            target=consent,
            details={"cancelled": cancelled, "consent_status": consent.status},
        )
    return cancelled


def notifications_cancel_out_of_scope(
    *, consent_id: int, scopes: list[str], account_ids: list[int]
) -> int:
    """A customer changed what a live link shares: what was queued for an account or a
    kind of update no longer shared is cancelled, in the caller's transaction (the
    change's), with one audit entry. What stays shared stays queued."""
    consent = Consent.objects.select_related("bank").filter(pk=consent_id).first()
    if consent is None:
        return 0
    shared_types = [t for t, scope in EVENT_SCOPES.items() if scope in set(scopes)]
    out_of_scope = (
        Notification.objects.filter(consent_id=consent_id, state__in=Notification.OPEN)
        .exclude(event_type__in=shared_types, account_id__in=account_ids)
        .select_for_update()
    )
    ids = list(out_of_scope.values_list("pk", flat=True))
    if not ids:
        return 0
    cancelled = Notification.objects.filter(pk__in=ids, state__in=Notification.OPEN).update(
        state=State.CANCELLED,
        reason=Reason.NO_LONGER_SHARED,
        detail="The customer no longer shares this account or kind of update.",
        finished_at=timezone.now(),
    )
    people_wake([(consent.page_id, consent.psid)])
    audit_record(
        actor=ENGINE,
        action="notifications.cancelled",
        bank=consent.bank,
        target=consent,
        details={"cancelled": cancelled, "reason": "no_longer_shared", "scopes": scopes},
    )
    return cancelled


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did: the notifications queued again, and those refused with why."""

    replayed: list[int] = field(default_factory=list)
    refused: dict[int, str] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.replayed)


@transaction.atomic
def notifications_replay(
    *,
    actor: Actor,
    bank: Bank,
    notification_ids: list[int] | None = None,
    every_dead: bool = False,
) -> int:
    """Queue dead-lettered (or held) notifications of `bank` again; returns how many.

    See `dead_letters_replay`, which also says which were refused and why.
    """
    return dead_letters_replay(
        actor=actor, bank=bank, notification_ids=notification_ids, every_dead=every_dead
    ).count


@transaction.atomic
def dead_letters_replay(
    *,
    actor: Actor,
    bank: Bank,
    notification_ids: list[int] | None = None,
    every_dead: bool = False,
    filters: dict[str, Any] | None = None,
) -> ReplayReport:
    """Queue dead-lettered (or held) notifications of `bank` again, singly or in bulk.

    Each goes to the end of its person's queue, with a fresh retry budget. One whose
    consent ended, whose Messenger link is gone, or whose account or update type the
    consent no longer covers is refused with the reason, and so is one no longer dead or
    held: nothing is sent that the customer did not agree to. One audit entry records
    the replay (`filters`, the staff page's filter, goes into it). Ids of another bank
    are not found, and left out of the report.
    """
    if notification_ids is None and not every_dead:
        raise ValueError("Name the notifications to replay, or replay every dead one.")
    found = Notification.objects.for_bank(bank).select_for_update()
    if notification_ids is not None:
        found = found.filter(pk__in=notification_ids)
    else:
        found = found.filter(state=State.DEAD)
    candidates = list(found.order_by("page_id", "psid", "sequence"))
    refused = {n.pk: REPLAY_NOT_REPLAYABLE for n in candidates if n.state not in REPLAYABLE}
    refused.update(_replay_refusals(bank, [n for n in candidates if n.pk not in refused]))
    replayed = [n for n in candidates if n.pk not in refused]
    if not replayed:
        return ReplayReport(refused=refused)
    now = timezone.now()
    sequences_assign(bank, replayed)
    for notification in replayed:
        notification.state, notification.reason = State.PENDING, Reason.REPLAYED
        notification.detail = f"Replayed by {actor.label or actor.type}."
        notification.attempts, notification.window_closed = 0, False
        notification.waiting = False
        notification.next_attempt_at = notification.queued_at = now
        notification.finished_at = None
        notification.form = ""
    Notification.objects.bulk_update(
        replayed,
        [
            "state",
            "reason",
            "detail",
            "attempts",
            "window_closed",
            "waiting",
            "next_attempt_at",
            "queued_at",
            "finished_at",
            "form",
            "sequence",
        ],
        batch_size=500,
    )
    ids = [n.pk for n in replayed]
    by_type: dict[str, int] = defaultdict(int)
    for notification in replayed:
        by_type[notification.event_type] += 1
    extra: dict[str, Any] = {"refused": len(refused)} if refused else {}
    if filters:
        extra["filters"] = filters
    if len(replayed) == 1:
        audit_record(
            actor=actor,
            action="notification.replayed",
            bank=bank,
            target=replayed[0],
            details={"event_type": replayed[0].event_type, **extra},
        )
    else:
        audit_record(
            actor=actor,
            action="notifications.replayed",
            bank=bank,
            target_type="notifications.notification",
            details={
                "count": len(ids),
                "ids": ids[:500],
                "event_types": dict(by_type),
                **extra,
            },
        )
    deliveries_nudge()
    return ReplayReport(replayed=ids, refused=refused)


REPLAY_NOT_REPLAYABLE = "It is no longer dead-lettered or held."


def _replay_refusals(bank: Bank, notifications: list[Notification]) -> dict[int, str]:
    """Why each of these notifications may not be sent again, if it may not (a few reads).

    The same checks the delivery engine makes before a send, so that a replay that would
    only be cancelled again is refused with a reason staff can act on.
    """
    if not notifications:
        return {}
    now = timezone.now()
    consents = Consent.objects.in_bulk({n.consent_id for n in notifications})
    covered = set(
        Consent.accounts.through.objects.filter(
            consent_id__in=list(consents), account__active=True
        ).values_list("consent_id", "account_id")
    )
    integration = MessengerIntegration.objects.filter(bank=bank).first()
    refused = {}
    for notification in notifications:
        consent = consents.get(notification.consent_id)
        scope = EVENT_SCOPES.get(notification.event_type)
        if consent is None:
            reason = "The customer's consent no longer exists."
        elif consent.status != Consent.Status.AUTHORISED:
            reason = f"The customer's consent was {consent.get_status_display().lower()}."
        elif consent.expires_at is not None and consent.expires_at <= now:
            reason = "The customer's consent expired."
        elif not consent.psid or (consent.page_id, consent.psid) != (
            notification.page_id,
            notification.psid,
        ):
            reason = "The Messenger link is gone: the customer unlinked, or linked again."
        elif scope not in consent.scopes:
            reason = "The consent no longer covers this kind of update."
        elif (consent.pk, notification.account_id) not in covered:
            reason = "The account is no longer shared under this consent."
        elif integration is None or integration.page_id != notification.page_id:
            reason = "The bank's Facebook Page changed since: this message was for the old Page."
        else:
            continue
        refused[notification.pk] = reason
    return refused
