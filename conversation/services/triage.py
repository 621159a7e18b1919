"""Triage in the agent inbox: internal notes, canned replies and the bank's reply target."""

from __future__ import annotations

import re

from django.db import IntegrityError, transaction

from conversation.models import CannedReply, Conversation, ConversationNote, InboxSettings
from core.cards import holds_card_number
from portal.audit import Actor
from portal.models import Bank
from portal.rendering import CARD_NUMBER_REFUSED, TEXT_LIMIT, clean_text
from portal.services import audit_record

NOTE_LIMIT = 2000
TITLE_LIMIT = 80
# A reply target within reason: a minute to a day.
REPLY_TARGET_MINUTES = range(1, 24 * 60 + 1)
_LOCALE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")


class TriageRefusedError(ValueError):
    """A note, a canned reply or a setting that cannot be saved; the message says why."""


def _checked_text(text: str, *, limit: int, empty: str) -> str:
    text = clean_text(text or "").strip()
    if not text:
        raise TriageRefusedError(empty)
    if len(text) > limit:
        raise TriageRefusedError(f"Keep it to {limit} characters; this is {len(text)}.")
    if holds_card_number(text):
        raise TriageRefusedError(CARD_NUMBER_REFUSED)
    return text


@transaction.atomic
def conversation_note_add(
    *, actor: Actor, conversation: Conversation, text: str
) -> ConversationNote:
    """An agent's internal note: kept for the bank's staff, never sent to the customer.

    The audit entry says a note was written, not what it says.
    """
    if actor.type != "staff":
        raise ValueError("A note is written by a staff member.")
    text = _checked_text(text, limit=NOTE_LIMIT, empty="Write the note first.")
    note = ConversationNote.objects.create(
        bank_id=conversation.bank_id,
        conversation=conversation,
        written_by_id=int(actor.id),
        text=text,
    )
    audit_record(
        actor=actor,
        action="conversation.note_added",
        bank=conversation.bank,
        target=conversation,
        details={"note": note.pk, "length": len(text)},
    )
    return note


@transaction.atomic
def canned_reply_save(
    *,
    actor: Actor,
    bank: Bank,
    locale: str,
    title: str,
    body: str,
    canned: CannedReply | None = None,
) -> CannedReply:
    """Write a canned reply (a new one, or `canned` changed): one title per language."""
    if canned is not None and canned.bank_id != bank.pk:
        raise ValueError("That canned reply belongs to another bank.")
    if not _LOCALE.match(locale or ""):
        raise TriageRefusedError("Use a language code such as en, fr or de_CH.")
    title = _checked_text(title, limit=TITLE_LIMIT, empty="Give the reply a title.")
    body = _checked_text(body, limit=TEXT_LIMIT, empty="Write the reply.")
    created = canned is None
    reply = canned if canned is not None else CannedReply(bank=bank)
    reply.locale, reply.title, reply.body = locale, title, body
    try:
        with transaction.atomic():
            reply.save()
    except IntegrityError:
        raise TriageRefusedError(
            f"There is already a reply titled “{title}” in {locale}."
        ) from None
    audit_record(
        actor=actor,
        action="canned_reply.saved",
        bank=bank,
        target=reply,
        details={"locale": locale, "title": title, "created": created},
    )
    return reply


@transaction.atomic
def canned_reply_delete(*, actor: Actor, canned: CannedReply) -> None:
    audit_record(
        actor=actor,
        action="canned_reply.deleted",
        bank=canned.bank,
        target=canned,
        details={"locale": canned.locale, "title": canned.title},
    )
    canned.delete()


@transaction.atomic
def inbox_settings_save(*, actor: Actor, bank: Bank, reply_target_minutes: int) -> InboxSettings:
    """The bank's reply target: how long a customer may wait for a person before the inbox
    flags it."""
    if reply_target_minutes not in REPLY_TARGET_MINUTES:
        raise TriageRefusedError("A reply target is between 1 minute and 24 hours (1440).")
    settings, _ = InboxSettings.objects.select_for_update().get_or_create(bank=bank)
    before = settings.reply_target_minutes
    settings.reply_target_minutes = reply_target_minutes
    settings.save()
    audit_record(
        actor=actor,
        action="inbox_settings.saved",
        bank=bank,
        target=settings,
        details={"reply_target_minutes": [before, reply_target_minutes]},
    )
    return settings
