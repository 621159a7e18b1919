import pytest

from portal.events import PLACEHOLDER_HELP, PLACEHOLDERS, SAMPLE_DATA, EventType
from portal.rendering import (
    BUTTON_LIMIT,
    TEXT_LIMIT,
    TemplateError,
    normalise_locale,
    placeholders_in,
    render,
    template_errors,
    to_platform,
    utility_params,
)
from portal.template_defaults import DEFAULT_TEMPLATES, default_template_text

TXN = EventType.TRANSACTION_POSTED
BALANCE = EventType.BALANCE_UPDATED


def txn(**data):
    return {"currency": "EUR", "amount": "1234.5", "merchant": "Café Lumière", **data}


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "€1,234.50"), ("fr", "1\u202f234,50\xa0€"), ("de", "1.234,50\xa0€")],
)
def test_money_is_formatted_for_the_customers_locale(locale, expected):
    assert render("{amount}", TXN, txn(), locale=locale) == expected


def test_money_uses_the_events_currency_and_keeps_its_sign():
    text = render("{amount}", TXN, txn(amount=-42, currency="GBP"), locale="en")

    assert text == "-£42.00"


def test_a_template_may_only_use_what_its_event_carries():
    assert "Unknown placeholder {available}" in " ".join(
        template_errors("Balance: {available}", TXN)
    )
    assert "Unknown placeholder {location}" in " ".join(
        template_errors("At {location}", EventType.SHIPMENT_UPDATED)
    )


def test_an_unknown_locale_falls_back_to_its_language_then_english():
    assert render("{amount}", TXN, txn(), locale="fr-CA") == render(
        "{amount}", TXN, txn(), locale="fr_CA"
    )
    assert render("{amount}", TXN, txn(), locale="xx") == "€1,234.50"


def test_money_without_a_usable_currency_is_a_plain_number():
    assert render("{amount}", TXN, txn(currency="euros"), locale="en") == "1,234.50"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "12abc", True, ["1"]])
def test_an_unusable_amount_renders_as_nothing(bad):
    assert render("[{amount}]", TXN, txn(amount=bad), locale="en") == "[]"


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Card 4929 1234 5678 4821 contactless", "Card •••• 4821 contactless"),
        ("Card 4929123456784821", "Card •••• 4821"),
        ("Account 12-34-56 87654321", "Account •••• 4321"),
        ("IBAN GB82WEST12345698765432", "IBAN GB82WEST•••• 5432"),
        ("Card 4929.1234.5678.4821", "Card •••• 4821"),
        ("Ref 1234567 (seven digits)", "Ref 1234567 (seven digits)"),
    ],
)
def test_digit_heavy_text_in_event_data_shows_only_the_last_4_digits(description, expected):
    assert render("{description}", TXN, txn(description=description), locale="en") == expected


def test_masking_applies_to_every_text_field_not_only_descriptions():
    data = txn(merchant="Shop 4000123412341234", customer_first_name="5555444433332222")

    text = render("{customer_first_name} {merchant}", TXN, data, locale="en")

    assert text == "•••• 2222 Shop •••• 1234"


def test_last4_never_shows_more_than_four_digits_even_given_a_full_number():
    assert render("{last4}", TXN, txn(last4="4929 1234 5678 4821"), locale="en") == "4821"


def test_the_banks_own_template_text_is_not_masked():
    text = render("Call us on 0800 123 45678. {merchant}", TXN, txn(), locale="en")

    assert text == "Call us on 0800 123 45678. Café Lumière"


def test_control_and_bidi_characters_are_stripped_but_line_breaks_kept():
    data = txn(merchant="Evil\x00\x1b[31m\u202eShop\u2066", description="two\r\nlines\tx")

    text = render("Hi\r\n{merchant}\x07 {description}", TXN, data, locale="en")

    assert text == "Hi\nEvil[31mShop two lines x"


def test_nothing_is_html_escaped():
    assert render("{merchant} <b>", TXN, txn(merchant="A&B <Ltd>"), locale="en") == "A&B <Ltd> <b>"


