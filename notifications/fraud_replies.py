"""The two quick replies a fraud alert carries ("Yes, it was me" / "No, it wasn't me").

Delivery attaches them to the alert it sends; the conversation reads a tap back by its
payload and repeats the label when an alert was already answered. They live here, below
the conversation, so that delivery never reaches up into it. The labels are translated
with Django's i18n (`locale/`), in the language of the alert they go with.
"""

from functools import lru_cache

from django.utils.translation import gettext, gettext_noop

from portal.languages import speaking

FRAUD_YES = "FRAUD_YES"
FRAUD_NO = "FRAUD_NO"

# The English labels, under the keys the conversation's texts use for them.
LABELS: dict[str, str] = {
    "qr_fraud_yes": gettext_noop("Yes, it was me"),
    "qr_fraud_no": gettext_noop("No, it wasn't me"),
}


def fraud_quick_replies(notification_id: int, locale: str) -> list[dict]:
    """The two answers a fraud alert offers, carrying the alert they answer."""
    yes, no = _labels(locale)
    return [
        {"content_type": "text", "title": yes, "payload": f"{FRAUD_YES}:{notification_id}"},
        {"content_type": "text", "title": no, "payload": f"{FRAUD_NO}:{notification_id}"},
    ]


def fraud_alert_quick_replies(event_type: str, notification_id: int, locale: str) -> list | None:
    """Quick replies for a notification the delivery engine sends: fraud alerts only."""
    if event_type != "fraud.alert":
        return None
    return fraud_quick_replies(notification_id, locale)


@lru_cache(maxsize=64)
def _labels(locale: str) -> tuple[str, str]:
    """The two labels in `locale`, translated once per process: the catalogues are read
    at start-up and never change while it runs."""
    with speaking(locale):
        return gettext(LABELS["qr_fraud_yes"]), gettext(LABELS["qr_fraud_no"])
