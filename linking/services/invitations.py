"""Linking from the bank's own channel: m.me invitations.

Where Messenger's Log In linking is unavailable (Europe, Japan), the bank's backend asks
for an invitation for a customer already signed in to its app (`link_invitation_issue`).
The URL it gets is single-use and short-lived: it opens the consent screen once
(`link_invitation_open`). *Allow* records the consent and mints the `ref` of an m.me link
to the bank's Page (`link_invitation_authorise`); the person who brings that ref to the
Page first (`messaging_referrals`, or the *Get Started* postback's `referral`) is linked
(`link_referral_bind`). A ref binds once, expires, and is good on its own Page only;
anyone else who brings it is refused, audited, and told so politely in the chat
(`referral_refusal_send`).
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

import messenger
from linking import messages, signals
from linking.models import Account, Consent, Customer, LinkingFlows, LinkInvitation
from linking.services.consents import (
    PLATFORM,
    _consent_details,
    _transition,
    consent_choice_check,
    customer_actor,
    link_psid_bind,
)
from linking.services.texts import consent_terms_record
from linking.services.unlinks import page_credentials
from portal.audit import Actor
from portal.models import Bank, MessengerIntegration
from portal.pseudonyms import pseudonym
from portal.services import audit_record

log = logging.getLogger(__name__)

Status = Consent.Status
# Every ref bankside mints starts so: other refs that reach the Page (ads, QR codes, the
# bank's marketing links) are none of linking's business and are left alone.
REF_PREFIX = "link_"
REFERRAL_SENDER = Actor.system("m.me invitations")


class InvitationUnavailableError(Exception):
    """The bank cannot invite now: it does not offer m.me invitations, has no Page
    connected, or has paused Messenger."""


class InvitationRefusedError(Exception):
    """An invitation URL that cannot open or answer the consent screen; `reason` is one
    of `unknown`, `used`, `expired`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ReferralRefusedError(Exception):
    """An m.me ref that cannot link the person who brought it; `reason` is one of
    `unknown`, `other_page`, `used`, `expired`, `ended`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class InvitationKeyReusedError(Exception):
    """An `Idempotency-Key` first sent with another request."""


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: LinkInvitation
    url: str
    replayed: bool = False


@dataclass(frozen=True)
class AuthorisedInvitation:
    consent: Consent
    m_me_url: str


def linking_flows_for(bank: Bank) -> LinkingFlows:
    """The bank's linking flows; both offered while it has not chosen."""
    return LinkingFlows.objects.filter(bank=bank).first() or LinkingFlows(bank=bank)


@transaction.atomic
def linking_flows_update(*, actor: Actor, bank: Bank, log_in: bool, invitations: bool) -> None:
    """Choose how the bank's customers can link; at least one way stays open."""
    if not (log_in or invitations):
        raise ValidationError("Offer at least one way to link, or customers cannot link at all.")
    flows, _ = LinkingFlows.objects.select_for_update().get_or_create(bank=bank)
    before = {"log_in": flows.log_in, "invitations": flows.invitations}
    flows.log_in, flows.invitations = log_in, invitations
    flows.save()
    audit_record(
        actor=actor,
        action="linking_flows.updated",
        bank=bank,
        target=flows,
        details={"before": before, "after": {"log_in": log_in, "invitations": invitations}},
    )


def _integration(bank: Bank) -> MessengerIntegration:
    integration = MessengerIntegration.objects.filter(bank=bank).first()
    if integration is None or not integration.page_id:
        raise InvitationUnavailableError("The bank has no Facebook Page connected yet.")
    if integration.status == MessengerIntegration.Status.PAUSED:
        raise InvitationUnavailableError("The bank has paused Messenger updates.")
    return integration


def _invitation_url(invitation: LinkInvitation) -> str:
    token = LinkInvitation.token_from_seed(invitation.token_seed)
    base: str = settings.PUBLIC_BASE_URL
    return base + reverse("linking:invitation", args=[invitation.bank.slug, token])


def _replay(
    bank: Bank, idempotency_key: str, fingerprint: str, now: datetime
) -> IssuedInvitation | None:
    since = now - timedelta(hours=LinkInvitation.IDEMPOTENCY_HOURS)
    found = (
        LinkInvitation.objects.select_related("bank")
        .filter(bank=bank, idempotency_key=idempotency_key, created_at__gt=since)
        .first()
    )
    if found is None:
        return None
    if found.request_fingerprint != fingerprint:
        raise InvitationKeyReusedError("this Idempotency-Key was sent with another request")
    return IssuedInvitation(found, _invitation_url(found), replayed=True)


