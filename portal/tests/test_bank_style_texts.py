"""The default transaction texts read as a bank writes them, by the sign and kind of each
transaction; a bank's own text is left as it wrote it."""

import pytest

from portal.rendering import render
from portal.template_defaults import DEFAULT_TEMPLATES

TXN = "transaction.posted"


def spaces(text: str) -> str:
    return text.replace("\u202f", " ").replace("\xa0", " ")


def text_for(data: dict, language: str = "en", locale: str | None = None) -> str:
    values = {"customer_first_name": "Ana", "last4": "4321", "currency": "EUR", **data}
    body = DEFAULT_TEMPLATES[language][TXN]
    return spaces(render(body, TXN, values, locale=locale or language))


CARD = {"card_last4": "4037", "last4": "4037"}

CASES = [
    (
        "a card payment",
        {"amount": "-4.61", "merchant": "Corner Coffee", "description": "Coffee", **CARD},
        {
            "en": "You paid €4.61 at Corner Coffee with your card •••• 4037.",
            "fr": "Vous avez payé 4,61 € chez Corner Coffee avec votre carte •••• 4037.",
            "de": "Sie haben 4,61 € bei Corner Coffee mit Ihrer Karte •••• 4037 bezahlt.",
            "es": "Ha pagado 4,61 € en Corner Coffee con su tarjeta •••• 4037.",
        },
    ),
    (
        "money arriving",
        {"amount": "250.00", "description": "Salary"},
        {
            "en": "€250.00 arrived in your account •••• 4321: Salary.",
            "fr": "Vous avez reçu 250,00 € sur votre compte •••• 4321 : Salary.",
            "de": "Sie haben 250,00 € auf Ihr Konto •••• 4321 erhalten: Salary.",
            "es": "Ha recibido 250,00 € en su cuenta •••• 4321: Salary.",
        },
    ),
    (
        "a direct debit",
        {"amount": "-45.00", "description": "Electricity"},
        {
            "en": "€45.00 left your account •••• 4321: Electricity.",
            "fr": "Débit de 45,00 € sur votre compte •••• 4321 : Electricity.",
            "de": "Abbuchung von 45,00 € von Ihrem Konto •••• 4321: Electricity.",
            "es": "Cargo de 45,00 € en su cuenta •••• 4321: Electricity.",
        },
    ),
    (
        "a refund to a card",
        {"amount": "12.00", "merchant": "Bookshop Lyon", "description": "Refund", **CARD},
        {
            "en": "Bookshop Lyon refunded €12.00 to your card •••• 4037.",
            "fr": "Bookshop Lyon vous a remboursé 12,00 € sur votre carte •••• 4037.",
            "de": "Bookshop Lyon hat Ihnen 12,00 € auf Ihre Karte •••• 4037 erstattet.",
            "es": "Bookshop Lyon le ha devuelto 12,00 € en su tarjeta •••• 4037.",
        },
    ),
    (
        "a cash withdrawal",
        {"amount": "-100", "description": "ATM Gare du Nord", "category": "ATM", **CARD},
        {
            "en": "You withdrew €100.00 in cash with your card •••• 4037.",
            "fr": "Vous avez retiré 100,00 € en espèces avec votre carte •••• 4037.",
            "de": "Sie haben 100,00 € in bar mit Ihrer Karte •••• 4037 abgehoben.",
            "es": "Ha retirado 100,00 € en efectivo con su tarjeta •••• 4037.",
        },
    ),
]


@pytest.mark.parametrize("language", ["en", "fr", "de", "es"])
@pytest.mark.parametrize(("kind", "data", "expected"), CASES, ids=[c[0] for c in CASES])
def test_the_default_text_follows_the_kind_of_the_transaction(kind, data, expected, language):
    assert text_for(data, language) == expected[language]


def test_a_payment_from_an_account_names_the_merchant():
    data = {"amount": "-4.61", "merchant": "Corner Coffee", "description": "Coffee"}
    assert text_for(data) == "You paid €4.61 at Corner Coffee from your account •••• 4321."


def test_a_refund_by_its_category_without_a_merchant_shows_the_description():
    data = {"amount": "8.90", "description": "Returned goods", "category": "refund"}
    assert text_for(data) == "You received a refund of €8.90 on •••• 4321: Returned goods."


