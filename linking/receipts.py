"""What a customer can keep of what they agreed to and what was shared: the consent
receipt and the data download, each as a readable page and as JSON.

The JSON's field names and values are documented in docs/consent-receipts.md; they are
the product's words for things, never internal codes (a consent `withdrawn`, not
`revoked`; an account `current_account`, not `checking`). The pages show the same data.
"""

import re
from datetime import datetime
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from linking.models import Account, Consent, ConsentEvent, Customer
from portal.models import AuditEvent, Bank

PLATFORM_NAME = "Messenger, operated by Meta Platforms"
RECEIPT_FORMAT = "bankside-consent-receipt/2"
EXPORT_FORMAT = "bankside-shared-data/2"
NOT_USED_FOR = ["advertising", "profiling", "sharing_with_others"]

STATUS: dict[str, str] = {
    "awaiting_authorisation": "pending",
    "authorised": "active",
    "rejected": "refused",
    "revoked": "withdrawn",
    "expired": "expired",
}
ACCOUNT_TYPE: dict[str, str] = {
    "checking": "current_account",
    "savings": "savings_account",
    "credit_card": "credit_card",
}
ACTOR: dict[str, str] = {
    "customer": "customer",
    "staff": "bank_staff",
    "platform": "messenger",
    "system": "bank",
}
EVENT: dict[str, str] = {
    "awaiting_authorisation": "requested",
    "authorised": "given",
    "rejected": "refused",
    "revoked": "withdrawn",
    "expired": "expired",
}
# What an audit entry about a consent recorded, in the download's words.
RECORD = {
    "consent.authorised": "consent_given",
    "consent.changed": "consent_changed",
    "consent.renewed": "consent_renewed",
    "consent.revoked": "consent_withdrawn",
    "consent.expired": "consent_expired",
    "link.bound": "messenger_linked",
    "link.message_sent": "message_about_the_link_sent",
    "notification.sent": "update_sent",
    "notification.send_uncertain": "update_maybe_sent",
    "notifications.cancelled": "updates_cancelled",
    "conversation.message_sent": "answer_sent",
    "conversation.agent_replied": "answer_sent",
    "fraud_alert.answered": "fraud_alert_answered",
    "link.platform_unlinked": "messenger_unlinked",
}
RECORD_LABELS = {
    "consent_given": gettext_lazy("You allowed sharing"),
    "consent_changed": gettext_lazy("You changed what is shared"),
    "consent_renewed": gettext_lazy("You renewed sharing"),
    "consent_withdrawn": gettext_lazy("Sharing stopped"),
    "consent_expired": gettext_lazy("Sharing reached its end date"),
    "messenger_linked": gettext_lazy("Your Messenger conversation was linked"),
    "message_about_the_link_sent": gettext_lazy("A message about your link was sent"),
    "update_sent": gettext_lazy("An update was sent"),
    "update_maybe_sent": gettext_lazy("An update may have been sent"),
    "updates_cancelled": gettext_lazy("Updates not yet sent were cancelled"),
    "answer_sent": gettext_lazy("An answer was sent in the chat"),
    "fraud_alert_answered": gettext_lazy("You answered a security alert"),
    "messenger_unlinked": gettext_lazy("Messenger was told the link ended"),
    "other": gettext_lazy("Other record"),
}
_VERSION = re.compile(r"\(version (\d+)\)")


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at is not None else None


def controller(bank: Bank) -> dict[str, str | None]:
    """The bank as the data controller, with the contact its settings give."""
    return {
        "name": bank.name,
        "email": bank.support_email or None,
        "phone": bank.support_phone or None,
        "website": str(settings.PUBLIC_BASE_URL),
    }


def dashboard_url(bank: Bank) -> str:
    return str(settings.PUBLIC_BASE_URL) + reverse("linking:dashboard", args=[bank.slug])


def how_to_stop(bank: Bank) -> str:
    return gettext(
        "Stop sharing at any time on your sharing dashboard (%(url)s), with “Manage sharing” "
        "in %(bank)s's Messenger conversation, or by writing “stop” there."
    ) % {"url": dashboard_url(bank), "bank": bank.name}


def _accounts(accounts: list[Account]) -> list[dict[str, str]]:
    return [
        {
            "name": a.name,
            "type": ACCOUNT_TYPE.get(a.kind, "other"),
            "type_name": str(a.get_kind_display()),
            "last4": a.last4,
            "currency": a.currency,
        }
        for a in accounts
    ]


def _updates(scopes: list[str]) -> list[dict[str, str]]:
    labels = dict(Consent.Scope.choices)
    return [{"type": s, "name": str(labels.get(s, s))} for s in scopes]


def _event(event: ConsentEvent) -> str:
    if event.to_status == Consent.Status.AUTHORISED and event.from_status == event.to_status:
        return "changed" if event.reason.startswith("Changed") else "renewed"
    return EVENT.get(event.to_status, "other")


