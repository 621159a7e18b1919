"""The renderer's fast paths give exactly what the plain rules give, on awkward input."""

import sys
import unicodedata
from decimal import Decimal

import pytest
from babel import Locale
from babel.numbers import format_currency, format_decimal

from portal.events import EventType
from portal.rendering import (
    TemplateError,
    babel_locale_for,
    clean_text,
    format_money,
    mask_numbers,
    placeholders_in,
    render,
    to_platform,
)
from portal.template_defaults import DEFAULT_TEMPLATES

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def cleaned_by_the_rule(ch: str) -> str:
    """One character as `clean_text` documents it: breaks kept, controls and bidi dropped."""
    if ch in "\r\u2028\u2029":
        return "\n"
    if ch == "\t":
        return " "
    if ch == "\n":
        return ch
    return "" if unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS else ch


def test_every_character_is_cleaned_as_the_rule_says():
    wrong = [
        f"U+{code:04X}"
        for code in range(sys.maxunicode + 1)
        if clean_text(chr(code)) != cleaned_by_the_rule(chr(code))
    ]

    assert wrong == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zoë\xa0Müller 1\u202f234,50 €", "Zoë\xa0Müller 1\u202f234,50 €"),
        ("a\r\nb\rc\u2028d\u2029e\tf", "a\nb\nc\nd\ne f"),
        ("\n\r\n\r\r", "\n\n\n\n"),
        ("line\nbreak", "line\nbreak"),
        ("x\x00\x1b\x7f\x85\x9fy", "xy"),
        ("\x0b\x0c\x1c\x1d\x1e\x1f|\x85|", "||"),
        ("\u202eabc\u2066def\u2069", "abcdef"),
        # Other format characters are not controls: they stay.
        ("\u200f\u200b\ufeff\xad", "\u200f\u200b\ufeff\xad"),
        ("😀中文 ٤٥", "😀中文 ٤٥"),
        ("", ""),
    ],
)
def test_clean_text_keeps_clean_text_and_cleans_the_rest(text, expected):
    assert clean_text(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Card 4929 1234 5678 4821", "Card •••• 4821"),
        ("4929\xa01234\xa05678\xa04821", "•••• 4821"),
        ("4929\u202f1234\u202f5678\u202f4821", "•••• 4821"),
        ("IBAN PT50 0002 0123 1234 5678 9015 4", "IBAN PT•••• 0154"),
        ("tel. 0800.123.456", "tel. •••• 3456"),
        ("1234567", "1234567"),
        ("12345678", "•••• 5678"),
        ("1-2-3-4-5-6-7-8", "•••• 5678"),
        ("1--2345678", "1--2345678"),
        ("٤٩٢٩١٢٣٤٥٦٧٨", "•••• ٥٦٧٨"),
        ("ref 12 34 56 78 and 9 8 7 6 5 4 3 2 1", "ref •••• 5678 and •••• 4321"),
    ],
)
def test_digit_runs_are_masked(text, expected):
    assert mask_numbers(text) == expected


@pytest.mark.parametrize(
    ("locale", "currency", "amount", "expected"),
    [
        ("en", "EUR", "-1162.40", "-€1,162.40"),
        ("en", "JPY", "1234.5", "¥1,234"),
        ("en", "KWD", "1.2345", "KWD1.234"),
        ("en", "USD", "-0", "-$0.00"),
        ("en", "eur", 7, "€7.00"),
        ("en", None, "1234.5", "1,234.50"),
        ("en", "EURO", "-0.005", "-0.00"),
        ("en", "ZZZ", "1.5", "ZZZ1.50"),
        ("fr", "EUR", "-1162.40", "-1\u202f162,40\xa0€"),
        ("fr", "JPY", "1234.5", "1\u202f234\xa0JPY"),
        ("fr", "USD", "-0", "-0,00\xa0$US"),
        ("fr", None, "1234.5", "1\u202f234,50"),
        ("fr-CA", "USD", "-0", "-0,00\xa0$\xa0US"),
        ("de", "CHF", "1234567.891", "1.234.567,89\xa0CHF"),
        ("de_CH", "EUR", "-1162.40", "EUR-1\u2019162.40"),
        ("de_CH", "CHF", "1234567.891", "CHF\xa01\u2019234\u2019567.89"),
        ("pt-br", "EUR", "-1162.40", "-€\xa01.162,40"),
        ("ja", "JPY", "1234.5", "￥1,234"),
        ("ar_EG", "KWD", "1.2345", "\u200f1.234\xa0د.ك.\u200f"),
        ("hi", "INR", "12345678.9", "₹1,23,45,678.90"),
        ("xx", "EUR", "-1162.40", "-€1,162.40"),
    ],
)
def test_money_is_formatted_the_same_every_time(locale, currency, amount, expected):
    assert format_money(amount, currency, locale=locale) == expected
    assert format_money(amount, currency, locale=locale) == expected