def test_numbers_in_the_description_are_still_masked():
    data = {"amount": "250.00", "description": "Transfer from 4929 1234 5678 4821"}
    assert text_for(data) == "€250.00 arrived in your account •••• 4321: Transfer from •••• 4821."


def test_a_transaction_of_nothing_keeps_the_plain_default():
    text = text_for({"amount": "0.00", "description": "Card check"})
    assert text == (
        "Hi Ana, a transaction of €0.00 was posted on your card or account •••• 4321: Card check."
    )


def test_the_earlier_french_default_a_bank_kept_reads_the_new_way():
    earlier = (
        "Bonjour {customer_first_name}, une opération de {amount} a été passée sur "
        "votre carte ou compte •••• {last4} : {description}."
    )
    data = {"amount": "-4.61", "merchant": "Corner Coffee", "description": "x", **CARD}
    values = {"customer_first_name": "Ana", "currency": "EUR", **data}
    assert spaces(render(earlier, TXN, values, locale="fr")) == (
        "Vous avez payé 4,61 € chez Corner Coffee avec votre carte •••• 4037."
    )


def test_a_banks_own_text_is_left_as_written():
    own = "{customer_first_name}: {amount} ({description})"
    values = {"customer_first_name": "Ana", "currency": "EUR", "amount": "-4.61"}
    assert render(own, TXN, {**values, "description": "Coffee"}, locale="en") == (
        "Ana: -€4.61 (Coffee)"
    )


# The account's name, where the bank gave it one

NAMED = [
    (
        {"amount": "250.00", "description": "Salary"},
        {
            "en": "€250.00 arrived in your Everyday account •••• 4321: Salary.",
            "fr": "Vous avez reçu 250,00 € sur votre compte Everyday •••• 4321 : Salary.",
            "de": "Sie haben 250,00 € auf Ihr Konto Everyday •••• 4321 erhalten: Salary.",
            "es": "Ha recibido 250,00 € en su cuenta Everyday •••• 4321: Salary.",
        },
    ),
    (
        {"amount": "-45.00", "description": "Electricity"},
        {"en": "€45.00 left your Everyday account •••• 4321: Electricity."},
    ),
    (
        {"amount": "-20.00", "merchant": "Corner Shop", "description": "x"},
        {"en": "You paid €20.00 at Corner Shop from your Everyday account •••• 4321."},
    ),
    (
        {"amount": "12.00", "merchant": "Bookshop Lyon", "category": "refund"},
        {"en": "Bookshop Lyon refunded €12.00 to your Everyday account •••• 4321."},
    ),
    (
        {"amount": "-50.00", "category": "atm"},
        {"en": "You withdrew €50.00 in cash from your Everyday account •••• 4321."},
    ),
]


@pytest.mark.parametrize(
    ("data", "language", "expected"),
    [(data, language, text) for data, texts in NAMED for language, text in texts.items()],
)
def test_an_account_the_bank_named_is_called_by_its_name(data, language, expected):
    assert text_for({**data, "account_name": "Everyday"}, language) == expected


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        ("Everyday Account", "en", "€250.00 arrived in your Everyday account •••• 4321: x."),
        ("Compte courant", "fr", "Vous avez reçu 250,00 € sur votre compte courant •••• 4321 : x."),
        ("Account", "en", "€250.00 arrived in your account •••• 4321: x."),
        ("", "en", "€250.00 arrived in your account •••• 4321: x."),
    ],
)
def test_the_word_for_account_is_not_said_twice(name, language, expected):
    data = {"amount": "250.00", "description": "x", "account_name": name}
    assert text_for(data, language) == expected


def test_a_card_payment_names_the_card_not_the_account():
    data = {"amount": "-4.61", "merchant": "Corner Coffee", "account_name": "Everyday", **CARD}
    assert text_for(data) == "You paid €4.61 at Corner Coffee with your card •••• 4037."


def test_a_name_that_looks_like_a_card_number_is_masked():
    data = {"amount": "250.00", "description": "x", "account_name": "4929 1234 5678 4821"}
    assert "4929 1234" not in text_for(data)