def link_invitation_issue(
    *,
    actor: Actor,
    customer: Customer,
    lifetime_seconds: int = LinkInvitation.MAX_LIFETIME_SECONDS,
    idempotency_key: str = "",
    fingerprint: str = "",
) -> IssuedInvitation:
    """Mint a single-use invitation URL for `customer`, whom the bank has signed in.

    Idempotent by the bank's `Idempotency-Key` for 24 hours: a retry with the same
    request answers the same invitation (`replayed`), another request with the key raises
    InvitationKeyReusedError. Neither the URL nor its token is stored, only the seed the
    token is derived from with the server's key, and the token's keyed digest: the generic
    store of idempotent answers would keep the URL itself, so it is not used here. Of two
    identical requests at once, the second waits on the unique key and replays the first.
    """
    now = timezone.now()
    if idempotency_key:
        replayed = _replay(customer.bank, idempotency_key, fingerprint, now)
        if replayed is not None:
            return replayed
        # The key's earlier invitation is past its 24 hours: the key is free again.
        LinkInvitation.objects.filter(bank=customer.bank, idempotency_key=idempotency_key).update(
            idempotency_key=""
        )
    try:
        with transaction.atomic():
            return _issue(
                actor=actor,
                customer=customer,
                lifetime_seconds=lifetime_seconds,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
                now=now,
            )
    except IntegrityError:
        replayed = _replay(customer.bank, idempotency_key, fingerprint, now)
        if not idempotency_key or replayed is None:
            raise
        return replayed


def _issue(
    *,
    actor: Actor,
    customer: Customer,
    lifetime_seconds: int,
    idempotency_key: str,
    fingerprint: str,
    now: datetime,
) -> IssuedInvitation:
    bank = customer.bank
    if not linking_flows_for(bank).invitations:
        raise InvitationUnavailableError("The bank does not offer linking by m.me invitation.")
    _integration(bank)
    if customer.erased_at is not None:
        raise InvitationUnavailableError("This customer's data was erased.")
    lifetime = min(max(lifetime_seconds, 60), LinkInvitation.MAX_LIFETIME_SECONDS)
    seed = secrets.token_hex(32)
    invitation = LinkInvitation.objects.create(
        bank=bank,
        customer=customer,
        token_seed=seed,
        token_digest=LinkInvitation.token_digest_of(LinkInvitation.token_from_seed(seed)),
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint if idempotency_key else "",
        created_at=now,
        expires_at=now + timedelta(seconds=lifetime),
    )
    audit_record(
        actor=actor,
        action="link_invitation.issued",
        bank=bank,
        target=customer,
        details={"invitation": invitation.pk, "expires_at": invitation.expires_at},
    )
    return IssuedInvitation(invitation, _invitation_url(invitation))


def _invitation_locked(bank: Bank, invitation_id: int) -> LinkInvitation:
    return (
        LinkInvitation.objects.select_for_update()
        .select_related("customer__bank")
        .get(pk=invitation_id, bank=bank)
    )


@transaction.atomic
def link_invitation_open(*, bank: Bank, token: str, now: datetime | None = None) -> LinkInvitation:
    """Spend the invitation URL: it opens the consent screen once, before it expires.

    The row lock makes the first of two opens the only one.
    """
    now = now or timezone.now()
    invitation = (
        LinkInvitation.objects.select_for_update()
        .select_related("customer__bank")
        .filter(token_digest=LinkInvitation.token_digest_of(token), bank=bank)
        .first()
    )
    if invitation is None:
        raise InvitationRefusedError("unknown")
    if invitation.opened_at is not None:
        raise InvitationRefusedError("used")
    if invitation.expires_at <= now:
        raise InvitationRefusedError("expired")
    invitation.opened_at = now
    invitation.save(update_fields=["opened_at"])
    audit_record(
        actor=customer_actor(invitation.customer),
        action="link_invitation.opened",
        bank=bank,
        target=invitation.customer,
        details={"invitation": invitation.pk},
    )
    return invitation


def _answerable(bank: Bank, invitation_id: int, now: datetime) -> LinkInvitation:
    invitation = _invitation_locked(bank, invitation_id)
    if invitation.opened_at is None or invitation.answered_at is not None:
        raise InvitationRefusedError("used")
    if invitation.expires_at <= now:
        raise InvitationRefusedError("expired")
    return invitation


