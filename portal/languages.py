"""Which language a customer is spoken to in, and the formats that go with it.

bankside's own words (the customer pages, the bot's answers, the default templates) are
translated with Django's i18n into the languages of `settings.LANGUAGES`. A customer is
spoken to in the language of their locale when bankside (or, for an update, the bank's
template) has it; otherwise in the bank's default language. Numbers, dates and amounts
always follow the language of the text they sit in: a French customer reading an English
fallback sees "€4.61", never "4,61 €" inside an English sentence.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.dates import format_skeleton
from django.conf import settings
from django.utils import translation

from portal.rendering import babel_locale_for, normalise_locale


def language_of(locale: str) -> str:
    """`fr_CA` → `fr`, `pt-BR` → `pt`, `EN` → `en`."""
    return normalise_locale(locale).split("_", 1)[0]


def supported_languages() -> tuple[str, ...]:
    """The languages bankside's own words are translated into, in settings order."""
    return tuple(code for code, _ in settings.LANGUAGES)


def is_supported(locale: str) -> bool:
    return language_of(locale) in supported_languages()


def speaking_locale(locale: str, default_locale: str) -> str:
    """The locale bankside speaks in to a customer whose locale is `locale`, at a bank whose
    default is `default_locale`: theirs when bankside has its language, else the bank's
    default when bankside has that, else English. Text and formats both follow it."""
    for candidate in (locale, default_locale):
        if candidate and is_supported(candidate):
            return normalise_locale(candidate)
    return settings.LANGUAGE_CODE


def formatting_locale(customer_locale: str, text_locale: str) -> str:
    """The locale for the numbers and dates of a text written in `text_locale`, sent to a
    customer whose locale is `customer_locale`.

    The customer's own locale when the text is in their language (a `fr_CA` customer
    reading the bank's `fr` template gets Canadian formats); otherwise the text's locale,
    so a fallback text never carries another language's formats.
    """
    if language_of(customer_locale) == language_of(text_locale):
        return normalise_locale(customer_locale)
    return normalise_locale(text_locale)


_speaking: ContextVar[str] = ContextVar("speaking_locale", default="")


@contextmanager
def speaking(locale: str) -> Iterator[str]:
    """Translate bankside's words into `locale`'s language while inside, and format
    numbers and dates for `locale` itself (`current_locale`); gives the language."""
    supported = is_supported(locale)
    language = language_of(locale) if supported else settings.LANGUAGE_CODE
    token = _speaking.set(normalise_locale(locale) if supported else language)
    try:
        with translation.override(language):
            yield language
    finally:
        _speaking.reset(token)


def current_locale() -> str:
    """The locale `speaking` set, else the active language."""
    return _speaking.get() or translation.get_language() or settings.LANGUAGE_CODE


def format_date(value: dt.date | dt.datetime | None, locale: str) -> str:
    """A date as a person in `locale` writes it in a sentence: "6 December 2026",
    "6 décembre 2026", "6. Dezember 2026"."""
    if value is None:
        return ""
    day = value.date() if isinstance(value, dt.datetime) else value
    return babel_format_date(day, format="long", locale=babel_locale_for(locale))


def format_day_month(value: dt.date | dt.datetime, locale: str) -> str:
    """A short day and month for a list: "06/12", "06.12.", "12/6" (US English)."""
    day = value.date() if isinstance(value, dt.datetime) else value
    return format_skeleton("ddMM", day, locale=babel_locale_for(locale))


def format_datetime(value: dt.datetime | None, locale: str, tzinfo: dt.tzinfo | None = None) -> str:
    """A moment with its date and time, in `locale`: "6 Dec 2026, 14:05"."""
    if value is None:
        return ""
    return babel_format_datetime(
        value, format="medium", tzinfo=tzinfo, locale=babel_locale_for(locale)
    )