def test_a_missing_value_renders_as_nothing():
    assert render("Hi {customer_first_name}!", TXN, {}, locale="en") == "Hi !"


def test_output_stays_under_2000_characters_and_640_for_a_button():
    data = txn(description="word " * 1000)

    text = render("{description}", TXN, data, locale="en")
    button = render("{description}", TXN, data, locale="en", button=True)

    assert len(text) == TEXT_LIMIT == 1999 and text.endswith("…")
    assert len(button) == BUTTON_LIMIT == 640 and button.endswith("…")


def test_double_braces_are_literal_braces():
    assert render("{{code}} {merchant}", TXN, txn(), locale="en") == "{code} Café Lumière"


def test_render_refuses_a_placeholder_the_event_does_not_offer():
    with pytest.raises(TemplateError, match="carrier"):
        render("{carrier}", BALANCE, {}, locale="en")


def test_template_errors_name_the_unknown_placeholders_and_the_allowed_ones():
    errors = template_errors("Hi {name}, {balance} {carrier}", BALANCE)

    assert errors == [
        "Unknown placeholders {name}, {carrier}. For balance updates you can use: "
        "{customer_first_name}, {last4}, {currency}, {account_name}, {balance}, {available}."
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "Write the message text"),
        ("Hi { there", "lone “{”"),
        ("Hi } there", "lone “}”"),
        ("Hi {Amount}", "not a placeholder name"),
        ("x" * 2001, "at most 2000"),
        ("{description}" * 150, "Messenger allows 1999"),
    ],
)
def test_template_errors_explain_what_is_wrong(text, fragment):
    errors = template_errors(text, TXN)

    assert errors and fragment in " ".join(errors)


def test_placeholders_are_listed_once_in_order_of_use():
    assert placeholders_in("{amount} {merchant} {amount}") == ["amount", "merchant"]


def test_to_platform_numbers_placeholders_and_reuses_a_repeated_one():
    platform = to_platform("Hi {customer_first_name}: {amount} at {merchant} ({amount}) {{x}}")

    assert platform.body == "Hi {{1}}: {{2}} at {{3}} ({{2}}) {x}"
    assert platform.param_names == ("customer_first_name", "amount", "merchant")


def test_utility_params_are_formatted_masked_and_never_empty():
    params = utility_params(
        ["amount", "description", "merchant"],
        TXN,
        txn(description="card 4929123456784821", merchant=""),
        locale="de",
    )

    assert params == ["1.234,50\xa0€", "card •••• 4821", "-"]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("pt-br", "pt_BR"), ("EN", "en"), ("zh_hant", "zh_Hant"), ("fr_CA", "fr_CA"), ("", "")],
)
def test_locales_have_one_spelling(given, expected):
    assert normalise_locale(given) == expected


@pytest.mark.parametrize("event_type", EventType.values)
def test_the_sample_data_fills_every_placeholder_of_its_event(event_type):
    assert set(PLACEHOLDERS[event_type]) <= set(SAMPLE_DATA[event_type])
    assert set(PLACEHOLDERS[event_type]) <= set(PLACEHOLDER_HELP)


@pytest.mark.parametrize("language", sorted(DEFAULT_TEMPLATES))
@pytest.mark.parametrize("event_type", EventType.values)
def test_every_default_template_is_valid(language, event_type):
    assert template_errors(DEFAULT_TEMPLATES[language][event_type], event_type) == []


def test_a_language_without_defaults_starts_from_english():
    assert default_template_text(TXN, "it") == DEFAULT_TEMPLATES["en"][TXN]
    assert default_template_text(TXN, "fr-CA") == DEFAULT_TEMPLATES["fr"][TXN]


def test_the_defaults_are_translated_into_every_language_bankside_speaks():
    assert sorted(DEFAULT_TEMPLATES) == ["de", "en", "es", "fr"]
    assert default_template_text(TXN, "es").startswith("Hola, {customer_first_name}: ")
    assert default_template_text(TXN, "de_AT").startswith("Hallo {customer_first_name}, ")