def m_me_url(page: str, ref: str) -> str:
    return f"{settings.MESSENGER_ME_URL}/{page}?ref={ref}"


@transaction.atomic
def link_invitation_authorise(
    *,
    bank: Bank,
    invitation_id: int,
    accounts: list[Account],
    scopes: list[str],
    duration_days: int,
    purpose: str,
    text: str = "",
    language: str = "",
) -> AuthorisedInvitation:
    """The customer allows: record the consent and mint the m.me link's ref.

    `text` is the words the consent screen showed, in `language`: the proof of consent.

    The ref is bound to the bank's Page at this moment, good for
    `LINK_INVITATION_REF_HOURS`, and stored as a keyed digest only.
    """
    now = timezone.now()
    invitation = _answerable(bank, invitation_id, now)
    customer = invitation.customer
    scopes = consent_choice_check(
        customer=customer, accounts=accounts, scopes=scopes, duration_days=duration_days
    )
    integration = _integration(bank)
    actor = customer_actor(customer)
    consent = Consent(
        bank=bank,
        customer=customer,
        scopes=scopes,
        purpose=purpose,
        duration_days=duration_days,
        page_id=integration.page_id,
    )
    _transition(
        consent,
        Status.AWAITING_AUTHORISATION,
        actor=actor,
        reason="Invitation from the bank's app",
    )
    consent.accounts.set(accounts)
    _transition(consent, Status.AUTHORISED, actor=actor, reason="Allowed on the consent screen")
    consent.granted_at, consent.expires_at = now, now + timedelta(days=duration_days)
    consent.save()
    consent_terms_record(consent=consent, text=text, language=language)
    ref = REF_PREFIX + secrets.token_urlsafe(24)
    invitation.answered_at = now
    invitation.consent = consent
    invitation.page_id = integration.page_id
    invitation.ref_digest = LinkInvitation.ref_digest_of(ref)
    invitation.ref_expires_at = now + timedelta(hours=settings.LINK_INVITATION_REF_HOURS)
    invitation.save()
    audit_record(
        actor=actor,
        action="consent.authorised",
        bank=bank,
        target=consent,
        details={
            **_consent_details(consent),
            "expires_at": consent.expires_at,
            "via": "m.me invitation",
            "invitation": invitation.pk,
            "ref_expires_at": invitation.ref_expires_at,
        },
        data_categories=scopes,
    )
    return AuthorisedInvitation(consent, m_me_url(integration.page_id, ref))


@transaction.atomic
def link_invitation_reject(*, bank: Bank, invitation_id: int) -> Consent:
    """The customer denies: recorded as a rejected consent; nothing is shared, no ref."""
    now = timezone.now()
    invitation = _answerable(bank, invitation_id, now)
    customer = invitation.customer
    actor = customer_actor(customer)
    consent = Consent(
        bank=bank,
        customer=customer,
        scopes=[],
        purpose="",
        duration_days=0,
        page_id="",
    )
    _transition(
        consent,
        Status.AWAITING_AUTHORISATION,
        actor=actor,
        reason="Invitation from the bank's app",
    )
    _transition(consent, Status.REJECTED, actor=actor, reason="Denied on the consent screen")
    consent.ended_at = now
    consent.save()
    invitation.answered_at, invitation.consent = now, consent
    invitation.save(update_fields=["answered_at", "consent"])
    audit_record(
        actor=actor,
        action="consent.rejected",
        bank=bank,
        target=consent,
        details={"via": "m.me invitation", "invitation": invitation.pk},
    )
    return consent


def is_invitation_ref(ref: str | None) -> bool:
    """Whether a referral's ref is one of ours, to bind or refuse; any other is ignored."""
    return ref is not None and ref.startswith(REF_PREFIX) and len(ref) <= 200


