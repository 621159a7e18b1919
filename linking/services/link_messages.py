"""Messages bankside owes a linked customer (the link confirmation, the expiry reminder):
sent at most once, and never forgotten.

The consent event that calls for a message writes its `LinkMessage` row in its own
transaction (`link_message_schedule`); after the commit a worker is nudged
(`linking.receivers`). Whoever comes first — the nudged worker or the beat sweeper once the
row's grace period is over — locks the row (`SKIP LOCKED`: the other skips it), re-checks
that the message is still due, calls the Send API and records the outcome on the row in
that same transaction, with an audit entry when the message went out. A retryable failure
leaves the row pending with a later `next_attempt_at` (exponential backoff) until
`MAX_ATTEMPTS`.

The rules the messages always had still hold: a free-form `RESPONSE`, so a closed 24-hour
window or an unreachable person means the message is skipped, not retried with a tag or a
template; a consent that ended (or was renewed past the reminder) before the send, or a
bank whose integration is paused, skips the message.

An uncertain outcome (the connection lost after the request went out, a success that
cannot be read) means the message may have reached the person: it is recorded
`uncertain` and audited, and never sent again. Its echo (the reference `bankside:l:<id>`
it carries comes back in it) records it sent (`link_message_echoed`).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

import messenger
from core.registry import Registry
from linking import messages
from linking.models import Consent, LinkMessage
from linking.services.sweeps import durable_rows_due, durable_rows_sweep
from linking.services.unlinks import backoff, page_credentials
from portal.audit import Actor
from portal.rendering import BUTTON_LIMIT, TEXT_LIMIT
from portal.services import audit_record

log = logging.getLogger(__name__)

Kind = LinkMessage.Kind
State = LinkMessage.State
# The nudged worker's head start: the sweeper leaves a fresh row alone this long.
GRACE = timedelta(seconds=60)
MAX_ATTEMPTS = 10
# An answer to *Manage sharing* that could not go out within this long is not wanted any more.
MANAGE_LINK_STALE = timedelta(minutes=30)
SWEEP_BATCH = 100
MESSAGE_SENDER = Actor.system("link messages")
COMPOSE: dict[str, Callable[[Consent], str]] = {
    Kind.CONFIRMATION: messages.link_confirmation,
    Kind.EXPIRY_REMINDER: messages.expiry_reminder,
    Kind.MANAGE_LINK: messages.manage_link_as_text,
}


def _manage_button(consent: Consent) -> dict[str, Any]:
    from linking.services.sharing import MANAGE_SHARING_PAYLOAD

    return messenger.builders.postback_button(
        messages.manage_sharing_title(consent), MANAGE_SHARING_PAYLOAD
    )


def _confirmation(consent: Consent) -> tuple[str, list[dict[str, Any]]]:
    return messages.link_confirmation(consent), [_manage_button(consent)]


def _reminder(consent: Consent) -> tuple[str, list[dict[str, Any]]]:
    renew = messenger.builders.url_button(
        messages.renew_title(consent), messages.renew_url(consent)
    )
    return messages.expiry_reminder_with_buttons(consent), [renew, _manage_button(consent)]


def _manage_link(consent: Consent) -> tuple[str, list[dict[str, Any]]]:
    from linking.services.sharing import dashboard_pass_issue

    token = dashboard_pass_issue(consent=consent)
    button = messenger.builders.url_button(
        messages.open_dashboard_title(consent), messages.pass_url(consent, token)
    )
    return messages.manage_link(consent), [button]


# The messages sent as a button template (falling back to COMPOSE's text if too long).
BUTTONED: dict[str, Callable[[Consent], tuple[str, list[dict[str, Any]]]]] = {
    Kind.CONFIRMATION: _confirmation,
    Kind.EXPIRY_REMINDER: _reminder,
    Kind.MANAGE_LINK: _manage_link,
}
# Messages about another of the customer's links (`LinkMessage.about`), then the chat's own.
COMPOSE_ABOUT: dict[str, Callable[[Consent, Consent], str]] = {
    Kind.NEW_LINK_NOTICE: messages.new_link_notice,
    Kind.NOT_ME_ANSWER: messages.not_me_answer,
}


def link_message_schedule(
    *, consent: Consent, kind: str, now: datetime | None = None
) -> LinkMessage:
    """Record, in the caller's transaction, that the message is owed to the customer.

    A message is owed once: per consent for the confirmation, per consent and end date for
    the reminder.
    """
    message, _ = LinkMessage.objects.get_or_create(
        consent=consent,
        kind=kind,
        expires_at=consent.expires_at,
        defaults={"bank_id": consent.bank_id, "next_attempt_at": (now or timezone.now()) + GRACE},
    )
    return message


def link_message_about_schedule(
    *, consent: Consent, kind: str, about: Consent, now: datetime | None = None
) -> LinkMessage:
    """Record, in the caller's transaction, a message to `consent`'s chat about another
    link of the same customer (`about`); owed once per chat, kind and other link."""
    message, _ = LinkMessage.objects.get_or_create(
        consent=consent,
        kind=kind,
        about=about,
        defaults={
            "bank_id": consent.bank_id,
            "expires_at": None,
            "next_attempt_at": (now or timezone.now()) + GRACE,
        },
    )
    return message


@dataclass(frozen=True)
class Preface:
    """A sentence to say before a link message, and what to record once it was said."""

    text: str
    said: Callable[[], None]


# Apps above may put a sentence before a link message: the conversation says the chat is
# automated where the bank tells its customers so, when the message opens the chat or
# follows a long silence. A provider takes the consent and the moment and answers a
# `Preface`, or None.
_prefaces: Registry[Callable[[Consent, datetime], Preface | None]] = Registry(
    "link message preface"
)


def register_link_message_preface(
    key: str, provider: Callable[[Consent, datetime], Preface | None]
) -> None:
    _prefaces.register(key, provider)


def _preface(consent: Consent, now: datetime) -> list[Preface]:
    return [p for p in (provider(consent, now) for provider in _prefaces) if p is not None]


def _payload(
    message: LinkMessage, prefaces: list[Preface] | None = None
) -> tuple[dict[str, Any], list[Preface]]:
    """The Send API body of the message, and the `prefaces` put before its text (those
    that keep it within the platform's limit).

    Text, or a button template: for a new-link notice "That wasn't me", which names the
    notice (honoured only from this chat); for the confirmation *Manage sharing*; for the
    reminder *Renew* and *Manage sharing*; for the answer to *Manage sharing* a button to a
    fresh, single-use dashboard pass. A message whose buttons Messenger would refuse (a URL
    not https), or whose text is too long for a button template, goes as text."""
    consent = message.consent
    metadata = messenger.reference("l", message.pk)
    buttons: list[dict[str, Any]] = []
    if message.kind in BUTTONED:
        try:
            text, buttons = BUTTONED[message.kind](consent)
        except ValueError as exc:  # a button Messenger would refuse (a URL not https)
            log.warning("%s to consent %s sent as text: %s", message.kind, consent.pk, exc)
            text, buttons = COMPOSE[message.kind](consent), []
        if buttons and len(text) > BUTTON_LIMIT:
            text, buttons = COMPOSE[message.kind](consent), []
    elif message.about is None:
        text = COMPOSE[message.kind](consent)
    else:
        text = COMPOSE_ABOUT[message.kind](message.about, consent)
        if message.kind == Kind.NEW_LINK_NOTICE:
            buttons = [
                messenger.builders.postback_button(
                    messages.not_me_button_title(consent),
                    f"{messages.NOT_ME_PAYLOAD}{message.pk}",
                )
            ]
    limit = BUTTON_LIMIT if buttons else TEXT_LIMIT
    used: list[Preface] = []
    for preface in reversed(prefaces or []):
        joined = f"{preface.text}\n\n{text}"
        if len(joined) <= limit:
            text = joined
            used.append(preface)
    if buttons:
        body = messenger.builders.button_template(consent.psid, text, buttons, metadata=metadata)
    else:
        body = messenger.builders.text_message(consent.psid, text, metadata=metadata)
    return body, used


def link_message_attempt(
    *, actor: Actor, message_id: int, now: datetime | None = None
) -> LinkMessage | None:
    """Send the message unless it was already sent, given up on, or is being sent.

    Only a pending row is tried: its first attempt (the nudge needs no grace period), or a
    retry whose backoff is over. The row stays locked during the call, so a second runner
    skips it and finds it finished afterwards. Returns the row, or None if there is none
    or another runner holds it.
    """
    with transaction.atomic():
        message = (
            LinkMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("consent__bank", "about__bank")
            .filter(pk=message_id)
            .first()
        )
        if message is None or message.state != State.PENDING:
            return message
        now = now or timezone.now()
        if message.attempts and message.next_attempt_at > now:
            return message
        _attempt(message, actor=actor, now=now)
    return message


def _attempt(message: LinkMessage, *, actor: Actor, now: datetime) -> None:
    consent = message.consent
    not_due = _not_due(message, consent, now)
    if not_due:
        _finish(message, State.SKIPPED, now, not_due)
        return
    creds = page_credentials(consent.bank_id)
    if creds is None:
        _finish(message, State.SKIPPED, now, "no running integration")
        return
    payload, prefaced = _payload(message, _preface(consent, now))
    message.attempts += 1
    try:
        messenger.get_client().send(creds, payload)
    except (messenger.OutsideWindowError, messenger.PersonUnavailableError) as exc:
        log.info("%s to consent %s not sent: %s", message.kind, consent.pk, type(exc).__name__)
        _finish(message, State.SKIPPED, now, messenger.error_kind(exc))
    except messenger.ThrottledError as exc:
        _retry_or_give_up(message, now, exc, at_least=exc.retry_after_seconds)
    except messenger.TransientError as exc:
        if exc.maybe_processed:
            _uncertain(message, actor, now, exc)
        else:
            _retry_or_give_up(message, now, exc)
    except messenger.UnexpectedResponseError as exc:
        _uncertain(message, actor, now, exc)
    except messenger.MessengerError as exc:
        log.warning("%s to consent %s refused: %s", message.kind, consent.pk, type(exc).__name__)
        _finish(message, State.FAILED, now, messenger.error_kind(exc))
    except Exception as exc:  # an unknown failure mid-call may hide a sent message
        log.error("%s to consent %s failed", message.kind, consent.pk, exc_info=exc)
        _uncertain(message, actor, now, exc)
    else:
        message.sent_at = now
        for preface in prefaced:
            preface.said()
        _finish(message, State.SENT, now, "")
        audit_record(
            actor=actor,
            action="link.message_sent",
            bank=consent.bank,
            target=consent,
            details={"kind": message.kind, "attempts": message.attempts},
        )


def _not_due(message: LinkMessage, consent: Consent, now: datetime) -> str:
    """Why the message is no longer owed, or "" while it is."""
    if consent.status != Consent.Status.AUTHORISED:
        return f"consent {consent.status}"
    if not consent.psid:
        return "no PSID"
    if message.kind == Kind.NEW_LINK_NOTICE and (
        message.about is None or message.about.status != Consent.Status.AUTHORISED
    ):
        return "the new link already ended"
    if message.kind == Kind.MANAGE_LINK and now - message.created_at > MANAGE_LINK_STALE:
        return "asked for too long ago"
    if message.kind == Kind.EXPIRY_REMINDER:
        if consent.expires_at != message.expires_at:
            return "consent renewed"
        if consent.expires_at is not None and consent.expires_at <= now:
            return "consent ended"
    return ""


def _retry_or_give_up(
    message: LinkMessage, now: datetime, exc: Exception, *, at_least: float | None = None
) -> None:
    log.warning("%s to consent %s failed: %s", message.kind, message.consent_id, type(exc).__name__)
    if message.attempts >= MAX_ATTEMPTS:
        _finish(message, State.FAILED, now, messenger.error_kind(exc))
        return
    message.last_error = messenger.error_kind(exc)
    message.next_attempt_at = now + max(backoff(message.attempts), timedelta(seconds=at_least or 0))
    message.save()


def _uncertain(message: LinkMessage, actor: Actor, now: datetime, exc: Exception) -> None:
    """The message may have gone out: record it so, audit it, and never resend it."""
    _finish(message, State.UNCERTAIN, now, messenger.error_kind(exc))
    audit_record(
        actor=actor,
        action="link.message_uncertain",
        bank=message.consent.bank,
        target=message.consent,
        details={"kind": message.kind, "attempts": message.attempts},
    )


def _finish(message: LinkMessage, state: str, now: datetime, error: str) -> None:
    message.state, message.finished_at, message.last_error = state, now, error[:200]
    message.save()


@transaction.atomic
def link_message_echoed(
    *, actor: Actor, bank_id: int, message_id: int, psid: str, sent_at: datetime
) -> bool:
    """Messenger echoed the message (its reference `bankside:l:<id>` came back): one
    recorded `uncertain` did go out, and is recorded sent, audited once. Whether this
    bank sent such a message to this person."""
    message = (
        LinkMessage.objects.select_for_update(of=("self",))
        .select_related("consent", "consent__bank")
        .filter(pk=message_id, bank_id=bank_id, consent__psid=psid)
        .first()
    )
    if message is None:
        return False
    if message.state == State.UNCERTAIN:
        message.state, message.sent_at, message.last_error = State.SENT, sent_at, ""
        message.save(update_fields=["state", "sent_at", "last_error"])
        audit_record(
            actor=actor,
            action="link.message_sent",
            bank=message.consent.bank,
            target=message.consent,
            details={"kind": message.kind, "attempts": message.attempts, "settled_by": "echo"},
        )
    return True


def link_messages_send(
    *, actor: Actor, consent_id: int, kind: str, about: bool = False, now: datetime | None = None
) -> int:
    """The nudge: try the consent's pending messages of this kind now; how many were tried.
    With `about`, the messages about that consent (to the customer's other chats)."""
    mine = {"about_id": consent_id} if about else {"consent_id": consent_id}
    pending = list(
        LinkMessage.objects.filter(**mine, kind=kind, state=State.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    for message_id in pending:
        link_message_attempt(actor=actor, message_id=message_id, now=now)
    return len(pending)


def link_messages_due(*, now: datetime | None = None, limit: int = SWEEP_BATCH) -> list[int]:
    """The messages pending and due: past their grace period or backoff."""
    return durable_rows_due(_pending(), id_field="pk", now=now, limit=limit)


def link_messages_sweep(*, actor: Actor, now: datetime | None = None) -> int:
    """Try every due message (lost nudges, retries); how many were tried. Safe to run
    alongside another sweep or a nudge: each row is claimed under its lock."""
    return durable_rows_sweep(
        _pending(),
        id_field="pk",
        attempt=lambda message_id: link_message_attempt(
            actor=actor, message_id=message_id, now=now
        ),
        now=now,
        limit=SWEEP_BATCH,
    )


def _pending() -> QuerySet[LinkMessage]:
    return LinkMessage.objects.filter(state=State.PENDING)
