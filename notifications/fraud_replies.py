"""The two quick replies a fraud alert carries ("Yes, it was me" / "No, it wasn't me").

Delivery attaches them to the alert it sends; the conversation reads a tap back by its
payload and repeats the label when an alert was already answered. They live here, below
the conversation, so that delivery never reaches up into it.
"""

FRAUD_YES = "FRAUD_YES"
FRAUD_NO = "FRAUD_NO"

# Per language, under the keys the conversation's texts use for them.
LABELS: dict[str, dict[str, str]] = {
    "en": {"qr_fraud_yes": "Yes, it was me", "qr_fraud_no": "No, it wasn't me"},
    "fr": {"qr_fraud_yes": "Oui, c'était moi", "qr_fraud_no": "Non, pas moi"},
    "de": {"qr_fraud_yes": "Ja, das war ich", "qr_fraud_no": "Nein, nicht ich"},
}


def language_of(locale: str) -> str:
    return (locale or "").replace("-", "_").split("_", 1)[0].lower()


def fraud_quick_replies(notification_id: int, locale: str) -> list[dict]:
    """The two answers a fraud alert offers, carrying the alert they answer."""
    labels = LABELS.get(language_of(locale), LABELS["en"])
    return [
        {
            "content_type": "text",
            "title": labels["qr_fraud_yes"],
            "payload": f"{FRAUD_YES}:{notification_id}",
        },
        {
            "content_type": "text",
            "title": labels["qr_fraud_no"],
            "payload": f"{FRAUD_NO}:{notification_id}",
        },
    ]


def fraud_alert_quick_replies(event_type: str, notification_id: int, locale: str) -> list | None:
    """Quick replies for a notification the delivery engine sends: fraud alerts only."""
    if event_type != "fraud.alert":
        return None
    return fraud_quick_replies(notification_id, locale)
