"""The words bankside itself says to a customer in Messenger about their link."""

from linking.models import Consent


def scope_list(consent: Consent) -> str:
    labels = dict(Consent.Scope.choices)
    return ", ".join(labels[s].lower() for s in consent.scopes if s in labels)


def link_confirmation(consent: Consent) -> str:
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
