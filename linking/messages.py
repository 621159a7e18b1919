"""The words bankside itself says to a customer in Messenger about their link.

In the customer's language (`portal.languages.speaking_locale`: theirs when bankside has
it, else the bank's default), with dates in the same locale.
"""

import datetime as dt

from django.utils import timezone
from django.utils.translation import get_language, gettext

from linking.models import Consent, DashboardPass, LinkInvitation
from portal.languages import format_date, format_datetime, speaking, speaking_locale
from portal.models import Bank

# The payload of the "That wasn't me" button on a new-link notice, followed by the
# notice's id; it is honoured only from the chat the notice was sent to.
NOT_ME_PAYLOAD = "LINK_NOT_ME:"


def _locale(consent: Consent) -> str:
    return speaking_locale(consent.customer.locale, consent.bank.default_locale)


def _day(consent: Consent, locale: str) -> str:
    if consent.expires_at is None:
        return ""
    return format_date(timezone.localtime(consent.expires_at), locale)


def scope_list(consent: Consent) -> str:
    """The consent's scopes as a phrase in the active language: "balances, fraud alerts"
    (German keeps its nouns capitalised: "Kontostände, Betrugswarnungen")."""
    labels = dict(Consent.Scope.choices)
    keep_case = get_language() == "de"
    return ", ".join(
        str(labels[s]) if keep_case else str(labels[s]).lower()
        for s in consent.scopes
        if s in labels
    )


def link_confirmation(consent: Consent) -> str:
    if LinkInvitation.objects.filter(consent=consent).exists():
        # Linked from the bank's app, where Messenger has no Log Out button to tap.
        return link_confirmation_via_invitation(consent)
    locale = _locale(consent)
    accounts = ", ".join(f"{a.name} •••• {a.last4}" for a in consent.accounts.all())
    with speaking(locale):
        return gettext(
            "You're linked to %(bank)s. We'll send %(scopes)s for %(accounts)s until "
            "%(until)s. Nothing is used for advertising. To stop at any time, write “stop”, "
            "tap Log Out or manage sharing on the bank's website."
        ) % {
            "bank": consent.bank.name,
            "scopes": scope_list(consent),
            "accounts": accounts,
            "until": _day(consent, locale),
        }


def link_ended(consent: Consent) -> str:
    with speaking(_locale(consent)):
        return gettext(
            "%(bank)s has stopped sending updates here: your account is unlinked. "
            "You can link again at any time with Log In."
        ) % {"bank": consent.bank.name}


def expiry_reminder(consent: Consent) -> str:
    locale = _locale(consent)
    with speaking(locale):
        return gettext(
            "Your Messenger updates from %(bank)s stop on %(until)s. To keep them, renew on "
            "your sharing dashboard: %(url)s"
        ) % {
            "bank": consent.bank.name,
            "until": _day(consent, locale),
            "url": dashboard_url(consent),
        }


def dashboard_url(consent: Consent) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.PUBLIC_BASE_URL + reverse("linking:dashboard", args=[consent.bank.slug])


def renew_url(consent: Consent) -> str:
    """The renewal page of this consent: it asks for the bank's sign-in first."""
    from django.conf import settings
    from django.urls import reverse

    return str(settings.PUBLIC_BASE_URL) + reverse(
        "linking:renew", args=[consent.bank.slug, consent.pk]
    )


def pass_url(consent: Consent, token: str) -> str:
    from django.conf import settings
    from django.urls import reverse

    return str(settings.PUBLIC_BASE_URL) + reverse("linking:pass", args=[consent.bank.slug, token])


def manage_sharing_title(consent: Consent) -> str:
    """The *Manage sharing* button (at most 20 characters: Messenger's button titles)."""
    with speaking(_locale(consent)):
        return gettext("Manage sharing")


def renew_title(consent: Consent) -> str:
    with speaking(_locale(consent)):
        return gettext("Renew")


def open_dashboard_title(consent: Consent) -> str:
    with speaking(_locale(consent)):
        return gettext("Open my dashboard")