LOCALES = ["en", "fr", "de", "de_CH", "fr_CA", "pt_BR", "ja", "ar_EG", "fa", "he", "hi", "en_IN"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CHF", "KWD", "CLF", "INR", "XAF", "ZZZ"]
AMOUNTS = [
    "0",
    "-0",
    "0.005",
    "0.015",
    "-42.10",
    "1234.5",
    "-1E-7",
    "2.675",
    "999999999999.999",
    "12345678901234567890.123",
    "1E+22",
    "1E+30",  # more digits than Decimal's precision: babel cannot format it
]


def outcome(format_, *args, **kwargs):
    try:
        return format_(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


@pytest.mark.parametrize("locale", LOCALES)
def test_money_is_what_babel_formats(locale):
    babel_locale = Locale.parse(locale)
    for amount in AMOUNTS:
        for currency in CURRENCIES:
            expected = outcome(format_currency, Decimal(amount), currency, locale=babel_locale)
            got = outcome(format_money, amount, currency, locale=locale)
            assert got == expected, (amount, currency)
        plain = outcome(format_decimal, Decimal(amount), format="#,##0.00", locale=babel_locale)
        assert outcome(format_money, amount, "", locale=locale) == plain, amount


def test_money_in_every_locale_babel_knows_is_what_babel_formats():
    from babel.localedata import locale_identifiers

    wrong = []
    for identifier in locale_identifiers():
        babel_locale = Locale.parse(identifier)
        for amount in ("-1234567.891", "0.005", "-0"):
            for currency in ("EUR", "JPY", "KWD"):
                expected = outcome(format_currency, Decimal(amount), currency, locale=babel_locale)
                if outcome(format_money, amount, currency, locale=identifier) != expected:
                    wrong.append((identifier, amount, currency))
            plain = outcome(format_decimal, Decimal(amount), format="#,##0.00", locale=babel_locale)
            if outcome(format_money, amount, None, locale=identifier) != plain:
                wrong.append((identifier, amount, None))
    assert wrong == []


def test_a_locale_is_found_the_same_every_time():
    assert babel_locale_for("fr-CA") == Locale.parse("fr_CA")
    assert babel_locale_for("fr-CA") == Locale.parse("fr_CA")
    assert babel_locale_for("xx_YY") == Locale.parse("en")
    assert babel_locale_for("") == Locale.parse("en")


def balance_values(**extra):
    return {
        "customer_first_name": "Zoë",
        "last4": "4821",
        "currency": "EUR",
        "balance": "1204.50",
        "available": "-1162.40",
        **extra,
    }


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        (
            "en",
            "Hi Zoë, the balance of your account •••• 4821 is now €1,204.50 "
            "(-€1,162.40 available).",
        ),
        (
            "fr",
            "Bonjour Zoë, le solde de votre compte •••• 4821 est maintenant de "
            "1\u202f204,50\xa0€ (-1\u202f162,40\xa0€ disponible).",
        ),
        (
            "de",
            "Hallo Zoë, der Kontostand Ihres Kontos •••• 4821 beträgt jetzt "
            "1.204,50\xa0€ (-1.162,40\xa0€ verfügbar).",
        ),
    ],
)
def test_a_default_template_renders_the_same_every_time(language, expected):
    template = DEFAULT_TEMPLATES[language][EventType.BALANCE_UPDATED]

    first = render(template, EventType.BALANCE_UPDATED, balance_values(), locale=language)
    again = render(template, EventType.BALANCE_UPDATED, balance_values(), locale=language)

    assert first == again == expected


def test_hostile_values_are_cleaned_and_masked_in_a_template_already_used():
    template = "Hi {customer_first_name}\r\n{merchant}: {description} {amount}"
    values = {
        "customer_first_name": "\u202eAna\x00",
        "merchant": "Shop\u2028\t4929\xa01234\xa05678\xa04821",
        "description": "ok",
        "amount": "12",
        "currency": "GBP",
    }
    render(template, EventType.TRANSACTION_POSTED, {"merchant": "x"}, locale="en")

    text = render(template, EventType.TRANSACTION_POSTED, values, locale="en")

    assert text == "Hi Ana\nShop •••• 4821: ok £12.00"


def test_a_bad_template_is_refused_every_time():
    for _ in range(2):
        with pytest.raises(TemplateError) as refused:
            render("Hi {name} }", EventType.TRANSACTION_POSTED, {}, locale="en")
        assert refused.value.messages == [
            "A lone “}” at character 11: write placeholders as {name}, and “{{” or “}}” "
            "for a literal brace."
        ]
    for _ in range(2):
        with pytest.raises(TemplateError, match=r"Unknown placeholder \{carrier\}"):
            render("{carrier} {amount}", EventType.TRANSACTION_POSTED, {}, locale="en")


def test_parsing_a_template_again_gives_fresh_lists():
    used = placeholders_in("{amount} {merchant} {amount}")
    used.append("changed")

    assert placeholders_in("{amount} {merchant} {amount}") == ["amount", "merchant"]
    assert to_platform("{amount} {merchant} {amount}").param_names == ("amount", "merchant")