def event_description(event: ConsentEvent, bank: Bank) -> str:
    """One line of a consent's timeline, in the page's language."""
    kind = _event(event)
    if kind == "changed":
        found = _VERSION.search(event.reason)
        if found:
            return gettext("You changed what is shared (version %(number)s)") % {
                "number": found.group(1)
            }
        return gettext("You changed what is shared")
    if kind == "renewed":
        return gettext("You renewed sharing, after signing in with %(bank)s") % {"bank": bank.name}
    if kind == "withdrawn":
        by: dict[str, str] = {
            ConsentEvent.Actor.CUSTOMER.value: gettext("You stopped sharing"),
            ConsentEvent.Actor.PLATFORM.value: gettext("Unlinked in Messenger"),
            ConsentEvent.Actor.STAFF.value: gettext("Stopped by %(bank)s") % {"bank": bank.name},
        }
        return by.get(event.actor, gettext("Ended by %(bank)s") % {"bank": bank.name})
    described: dict[str, str] = {
        "requested": gettext("You opened the consent screen"),
        "given": gettext("You allowed sharing"),
        "refused": gettext("You denied sharing"),
        "expired": gettext("Sharing reached its end date"),
    }
    return described.get(kind, str(event.reason))


def timeline(consent: Consent) -> list[dict[str, Any]]:
    """The consent's history for the customer's pages: when, what, in their language."""
    return [
        {"at": e.occurred_at, "text": event_description(e, consent.bank)}
        for e in consent.events.all()
    ]


def consent_receipt(consent: Consent) -> dict[str, Any]:
    """A consent receipt (after the Kantara Consent Receipt): who holds the data, what was
    agreed, with whom it is shared, for which purpose, since and until when, the exact
    words agreed to, every version, and how to stop."""
    bank = consent.bank
    versions = list(consent.versions.prefetch_related("accounts").select_related("text"))
    text = consent.text
    return {
        "receipt_format": RECEIPT_FORMAT,
        "receipt_id": f"{bank.slug}-consent-{consent.pk}",
        "generated_at": _iso(timezone.now()),
        "language": consent.customer.locale,
        "controller": controller(bank),
        "shared_with": {"name": PLATFORM_NAME, "messenger_account": consent.messenger_name or None},
        "customer_id": consent.customer.external_id,
        "status": STATUS.get(consent.status, "other"),
        "purpose": consent.purpose,
        "not_used_for": NOT_USED_FOR,
        "accounts": _accounts(list(consent.accounts.all())),
        "updates": _updates(list(consent.scopes)),
        "since": _iso(consent.granted_at),
        "until": _iso(consent.expires_at),
        "ended_at": _iso(consent.ended_at),
        "version": versions[-1].number if versions else 1,
        "consent_text": (
            {"sha256": text.digest, "language": text.language, "text": text.body}
            if text is not None
            else None
        ),
        "versions": [
            {
                "version": v.number,
                "from": _iso(v.created_at),
                "accounts": _accounts(list(v.accounts.all())),
                "updates": _updates(list(v.scopes)),
                "consent_text_sha256": v.text.digest if v.text is not None else None,
            }
            for v in versions
        ],
        "history": [
            {"at": _iso(e.occurred_at), "event": _event(e), "by": ACTOR.get(e.actor, "bank")}
            for e in consent.events.all()
        ],
        "how_to_stop": how_to_stop(bank),
        "dashboard_url": dashboard_url(bank),
    }


def shared_records(customer: Customer) -> list[dict[str, Any]]:
    """What the audit trail recorded about the customer's consents: when, what, which data."""
    slug = customer.bank.slug
    entries = AuditEvent.objects.filter(
        bank=customer.bank,
        target_type="linking.consent",
        target_id__in=[str(pk) for pk in customer.consents.values_list("pk", flat=True)],
    ).order_by("occurred_at", "pk")
    records = []
    for entry in entries:
        event = RECORD.get(entry.action, "other")
        records.append(
            {
                "at": entry.occurred_at,
                "event": event,
                "label": RECORD_LABELS[event],
                "receipt_id": f"{slug}-consent-{entry.target_id}",
                "data_shared": _updates(list(entry.data_categories or [])),
            }
        )
    return records


def customer_consents(customer: Customer) -> list[Consent]:
    return list(
        customer.consents.exclude(status=Consent.Status.AWAITING_AUTHORISATION)
        .select_related("bank", "customer", "text")
        .prefetch_related("accounts", "events")
    )


def customer_shared_export(customer: Customer) -> dict[str, Any]:
    """Everything bankside recorded as shared with the platform about this customer."""
    return {
        "export_format": EXPORT_FORMAT,
        "generated_at": _iso(timezone.now()),
        "customer": {"id": customer.external_id, "name": customer.name},
        "controller": controller(customer.bank),
        "shared_with": {"name": PLATFORM_NAME},
        "consents": [consent_receipt(c) for c in customer_consents(customer)],
        "records": [
            {
                "at": _iso(r["at"]),
                "event": r["event"],
                "receipt_id": r["receipt_id"],
                "data_shared": r["data_shared"],
            }
            for r in shared_records(customer)
        ],
    }