def link_referral_bind(
    *, bank: Bank, page_id: str, psid: str, ref: str, now: datetime | None = None
) -> Consent | None:
    """Link `psid` through the m.me ref it brought to the bank's Page `page_id`.

    The first person to bring an unexpired ref, on the Page it was issued for, is linked,
    as the Log In's `account_linking` event links; the same person bringing it again
    (Meta retries webhooks; people tap links twice) changes nothing and returns None. Any
    other use raises ReferralRefusedError after auditing the attempt, and the person who
    brought it is told in the chat (after the commit, by a worker).
    """
    try:
        with transaction.atomic():
            return _referral_bind(bank=bank, page_id=page_id, psid=psid, ref=ref, now=now)
    except ReferralRefusedError as refused:
        audit_record(
            actor=PLATFORM,
            action="link.refused",
            bank=bank,
            target_type="messenger.psid",
            target_id=pseudonym(psid),
            details={"reason": str(refused), "page_id": page_id, "via": "m.me invitation"},
        )
        _tell_refused(bank.pk, psid, refused.reason)
        raise


def _referral_bind(
    *, bank: Bank, page_id: str, psid: str, ref: str, now: datetime | None
) -> Consent | None:
    now = now or timezone.now()
    invitation = (
        LinkInvitation.objects.select_for_update()
        .filter(ref_digest=LinkInvitation.ref_digest_of(ref), bank=bank)
        .first()
    )
    if invitation is None or invitation.consent_id is None:
        raise ReferralRefusedError("unknown", "unknown m.me ref")
    if invitation.page_id != page_id:
        raise ReferralRefusedError("other_page", "m.me ref was issued for another Page")
    if invitation.bound_at is not None:
        if invitation.bound_psid == psid:
            return None
        raise ReferralRefusedError("used", "m.me ref was already used by another person")
    if invitation.ref_expires_at is None or invitation.ref_expires_at <= now:
        raise ReferralRefusedError("expired", "m.me ref has expired")
    consent = Consent.objects.select_for_update().get(pk=invitation.consent_id)
    if consent.status != Status.AUTHORISED:
        raise ReferralRefusedError("ended", f"consent is {consent.status}")
    invitation.bound_at, invitation.bound_psid = now, psid
    invitation.save(update_fields=["bound_at", "bound_psid"])
    return link_psid_bind(
        consent=consent, bank=bank, page_id=page_id, psid=psid, via="m.me invitation"
    )


def link_invitations_expire_unused(*, now: datetime | None = None) -> int:
    """End the consent of every invitation whose ref expired before anyone brought it.

    Such a consent was allowed but never became a link: nothing was shared, and nothing
    can be any more. It is expired, recorded and audited, each in its own transaction, so
    the customer's dashboard does not list it as sharing; how many were ended.
    """
    now = now or timezone.now()
    due = LinkInvitation.objects.filter(
        ref_expires_at__lte=now,
        bound_at__isnull=True,
        consent__status=Status.AUTHORISED,
        consent__psid="",
    ).values_list("consent_id", flat=True)
    ended = 0
    for consent_id in list(due):
        with transaction.atomic():
            consent = Consent.objects.select_for_update().get(pk=consent_id)
            if consent.status != Status.AUTHORISED or consent.psid:
                continue
            _transition(
                consent,
                Status.EXPIRED,
                actor=REFERRAL_SENDER,
                reason="The m.me link was not opened in time",
            )
            consent.ended_at = now
            consent.save()
            audit_record(
                actor=REFERRAL_SENDER,
                action="consent.expired",
                bank=consent.bank,
                target=consent,
                details={"reason": "m.me invitation not used"},
            )
            ended += 1
    return ended


def _tell_refused(bank_id: int, psid: str, reason: str) -> None:
    transaction.on_commit(
        lambda: signals.referral_refused.send(
            sender=LinkInvitation, bank_id=bank_id, psid=psid, reason=reason
        )
    )


def referral_refusal_send(*, bank_id: int, psid: str, reason: str) -> bool:
    """Tell the person in the chat, politely, that the link they opened cannot link them.

    A courtesy reply inside the 24-hour window their referral just opened: sent once,
    never retried with a tag or a template; a failure is logged. Whether it went out.
    """
    creds = page_credentials(bank_id)
    bank = Bank.objects.filter(pk=bank_id).first()
    if creds is None or bank is None:
        return False
    text = messages.referral_refused(bank, reason)
    try:
        messenger.get_client().send(creds, messenger.builders.text_message(psid, text))
    except messenger.MessengerError as exc:
        log.info("referral refusal for bank %s not sent: %s", bank.slug, type(exc).__name__)
        return False
    audit_record(
        actor=REFERRAL_SENDER,
        action="link.refusal_sent",
        bank=bank,
        target_type="messenger.psid",
        target_id=pseudonym(psid),
        details={"reason": reason},
    )
    return True
