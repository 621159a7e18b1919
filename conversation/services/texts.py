"""The bank's own conversation texts (next steps after a "No", the sentence saying the chat
is automated): drafts that an admin other than their author approves before customers
read them (`portal.services.versions`)."""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import transaction

from conversation.models import ConversationText
from core.cards import holds_card_number
from portal.audit import Actor
from portal.events import EventType
from portal.models import Bank, TextVersion
from portal.rendering import CARD_NUMBER_REFUSED
from portal.rendering import template_errors as rendering_template_errors
from portal.services import VersionedSubject

TEXT_SUBJECT = "conversation_text"
AUTOMATED_TEXT_LIMIT = 300
_LOCALE = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")


def conversation_text_errors(
    body: str, kind: str = ConversationText.Kind.FRAUD_DENIED
) -> list[str]:
    """What is wrong with a text: next steps may use the fraud alert's placeholders; the
    sentence saying the chat is automated is plain text, one short Messenger message.
    Neither may hold a card number."""
    if kind == ConversationText.Kind.AUTOMATED:
        body = (body or "").strip()
        if not body:
            return ["Write the sentence."]
        if holds_card_number(body):
            return [CARD_NUMBER_REFUSED]
        if "{" in body or "}" in body:
            return ["This text takes no placeholders: write the bank's name out."]
        if len(body) > AUTOMATED_TEXT_LIMIT:
            return [f"Keep it to {AUTOMATED_TEXT_LIMIT} characters."]
        return []
    return rendering_template_errors(body or "", EventType.FRAUD_ALERT)


def conversation_text_key(kind: str, locale: str) -> str:
    """The name of one text's history (`TextVersion.key`): its kind and locale."""
    return f"{kind}:{locale}"


def conversation_text_key_split(key: str) -> tuple[str, str]:
    kind, _, locale = key.partition(":")
    return kind, locale


def conversation_text_live_body(*, bank: Bank, key: str) -> str | None:
    kind, locale = conversation_text_key_split(key)
    live = ConversationText.objects.for_bank(bank).filter(kind=kind, locale=locale)
    return live.values_list("body", flat=True).first()


def _checked(kind: str, locale: str, body: str) -> str:
    if kind not in ConversationText.Kind.values:
        raise ValidationError(f"Unknown kind of text “{kind}”.")
    if not _LOCALE.match(locale or ""):
        raise ValidationError({"locale": "Use a language code such as en, fr or de_CH."})
    errors = conversation_text_errors(body, kind)
    if errors:
        raise ValidationError({"body": errors})
    return body.strip()


@transaction.atomic
def conversation_text_draft(
    *, actor: Actor, bank: Bank, kind: str, locale: str, body: str
) -> TextVersion:
    """Write a text's next version as a draft; customers keep reading the live one (or the
    built-in text) until an admin other than the author approves it."""
    body = _checked(kind, locale, body)
    return VERSIONED_TEXTS.draft(
        actor=actor, bank=bank, key=conversation_text_key(kind, locale), body=body
    )


def conversation_text_publish(version: TextVersion) -> ConversationText:
    """Write an approved version to its live text (created for a new language)."""
    kind, locale = conversation_text_key_split(version.key)
    text, _ = ConversationText.objects.update_or_create(
        bank=version.bank, kind=kind, locale=locale, defaults={"body": version.body}
    )
    return text


def _text_check(version: TextVersion) -> None:
    kind, locale = conversation_text_key_split(version.key)
    _checked(kind, locale, version.body)


VERSIONED_TEXTS = VersionedSubject(
    subject=TEXT_SUBJECT,
    noun="a conversation text",
    live_body=conversation_text_live_body,
    publish=lambda version, actor: conversation_text_publish(version),
    # The text is checked by its rules again whatever is decided, a rejection included.
    check=_text_check,
    check_on_reject=True,
)
# A draft made live is what customers read from then on; a rollback drafts a return to an
# earlier live text, approved like any draft.
conversation_text_approve = VERSIONED_TEXTS.approve
conversation_text_reject = VERSIONED_TEXTS.reject
conversation_text_rollback = VERSIONED_TEXTS.rollback
