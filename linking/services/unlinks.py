"""Telling Messenger that a link ended on the bank's side, once, and never forgetting to.

A revocation or an expiry writes a `PlatformUnlink` row in its own transaction
(`platform_unlink_schedule`); after the commit a worker is nudged (`linking.receivers`).
Whoever comes first — the nudged worker, the beat sweeper once the row's grace period is
over, or an erasure that must tell Messenger while the PSID is still known — locks the row,
says goodbye, calls `unlink_accounts` and marks the row done in that same transaction; the
others find it done, or locked and skip it. A failed call leaves the row pending with a
later `next_attempt_at` (exponential backoff) until `MAX_ATTEMPTS`.
"""

import contextlib
import logging
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

import messenger
from linking import messages
from linking.models import Consent, PlatformUnlink
from linking.services.sweeps import durable_rows_due, durable_rows_sweep
from portal.audit import Actor
from portal.models import MessengerIntegration
from portal.services import audit_record

log = logging.getLogger(__name__)

State = PlatformUnlink.State
# The nudged worker's head start: the sweeper leaves a fresh row alone this long.
GRACE = timedelta(seconds=60)
FIRST_RETRY = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 20
SWEEP_BATCH = 100
ENDED = (Consent.Status.REVOKED, Consent.Status.EXPIRED)
UNLINKER = Actor.system("messenger unlink")


def page_credentials(bank_id: int) -> messenger.PageCredentials | None:
    """The bank's Page credentials, or None while it has no running integration."""
    integration = MessengerIntegration.objects.filter(bank_id=bank_id).first()
    if integration is None or integration.status == MessengerIntegration.Status.PAUSED:
        return None
    return messenger.PageCredentials(
        page_id=integration.page_id,
        access_token=integration.page_access_token,
        app_secret=integration.app_secret,
    )


def platform_unlink_schedule(*, consent: Consent, now: datetime | None = None) -> None:
    """Record, in the caller's transaction, that Messenger must be told the link ended.

    Nothing to tell for a consent never bound to a PSID, or one Messenger already knows
    ended (the person unlinked there); a consent has one row at most.
    """
    if not consent.psid or consent.platform_unlinked_at is not None:
        return
    PlatformUnlink.objects.get_or_create(
        consent=consent,
        defaults={"bank_id": consent.bank_id, "next_attempt_at": (now or timezone.now()) + GRACE},
    )


def platform_unlink_attempt(
    *, actor: Actor, consent_id: int, force: bool = False, now: datetime | None = None
) -> PlatformUnlink | None:
    """Tell Messenger that the consent's link ended, unless it was already told.

    The row is locked for the call: a second runner skips a row being worked on
    (SKIP LOCKED) and finds it done afterwards, so the call is made once. Without `force`
    (the nudge, the sweeper) only a pending row is tried: its first attempt, or a retry
    whose backoff is over. With `force` (an erasure) the lock is waited for, a row that was
    skipped or given up on is tried again, and a failed call raises its MessengerError once
    the failure is recorded. Returns the row, or None if there is none to try.
    """
    error = None
    with transaction.atomic():
        unlink = (
            PlatformUnlink.objects.select_for_update(skip_locked=not force, of=("self",))
            .select_related("consent__bank")
            .filter(consent_id=consent_id)
            .first()
        )
        if unlink is None or unlink.state == State.DONE:
            return unlink
        now = now or timezone.now()
        due = unlink.attempts == 0 or unlink.next_attempt_at <= now
        if not force and (unlink.state != State.PENDING or not due):
            return unlink
        error = _attempt(unlink, actor=actor, now=now)
    if error is not None and force:
        raise error
    return unlink


def _attempt(unlink: PlatformUnlink, *, actor: Actor, now: datetime) -> Exception | None:
    """Say goodbye (once) and unlink; record the outcome on the locked row."""
    consent = unlink.consent
    if consent.platform_unlinked_at is not None or consent.status not in ENDED:
        _finish(unlink, State.DONE if consent.platform_unlinked_at else State.SKIPPED, now)
        return None
    creds = page_credentials(consent.bank_id)
    if creds is None or not consent.psid:
        # Nothing more is sent to this person anyway; kept for the record.
        unlink.last_error = "no running integration" if creds is None else "no PSID"
        _finish(unlink, State.SKIPPED, now)
        return None
    unlink.attempts += 1
    try:
        if unlink.farewell_sent_at is None:
            _say_goodbye(creds, consent)
            unlink.farewell_sent_at = now
        with contextlib.suppress(messenger.PersonUnavailableError):  # nothing left to unlink
            messenger.get_client().unlink_account(creds, consent.psid)
    except messenger.MessengerError as exc:
        log.warning("unlink of consent %s failed: %s", consent.pk, type(exc).__name__)
        unlink.last_error = messenger.error_kind(exc)
        if unlink.attempts >= MAX_ATTEMPTS:
            _finish(unlink, State.FAILED, now)
        else:
            unlink.next_attempt_at = now + backoff(unlink.attempts)
            unlink.save()
        return exc
    unlink.last_error = ""
    _finish(unlink, State.DONE, now)
    Consent.objects.filter(pk=consent.pk).update(platform_unlinked_at=now)
    consent.platform_unlinked_at = now
    audit_record(
        actor=actor,
        action="link.platform_unlinked",
        bank=consent.bank,
        target=consent,
        details={"attempts": unlink.attempts},
    )
    return None


def _say_goodbye(creds: messenger.PageCredentials, consent: Consent) -> None:
    text = messages.link_ended(consent)
    try:
        messenger.get_client().send(
            creds,
            messenger.builders.text_message(
                consent.psid, text, metadata=messenger.reference("u", consent.pk)
            ),
        )
    except (messenger.OutsideWindowError, messenger.PersonUnavailableError) as exc:
        log.info("link message to consent %s not sent: %s", consent.pk, type(exc).__name__)


def _finish(unlink: PlatformUnlink, state: str, now: datetime) -> None:
    unlink.state, unlink.finished_at = state, now
    unlink.save()


def backoff(attempts: int) -> timedelta:
    """How long to wait after the `attempts`-th failure: doubling, at most an hour."""
    # A power of ints is Any to the stubs (a negative exponent makes a float).
    return min(FIRST_RETRY * 2 ** (attempts - 1), MAX_BACKOFF)  # type: ignore[no-any-return]


def platform_unlinks_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    """The consents whose unlink is pending and due: past its grace period or backoff."""
    return durable_rows_due(_pending(), id_field="consent_id", now=now, limit=limit)


def platform_unlinks_sweep(*, actor: Actor, now: datetime | None = None) -> int:
    """Try every due unlink (lost nudges, retries); how many were tried. Safe to run
    alongside another sweep or a nudge: each row is claimed under its lock."""
    return durable_rows_sweep(
        _pending(),
        id_field="consent_id",
        attempt=lambda consent_id: platform_unlink_attempt(
            actor=actor, consent_id=consent_id, now=now
        ),
        now=now,
        limit=SWEEP_BATCH,
    )


def _pending() -> QuerySet[PlatformUnlink]:
    return PlatformUnlink.objects.filter(state=State.PENDING)
