"""Maker-checker for what customers read: drafts, approval by a second person, rollback.

A text's live row (a `MessageTemplate`, a `ConversationText`, a `NotificationPolicy`
whose rules a version holds as JSON) is changed by `text_version_approve` only: the caller
passes `publish`, which writes the approved body to its live row, and it runs inside the
transaction that marks the version approved and the one before it superseded, with its
audit entry. Drafting is for a bank's admins and
operators; approving and rejecting for its admins (and platform admins), and never for
the person who wrote the draft: four eyes see every text before customers do.

Each app declares each kind of text it owns once, as a `VersionedSubject`: its drafts,
approvals, rejections and rollbacks go through that description.
"""

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.cards import holds_card_number
from portal.audit import Actor
from portal.models import Bank, StaffMembership, TextVersion
from portal.rendering import CARD_NUMBER_REFUSED
from portal.services.audit import audit_record
from portal.tenancy import BankScopedQuerySet

Role = StaffMembership.Role
PLATFORM_ADMIN = "platform_admin"
DRAFTERS = frozenset({Role.ADMIN, Role.OPERATOR, PLATFORM_ADMIN})
APPROVERS = frozenset({Role.ADMIN, PLATFORM_ADMIN})
SYSTEM_LABEL = "system"

NOTHING_CHANGED = "Nothing changed: this is what customers get now."
OWN_DRAFT = "You wrote this draft: another admin must approve it (four eyes)."
NOT_A_DRAFT = "This version is no longer waiting for approval."


def staff_role(actor: Actor, bank: Bank) -> str:
    """The role the acting staff member holds at `bank` ("" for none or a non-staff actor)."""
    if actor.type != "staff" or not actor.id.isdigit():
        return ""
    user = get_user_model().objects.filter(pk=int(actor.id), is_active=True).first()
    if user is None:
        return ""
    if user.is_superuser:
        return PLATFORM_ADMIN
    role = (
        StaffMembership.objects.filter(user=user, bank=bank).values_list("role", flat=True).first()
    )
    return role or ""


def text_version_may_approve(
    *, actor: Actor, version: TextVersion, role: str | None = None
) -> bool:
    """Whether `actor` (whose `role` at the bank may be given) may approve or reject the
    draft `version` right now."""
    if version.state != TextVersion.State.DRAFT or _is_author(actor, version):
        return False
    return (staff_role(actor, version.bank) if role is None else role) in APPROVERS


def _is_author(actor: Actor, version: TextVersion) -> bool:
    return actor.type == "staff" and str(version.author_id) == actor.id


def _staff_pk(actor: Actor) -> int | None:
    return int(actor.id) if actor.type == "staff" and actor.id.isdigit() else None


def _history(bank: Bank, subject: str, key: str) -> "BankScopedQuerySet[TextVersion]":
    return TextVersion.objects.for_bank(bank).filter(subject=subject, key=key)


def _lock(bank: Bank, subject: str, key: str) -> None:
    """Serialise writers of one text: the bank's row is locked, then the text's versions."""
    # FOR NO KEY UPDATE: rows that merely refer to the bank can still be written meanwhile.
    list(Bank.objects.select_for_update(no_key=True).filter(pk=bank.pk).values_list("pk"))
    list(_history(bank, subject, key).select_for_update().values_list("pk", flat=True))


def _next_number(bank: Bank, subject: str, key: str) -> int:
    return (_history(bank, subject, key).aggregate(n=Max("number"))["n"] or 0) + 1


def _audit(actor: Actor, action: str, version: TextVersion, **details: object) -> None:
    audit_record(
        actor=actor,
        action=action,
        bank=version.bank,
        target=version,
        details={
            "subject": version.subject,
            "key": version.key,
            "version": version.number,
            **details,
        },
    )


def _baseline(bank: Bank, subject: str, key: str, live_body: str | None) -> TextVersion | None:
    """The live version, recording the live text as one (approved by the system) when it was
    made before its history was kept, so the history always ends at what customers read."""
    live: TextVersion | None = (
        _history(bank, subject, key).filter(state=TextVersion.State.APPROVED).first()
    )
    if live is not None or live_body is None:
        return live
    return _system_version(bank, subject, key, live_body, timezone.now())