def manage_link(consent: Consent) -> str:
    """The answer to *Manage sharing*: the button under it signs them in, once, briefly."""
    with speaking(_locale(consent)):
        return gettext(
            "Here is your sharing dashboard at %(bank)s: see and change which accounts and "
            "updates you share, renew or stop. For your security, this button works once, "
            "within %(minutes)d minutes."
        ) % {"bank": consent.bank.name, "minutes": DashboardPass.LIFETIME_MINUTES}


def manage_link_as_text(consent: Consent) -> str:
    """The answer to *Manage sharing* where no button can be sent: the dashboard itself."""
    with speaking(_locale(consent)):
        return gettext("Manage what you share with %(bank)s on your sharing dashboard: %(url)s") % {
            "bank": consent.bank.name,
            "url": dashboard_url(consent),
        }


def expiry_reminder_with_buttons(consent: Consent) -> str:
    """The reminder when it carries its buttons (Renew, Manage sharing)."""
    locale = _locale(consent)
    with speaking(locale):
        return gettext(
            "Your Messenger updates from %(bank)s stop on %(until)s. To keep them, tap "
            "Renew and sign in with %(bank)s."
        ) % {"bank": consent.bank.name, "until": _day(consent, locale)}


def _moment(at: dt.datetime | None, locale: str) -> str:
    return format_datetime(
        at or dt.datetime.now(dt.UTC), locale, tzinfo=timezone.get_current_timezone()
    )


def new_link_notice(new: Consent, to: Consent) -> str:
    """To each of the customer's other linked chats (`to`): a new Messenger account was
    linked."""
    locale = _locale(to)
    with speaking(locale):
        values = {"bank": new.bank.name, "when": _moment(new.linked_at, locale)}
        if new.messenger_name:
            text = gettext(
                "Security notice from %(bank)s: another Messenger account (%(name)s) was "
                "linked to your account on %(when)s and will receive your updates too."
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
                "If that wasn't you, tap “That wasn't me”: we end that link at once and tell "
                "%(bank)s."
            )
            % {"bank": new.bank.name}
        )


def not_me_button_title(to: Consent) -> str:
    with speaking(_locale(to)):
        return gettext("That wasn't me")


def not_me_answer(new: Consent, to: Consent) -> str:
    """To the chat (`to`) that tapped "That wasn't me": the new link has ended."""
    locale = _locale(to)
    with speaking(locale):
        return gettext(
            "Done: the Messenger account linked on %(when)s no longer receives anything from "
            "%(bank)s, and %(bank)s has been told. If someone else knows your password, "
            "change it now."
        ) % {"bank": new.bank.name, "when": _moment(new.linked_at, locale)}


def referral_refused(bank: Bank, reason: str) -> str:
    """The polite answer to someone whose m.me link cannot link them; never says whose
    account the link was for. Bankside does not know them: in the bank's language."""
    with speaking(speaking_locale("", bank.default_locale)):
        if reason == "used":
            first = gettext(
                "Sorry, this link was already used to link an account, so it can't link yours."
            )
        elif reason == "expired":
            first = gettext(
                "Sorry, this link has expired: for your security, a link works for a short "
                "time only."
            )
        else:
            first = gettext("Sorry, this link can't link an account here.")
        return (
            first
            + " "
            + gettext(
                "Nothing was shared. To link your %(bank)s account, sign in to %(bank)s's app "
                "or online banking and choose Messenger updates again."
            )
            % {"bank": bank.name}
        )


def link_confirmation_via_invitation(consent: Consent) -> str:
    locale = _locale(consent)
    accounts = ", ".join(f"{a.name} •••• {a.last4}" for a in consent.accounts.all())
    with speaking(locale):
        return gettext(
            "You're linked to %(bank)s. We'll send %(scopes)s for %(accounts)s until "
            "%(until)s. Nothing is used for advertising. To stop at any time, write “stop” "
            "or manage sharing on your dashboard: %(url)s"
        ) % {
            "bank": consent.bank.name,
            "scopes": scope_list(consent),
            "accounts": accounts,
            "until": _day(consent, locale),
            "url": dashboard_url(consent),
        }
