"""The words bankside itself says to a customer in Messenger about their link."""

import datetime as dt

from django.utils.translation import gettext

from linking.models import Consent, LinkInvitation
from portal.models import Bank

# The payload of the "That wasn't me" button on a new-link notice, followed by the
# notice's id; it is honoured only from the chat the notice was sent to.
NOT_ME_PAYLOAD = "LINK_NOT_ME:"


def scope_list(consent: Consent) -> str:
    labels = dict(Consent.Scope.choices)
    return ", ".join(labels[s].lower() for s in consent.scopes if s in labels)


def link_confirmation(consent: Consent) -> str:
    if LinkInvitation.objects.filter(consent=consent).exists():
        # Linked from the bank's app, where Messenger has no Log Out button to tap.
        return link_confirmation_via_invitation(consent)
    accounts = ", ".join(f"{a.name} •••• {a.last4}" for a in consent.accounts.all())
    return (
        f"You're linked to {consent.bank.name}. We'll send {scope_list(consent)} for "
        f"{accounts} until {consent.expires_at:%d %b %Y}. Nothing is used for advertising. "
        "To stop at any time, tap Log Out or manage sharing on the bank's website."
    )


def link_ended(consent: Consent) -> str:
    return (
        f"{consent.bank.name} has stopped sending updates here: your account is unlinked. "
        "You can link again at any time with Log In."
    )


def expiry_reminder(consent: Consent) -> str:
    return (
        f"Your Messenger updates from {consent.bank.name} stop on "
        f"{consent.expires_at:%d %b %Y}. To keep them, renew on your sharing dashboard: "
        f"{dashboard_url(consent)}"
    )


def dashboard_url(consent: Consent) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.PUBLIC_BASE_URL + reverse("linking:dashboard", args=[consent.bank.slug])


def _moment(at: dt.datetime | None) -> str:
    return f"{(at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC):%d %b %Y at %H:%M} UTC"


def new_link_notice(new: Consent) -> str:
    """To each of the customer's other linked chats: a new Messenger account was linked."""
    values = {"bank": new.bank.name, "when": _moment(new.linked_at)}
    if new.messenger_name:
        text = gettext(
            "Security notice from %(bank)s: another Messenger account (%(name)s) was linked "
            "to your account on %(when)s and will receive your updates too."
        ) % {**values, "name": new.messenger_name}
    else:
        text = (
            gettext(
                "Security notice from %(bank)s: another Messenger account was linked to your "
                "account on %(when)s and will receive your updates too."
            )
            % values
        )
    return (
        text
        + " "
        + gettext(
            "If that wasn't you, tap “That wasn't me”: we end that link at once and tell %(bank)s."
        )
        % {"bank": new.bank.name}
    )


def not_me_button_title() -> str:
    return gettext("That wasn't me")


def not_me_answer(new: Consent) -> str:
    """To the chat that tapped "That wasn't me": the new link has ended."""
    return gettext(
        "Done: the Messenger account linked on %(when)s no longer receives anything from "
        "%(bank)s, and %(bank)s has been told. If someone else knows your password, "
        "change it now."
    ) % {"bank": new.bank.name, "when": _moment(new.linked_at)}


REFERRAL_REFUSALS = {
    "used": "this link was already used to link an account, so it can't link yours.",
    "expired": "this link has expired: for your security, a link works for a short time only.",
}


def referral_refused(bank: Bank, reason: str) -> str:
    """The polite answer to someone whose m.me link cannot link them; never says whose
    account the link was for."""
    first = REFERRAL_REFUSALS.get(reason, "this link can't link an account here.")
    return (
        f"Sorry, {first} Nothing was shared. To link your {bank.name} account, sign in to "
        f"{bank.name}'s app or online banking and choose Messenger updates again."
    )


def link_confirmation_via_invitation(consent: Consent) -> str:
    accounts = ", ".join(f"{a.name} •••• {a.last4}" for a in consent.accounts.all())
    return (
        f"You're linked to {consent.bank.name}. We'll send {scope_list(consent)} for "
        f"{accounts} until {consent.expires_at:%d %b %Y}. Nothing is used for advertising. "
        f"To stop at any time, manage sharing on your dashboard: {dashboard_url(consent)}"
    )
