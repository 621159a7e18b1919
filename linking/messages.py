"""The words bankside itself says to a customer in Messenger about their link.

In the customer's language (`portal.languages.speaking_locale`: theirs when bankside has
it, else the bank's default), with dates in the same locale.
"""

from django.utils import timezone
from django.utils.translation import get_language, gettext

from linking.models import Consent
from portal.languages import format_date, speaking, speaking_locale


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
