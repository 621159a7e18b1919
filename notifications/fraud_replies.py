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
# A reply's payload names its alert in base 36 after this mark: a notification's id is
# 14 digits or more (its month comes first), and a run of 13 to 19 digits that passed
# the Luhn check would be taken for a card number and masked wherever a customer's
# message is stored. Base 36 never makes such a run. Payloads of alerts sent before
# carry the id in decimal, and are still read.
ID_MARK = "n"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"

# The English labels, under the keys the conversation's texts use for them.
LABELS: dict[str, str] = {
    "qr_fraud_yes": gettext_noop("Yes, it was me"),
    "qr_fraud_no": gettext_noop("No, it wasn't me"),
}


def fraud_payload(kind: str, notification_id: int) -> str:
    """The payload of the reply `kind` (`FRAUD_YES`, `FRAUD_NO`) to an alert."""
    digits, rest = "", notification_id
    while True:
        rest, digit = divmod(rest, 36)
        digits = _BASE36[digit] + digits
        if not rest:
            break
    return f"{kind}:{ID_MARK}{digits}"


def fraud_payload_read(payload: str) -> tuple[str, int] | None:
    """(kind, notification id) of a fraud alert's reply payload, else None."""
    kind, _, ref = payload.partition(":")
    if kind not in (FRAUD_YES, FRAUD_NO) or not ref.isascii():
        return None
    if ref.isdigit() and len(ref) <= 18:
        return kind, int(ref)
    digits = ref.removeprefix(ID_MARK)
    if (
        digits == ref
        or not 0 < len(digits) <= 12
        or not digits.isalnum()
        or digits != digits.lower()
    ):
        return None
    return kind, int(digits, 36)


def fraud_quick_replies(notification_id: int, locale: str) -> list[dict]:
    """The two answers a fraud alert offers, carrying the alert they answer."""
    yes, no = _labels(locale)
    return [
        {
            "content_type": "text",
            "title": yes,
            "payload": fraud_payload(FRAUD_YES, notification_id),
        },
        {"content_type": "text", "title": no, "payload": fraud_payload(FRAUD_NO, notification_id)},
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
