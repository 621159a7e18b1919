"""Updates in the customer's language, with that language's formats, or consistently in
the bank's default language where the bank has no template in theirs."""

import pytest

from notifications.models import Notification
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import deliver, post
from portal.audit import Actor
from portal.template_defaults import default_template_text
from portal.tests.factories import template_text_approved

pytestmark = pytest.mark.django_db

STAFF = Actor.system("test")


def spaces(text: str) -> str:
    """Babel's no-break and narrow no-break spaces as plain ones, to compare."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


def coffee(linked) -> dict:
    return event_payload(
        "transaction.posted",
        account=linked.card,
        data={
            "amount": "-4.61",
            "currency": "EUR",
            "merchant": "Corner Coffee",
            "description": "Card payment",
            "card_last4": "4037",
        },
    )


def templates_in(bank, locale: str, *event_types: str) -> None:
    """The bank adds its templates in `locale`, starting from bankside's defaults."""
    for event_type in event_types:
        template_text_approved(
            bank,
            event_type=event_type,
            locale=locale,
            body=default_template_text(event_type, locale),
        )


def speaks(linked, locale: str) -> None:
    linked.customer.locale = locale
    linked.customer.save()


def test_a_french_customer_reads_a_card_payment_in_french_with_french_formats(linked, linked_api):
    templates_in(linked.bank, "fr", "transaction.posted")
    speaks(linked, "fr")

    post(linked_api, coffee(linked))

    (notification,) = Notification.objects.all()
    assert spaces(notification.text) == (
        "Vous avez payé 4,61 € chez Corner Coffee avec votre carte •••• 4037."
    )
    assert notification.locale == "fr"


def test_a_canadian_french_customer_gets_the_french_text_with_canadian_formats(linked, linked_api):
    templates_in(linked.bank, "fr", "transaction.posted")
    speaks(linked, "fr_CA")

    post(linked_api, coffee(linked))

    (notification,) = Notification.objects.all()
    assert spaces(notification.text).startswith("Vous avez payé 4,61 € chez Corner Coffee")
    assert notification.locale == "fr_CA"


@pytest.mark.parametrize("locale", ["es", "de_AT", "it"])
def test_without_a_template_in_their_language_text_and_formats_are_the_banks_default(
    linked, linked_api, locale
):
    speaks(linked, locale)  # the bank has English templates only

    post(linked_api, coffee(linked))

    (notification,) = Notification.objects.all()
    assert notification.text == "You paid €4.61 at Corner Coffee with your card •••• 4037."
    assert notification.locale == "en"  # what it is written in, for every later step


def test_a_fallback_fraud_alert_carries_its_quick_replies_in_the_texts_language(
    linked, linked_api, graph
):
    templates_in(linked.bank, "fr", "fraud.alert")
    speaks(linked, "es")  # no Spanish template: the bank's English one, English answers

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()

    (body,) = graph.sent
    assert body["message"]["text"].startswith("Security alert: a payment of -€899.00 at ")
    titles = [reply["title"] for reply in body["message"]["quick_replies"]]
    assert titles == ["Yes, it was me", "No, it wasn't me"]


def test_a_french_fraud_alert_has_french_answers(linked, linked_api, graph):
    templates_in(linked.bank, "fr", "fraud.alert")
    speaks(linked, "fr")

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()

    (body,) = graph.sent
    assert body["message"]["text"].startswith("Alerte de sécurité : un paiement de ")
    assert "899,00 € chez" in spaces(body["message"]["text"])
    titles = [reply["title"] for reply in body["message"]["quick_replies"]]
    assert titles == ["Oui, c'était moi", "Non, pas moi"]


def test_a_bank_whose_default_is_french_falls_back_to_french_formats(linked, linked_api):
    bank = linked.bank
    templates_in(bank, "fr", "transaction.posted")
    bank.default_locale = "fr"
    bank.save()
    speaks(linked, "en")  # English exists too: the customer's own language wins

    post(linked_api, coffee(linked))
    speaks(linked, "pt_BR")  # no Portuguese: the bank's French, with French formats
    post(linked_api, {**coffee(linked), "id": "evt-coffee-2"})

    english, portuguese = Notification.objects.order_by("pk")
    assert english.text == "You paid €4.61 at Corner Coffee with your card •••• 4037."
    assert spaces(portuguese.text) == (
        "Vous avez payé 4,61 € chez Corner Coffee avec votre carte •••• 4037."
    )
    assert portuguese.locale == "fr"
