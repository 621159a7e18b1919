"""bankside's translations: complete, compiled, and the languages it speaks chosen as the
bank and customer would expect."""

from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from django.conf import settings

from portal.languages import formatting_locale, speaking_locale

LOCALE_DIR = Path(settings.BASE_DIR) / "locale"
TRANSLATED = [code for code, _ in settings.LANGUAGES if code != settings.LANGUAGE_CODE]


def catalog(language: str, kind: str):
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"django.{kind}"
    with path.open("rb") as handle:
        return read_po(handle) if kind == "po" else read_mo(handle)


@pytest.mark.parametrize("language", TRANSLATED)
def test_every_message_is_translated(language):
    untranslated = [
        m.id
        for m in catalog(language, "po")
        if m.id and (m.fuzzy or not all(m.string if isinstance(m.string, tuple) else [m.string]))
    ]
    assert untranslated == []


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_committed_compiled_catalog_is_the_translation(language):
    """A fresh machine reads the committed .mo files (no gettext needed): they must say
    what the .po files say (`make messages` compiles them)."""
    written = dict(_entries(catalog(language, "po")))
    compiled = dict(_entries(catalog(language, "mo")))
    assert compiled == written


def _entries(messages):
    def plain(value):
        return tuple(value) if isinstance(value, (list, tuple)) else value

    return [(plain(m.id), plain(m.string)) for m in messages if m.id]


@pytest.mark.parametrize(
    ("customer", "bank_default", "spoken"),
    [
        ("fr", "en", "fr"),
        ("fr_CA", "en", "fr_CA"),
        ("de-AT", "en", "de_AT"),
        ("it", "es", "es"),
        ("it", "ja", "en"),
        ("", "de", "de"),
    ],
)
def test_a_customer_is_spoken_to_in_their_language_else_the_banks(customer, bank_default, spoken):
    assert speaking_locale(customer, bank_default) == spoken


@pytest.mark.parametrize(
    ("customer", "text", "formats"),
    [("fr_CA", "fr", "fr_CA"), ("fr", "en", "en"), ("es", "en_GB", "en_GB"), ("de", "de", "de")],
)
def test_formats_follow_the_language_of_the_text(customer, text, formats):
    assert formatting_locale(customer, text) == formats