def _system_version(bank: Bank, subject: str, key: str, body: str, now: dt.datetime) -> TextVersion:
    """`body` as the text's next version, live from `now`, written and approved by the system."""
    return TextVersion.objects.create(
        bank=bank,
        subject=subject,
        key=key,
        number=_next_number(bank, subject, key),
        body=body,
        state=TextVersion.State.APPROVED,
        author_label=SYSTEM_LABEL,
        reviewer_label=SYSTEM_LABEL,
        reviewed_at=now,
        live_from=now,
    )


@transaction.atomic
def text_version_record_live(
    *, bank: Bank, subject: str, key: str, body: str
) -> TextVersion | None:
    """Record a live text the system wrote itself (a new bank's defaults) as its version,
    approved by the system. Nothing is recorded where the text is already live as it is."""
    _lock(bank, subject, key)
    live = _history(bank, subject, key).filter(state=TextVersion.State.APPROVED).first()
    if live is not None and live.body == body:
        return None
    now = timezone.now()
    if live is not None:
        live.state = TextVersion.State.SUPERSEDED
        live.live_until = now
        live.save(update_fields=["state", "live_until"])
    return _system_version(bank, subject, key, body, now)


@transaction.atomic
def text_version_retire(*, bank: Bank, subject: str, key: str) -> None:
    """A text's live row is gone (a template's language deleted): its live version ends."""
    _lock(bank, subject, key)
    _history(bank, subject, key).filter(state=TextVersion.State.APPROVED).update(
        state=TextVersion.State.SUPERSEDED, live_until=timezone.now()
    )


@transaction.atomic
def text_version_draft(
    *,
    actor: Actor,
    bank: Bank,
    subject: str,
    key: str,
    body: str,
    live_body: str | None,
    rollback_of: TextVersion | None = None,
) -> TextVersion:
    """Save `body` as the text's draft, for an admin other than its author to approve.

    The caller has checked the text by its own rules; every text is refused here when it
    holds a card number. A draft already waiting is superseded by the new one: there is
    one draft per text. `live_body` is what customers read now (None: nothing yet).
    """
    if staff_role(actor, bank) not in DRAFTERS:
        raise PermissionDenied("Only the bank's admins and operators write drafts.")
    if holds_card_number(body):
        raise ValidationError({"body": CARD_NUMBER_REFUSED})
    _lock(bank, subject, key)
    live = _baseline(bank, subject, key, live_body)
    if live is not None and live.body == body:
        raise ValidationError({"body": NOTHING_CHANGED})
    now = timezone.now()
    for waiting in _history(bank, subject, key).filter(state=TextVersion.State.DRAFT):
        waiting.state = TextVersion.State.SUPERSEDED
        waiting.reviewed_at = now
        waiting.save(update_fields=["state", "reviewed_at"])
        _audit(actor, "text_version.superseded", waiting, author=waiting.author_label)
    version = TextVersion.objects.create(
        bank=bank,
        subject=subject,
        key=key,
        number=_next_number(bank, subject, key),
        body=body,
        author_id=_staff_pk(actor),
        author_label=actor.label or actor.type,
        rollback_of=rollback_of,
    )
    _audit(
        actor,
        "text_version.drafted",
        version,
        body=body,
        body_live=live.body if live else None,
        rollback_of=rollback_of.number if rollback_of else None,
    )
    return version


def _draft_to_decide(actor: Actor, version: TextVersion, verb: str) -> TextVersion:
    """The draft `version` read again under its text's lock, once `actor` is found to be one
    of the bank's admins (who alone `verb` drafts) and it is found to be still waiting."""
    _lock(version.bank, version.subject, version.key)
    version = TextVersion.objects.select_related("bank").get(pk=version.pk)
    if version.state != TextVersion.State.DRAFT:
        raise ValidationError(NOT_A_DRAFT)
    if staff_role(actor, version.bank) not in APPROVERS:
        raise PermissionDenied(f"Only the bank's admins {verb} texts.")
    return version


@transaction.atomic
def text_version_approve(
    *, actor: Actor, version: TextVersion, publish: Callable[[TextVersion], object]
) -> TextVersion:
    """Make the draft `version` live: `publish(version)` writes it to the live row.

    Only an admin who did not write the draft may approve it. The version customers read
    until now is superseded in the same transaction, so exactly one version is live.
    """
    version = _draft_to_decide(actor, version, "approve")
    if _is_author(actor, version):
        raise ValidationError(OWN_DRAFT)
    now = timezone.now()
    before = _history(version.bank, version.subject, version.key).filter(
        state=TextVersion.State.APPROVED
    )
    previous = before.first()
    if previous is not None:
        previous.state = TextVersion.State.SUPERSEDED
        previous.live_until = now
        previous.save(update_fields=["state", "live_until"])
    version.state = TextVersion.State.APPROVED
    version.reviewer_id = _staff_pk(actor)
    version.reviewer_label = actor.label or actor.type
    version.reviewed_at = now
    version.live_from = now
    version.save(update_fields=["state", "reviewer", "reviewer_label", "reviewed_at", "live_from"])
    publish(version)
    _audit(
        actor,
        "text_version.approved",
        version,
        author=version.author_label,
        body=version.body,
        body_before=previous.body if previous else None,
        replaces_version=previous.number if previous else None,
        rollback_of=version.rollback_of.number if version.rollback_of else None,
    )
    return version


@transaction.atomic
def text_version_reject(*, actor: Actor, version: TextVersion) -> TextVersion:
    """Turn a draft down: what customers read stays as it is."""
    version = _draft_to_decide(actor, version, "reject")
    version.state = TextVersion.State.REJECTED
    version.reviewer_id = _staff_pk(actor)
    version.reviewer_label = actor.label or actor.type
    version.reviewed_at = timezone.now()
    version.save(update_fields=["state", "reviewer", "reviewer_label", "reviewed_at"])
    _audit(actor, "text_version.rejected", version, author=version.author_label)
    return version


def text_version_rollback(
    *, actor: Actor, version: TextVersion, live_body: str | None
) -> TextVersion:
    """Draft a return to `version`, a version that was live before: a new draft with its
    text, approved like any other."""
    version = TextVersion.objects.select_related("bank").get(pk=version.pk)
    if not version.was_live:
        raise ValidationError("Only a version that was live can be rolled back to.")
    if version.state == TextVersion.State.APPROVED:
        raise ValidationError(NOTHING_CHANGED)
    return text_version_draft(
        actor=actor,
        bank=version.bank,
        subject=version.subject,
        key=version.key,
        body=version.body,
        live_body=live_body,
        rollback_of=version,
    )


class LiveBody(Protocol):
    """What customers read now of the text `key` at `bank` (None: nothing yet)."""

    def __call__(self, *, bank: Bank, key: str) -> str | None: ...


@dataclass(frozen=True)
class VersionedSubject:
    """One kind of text with a maker-checker history, declared once by the app that owns it.

    `subject` names its history (`TextVersion.subject`) and `noun` says what it is ("a
    message template"), for the error a version of another kind gets. `live_body` reads
    what customers read now; `publish(version, actor)` writes an approved version to its
    live row, inside the approval's transaction. `check`, where given, refuses a version
    the text's rules do not allow (by raising ValidationError) before it is approved or
    rolled back to, and before it is rejected too where `check_on_reject`.
    """

    subject: str
    noun: str
    live_body: LiveBody
    publish: Callable[[TextVersion, Actor], object]
    check: Callable[[TextVersion], object] | None = None
    check_on_reject: bool = False

    def _own(self, version: TextVersion, *, check: bool = True) -> TextVersion:
        if version.subject != self.subject:
            raise ValidationError(f"This is not a version of {self.noun}.")
        if check and self.check is not None:
            self.check(version)
        return version

    def draft(self, *, actor: Actor, bank: Bank, key: str, body: str) -> TextVersion:
        """Save `body` as the draft of the text `key` (`text_version_draft`): the caller has
        checked it by the text's own rules."""
        return text_version_draft(
            actor=actor,
            bank=bank,
            subject=self.subject,
            key=key,
            body=body,
            live_body=self.live_body(bank=bank, key=key),
        )

    @transaction.atomic
    def approve(self, *, actor: Actor, version: TextVersion) -> TextVersion:
        """Make a draft live: from now on customers read it (`text_version_approve`)."""
        version = self._own(version)
        return text_version_approve(
            actor=actor, version=version, publish=lambda approved: self.publish(approved, actor)
        )

    @transaction.atomic
    def reject(self, *, actor: Actor, version: TextVersion) -> TextVersion:
        """Turn a draft down (`text_version_reject`)."""
        version = self._own(version, check=self.check_on_reject)
        return text_version_reject(actor=actor, version=version)

    @transaction.atomic
    def rollback(self, *, actor: Actor, version: TextVersion) -> TextVersion:
        """Draft a return to an earlier live version; it is approved like any draft
        (`text_version_rollback`)."""
        version = self._own(version)
        return text_version_rollback(
            actor=actor,
            version=version,
            live_body=self.live_body(bank=version.bank, key=version.key),
        )
