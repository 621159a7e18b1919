"""Message templates to Messenger text: the one renderer the preview and delivery share.

A template is plain text with `{placeholder}` fields (`{{` and `}}` for literal braces).
Rendering formats money for the customer's locale (Babel), shows card and account
numbers as their last 4 digits at most, strips control characters and keeps within
Messenger's length limits. Nothing is HTML-escaped: Messenger shows plain text.

Masking does not trust the caller. Every value from event data that is not money is
scanned, and any run of 8 or more digits (even split by spaces, dashes or dots) becomes
`•••• 1234`; `{last4}` is cut to its last 4 digits. Only the bank's own template text
is left as written (it may hold a support phone number).
"""

import copy
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from babel import Locale, UnknownLocaleError
from babel.numbers import (
    NumberPattern,
    format_currency,
    get_currency_precision,
    get_currency_symbol,
    get_decimal_quantum,
    get_decimal_symbol,
    get_group_symbol,
    parse_pattern,
)
from django.core.exceptions import ValidationError

from core.cards import holds_card_number
from messenger.builders import BUTTON_TEXT_MAX, TEXT_MAX
from portal.events import MONEY_PLACEHOLDERS, PLACEHOLDERS, SAMPLE_DATA, EventType
from portal.template_defaults import bank_style_transaction

TEXT_LIMIT = TEXT_MAX - 1  # Messenger: text must be under 2000 characters
BUTTON_LIMIT = BUTTON_TEXT_MAX  # button template text: at most 640
TEMPLATE_MAX_LENGTH = 2000
MASK = "••••"
ELLIPSIS = "…"

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_DIGIT_RUN = re.compile(r"\d(?:[ .\-\u00a0\u202f]?\d){7,}")
_WHITESPACE = re.compile(r"\s+")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Embedding, override and isolate controls can make text read differently than it is.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Every character `clean_text` changes or drops: the control characters but the line
# feed (category Cc, which Unicode promises will never gain or lose a character), the
# line and paragraph separators and the bidirectional controls. Text without any is clean.
_UNCLEAN = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_PLAIN_NUMBER = parse_pattern("#,##0.00")


class TemplateError(ValueError):
    """The template text cannot be rendered: bad braces or an unknown placeholder."""

    def __init__(self, messages: Sequence[str]) -> None:
        self.messages = list(messages)
        super().__init__(" ".join(self.messages))


@dataclass(frozen=True)
class PlatformTemplate:
    """A template in Meta's form: `{{1}}`… in `body`, and which placeholder each number is."""

    body: str
    param_names: tuple[str, ...]


# Parsing and validation


def _parse(text: str) -> tuple[tuple[str, str], ...]:
    """The template as ("text", literal) and ("field", name) parts; TemplateError if bad."""
    if type(text) is str:
        return _parse_once(text)
    return _parse_text(text)


# Each bank has a template per event type and language, and a batch of events uses a
# few of them again and again.
@lru_cache(maxsize=512)
def _parse_once(text: str) -> tuple[tuple[str, str], ...]:
    return _parse_text(text)


@lru_cache(maxsize=512)
def _fields(text: str) -> frozenset[str]:
    return frozenset(value for kind, value in _parse_once(text) if kind == "field")


def _parse_text(text: str) -> tuple[tuple[str, str], ...]:
    parts: list[tuple[str, str]] = []
    errors: list[str] = []
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() > position:
            parts.append(("text", text[position : match.start()]))
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(("text", token[0]))
        elif token in ("{", "}"):
            errors.append(
                f"A lone “{token}” at character {match.start() + 1}: write placeholders as "
                "{name}, and “{{” or “}}” for a literal brace."
            )
        else:
            name = match.group(1).strip()
            if not _NAME.match(name):
                errors.append(f"“{token}” is not a placeholder name.")
            else:
                parts.append(("field", name))
        position = match.end()
    if position < len(text):
        parts.append(("text", text[position:]))
    if errors:
        raise TemplateError(errors)
    return tuple(parts)


def placeholders_in(text: str) -> list[str]:
    """The placeholders `text` uses, in order of first use, each once."""
    seen: dict[str, None] = {}
    for kind, value in _parse(text):
        if kind == "field":
            seen.setdefault(value, None)
    return list(seen)


# Bank staff write what customers read: a card number there is refused, not masked, so
# the bank sees it and decides what the text should say instead.
CARD_NUMBER_REFUSED = (
    "This text holds a full card number. Customers may see at most its last 4 digits: "
    "write only those."
)


def template_errors(text: str, event_type: str, *, limit: int = TEXT_LIMIT) -> list[str]:
    """Everything wrong with `text` as a template for `event_type`, for a form to show."""
    if event_type not in PLACEHOLDERS:
        return [f"Unknown event type “{event_type}”."]
    if not text.strip():
        return ["Write the message text."]
    if len(text) > TEMPLATE_MAX_LENGTH:
        return [f"The template is {len(text)} characters; at most {TEMPLATE_MAX_LENGTH}."]
    if holds_card_number(text):
        return [CARD_NUMBER_REFUSED]
    try:
        used = placeholders_in(text)
    except TemplateError as exc:
        return exc.messages
    allowed = PLACEHOLDERS[event_type]
    unknown = [name for name in used if name not in allowed]
    if unknown:
        names = ", ".join(f"{{{name}}}" for name in unknown)
        label = EventType(event_type).label.lower()
        return [
            f"Unknown placeholder{'s' if len(unknown) > 1 else ''} {names}. "
            f"For {label} you can use: {', '.join(f'{{{n}}}' for n in allowed)}."
        ]
    length = len(_render_parts(_parse(text), SAMPLE_DATA[event_type], locale="en"))
    if length > limit:
        return [
            f"With the sample data this message is {length} characters; Messenger allows "
            f"{limit}. Shorten it."
        ]
    return []


def validate_template(text: str, event_type: str, *, field: str = "body") -> None:
    """Raise ValidationError keyed by `field` when `text` is not a usable template."""
    errors = template_errors(text, event_type)
    if errors:
        raise ValidationError({field: errors})


# Rendering


def render(
    template_text: str,
    event_type: str,
    data: Mapping[str, object],
    *,
    locale: str,
    button: bool = False,
) -> str:
    """The message a customer sees for this event: formatted, masked and within limits.

    `data` is the event's data plus what the delivery engine knows about the customer
    and account (`customer_first_name`, `last4`, `currency`). A placeholder missing
    from it renders as nothing. `button=True` keeps to the 640-character limit of a
    button template's text. Raises TemplateError for a template that does not parse or
    uses a placeholder `event_type` does not offer. A transaction template the bank
    left as the default is written by the transaction's kind (`bank_style_transaction`).
    """
    if event_type == EventType.TRANSACTION_POSTED:
        # A default transaction text left as it was: the words of this transaction's kind.
        styled = bank_style_transaction(template_text, data)
        if styled is not None:
            template_text, data = styled
    parts = _parse(template_text)
    allowed = PLACEHOLDERS.get(event_type)
    if allowed is None:
        raise TemplateError([f"Unknown event type “{event_type}”."])
    if type(template_text) is str:
        used = _fields(template_text)
    else:
        used = frozenset(value for kind, value in parts if kind == "field")
    unknown = sorted(used.difference(allowed))
    if unknown:
        raise TemplateError([f"Unknown placeholder {{{name}}}." for name in unknown])
    text = _render_parts(parts, data, locale=locale)
    return truncate(text, BUTTON_LIMIT if button else TEXT_LIMIT)


def _render_parts(parts: Iterable[tuple[str, str]], data: Mapping[str, object], *, locale) -> str:
    pieces = [
        value if kind == "text" else placeholder_value(value, data, locale=locale)
        for kind, value in parts
    ]
    return clean_text("".join(pieces)).strip()


def placeholder_value(name: str, data: Mapping[str, object], *, locale: str) -> str:
    """One placeholder's text: money formatted for `locale`, anything else cleaned and masked."""
    raw = data.get(name)
    if name in MONEY_PLACEHOLDERS:
        return format_money(raw, data.get("currency"), locale=locale)
    if raw is None or isinstance(raw, (dict, list, tuple, set)):
        return ""
    text = _WHITESPACE.sub(" ", clean_text(str(raw))).strip()
    if name == "last4":
        return "".join(ch for ch in text if ch.isdigit())[-4:]
    if name == "currency":
        return text.upper() if _CURRENCY.match(text.upper()) else ""
    return mask_numbers(text)


def utility_params(
    param_names: Sequence[str], event_type: str, data: Mapping[str, object], *, locale: str
) -> list[str]:
    """The body parameters of a utility template message, in the registered order."""
    allowed = PLACEHOLDERS.get(event_type, ())
    unknown = [name for name in param_names if name not in allowed]
    if unknown:
        raise TemplateError([f"Unknown placeholder {{{name}}}." for name in unknown])
    # Meta refuses empty parameters; a dash keeps the sentence readable.
    return [placeholder_value(name, data, locale=locale) or "-" for name in param_names]


def to_platform(template_text: str) -> PlatformTemplate:
    """Convert `{name}` fields to Meta's `{{1}}`, `{{2}}`… (a repeated name keeps its number)."""
    numbers: dict[str, int] = {}
    body = []
    for kind, value in _parse(template_text):
        if kind == "text":
            body.append(value)
        else:
            number = numbers.setdefault(value, len(numbers) + 1)
            body.append(f"{{{{{number}}}}}")
    return PlatformTemplate(body="".join(body).strip(), param_names=tuple(numbers))


# Formatting and cleaning


def format_money(value: object, currency: object, *, locale: str) -> str:
    """`value` as money in `currency` for `locale` ("€1,204.50", "1 204,50 €"); "" if unusable."""
    amount = to_decimal(value)
    if amount is None:
        return ""
    babel_locale = babel_locale_for(locale)
    code = str(currency or "").strip().upper()
    if _CURRENCY.match(code):
        pattern = _currency_pattern(babel_locale, code)
        if pattern is None:
            return format_currency(amount, code, locale=babel_locale)
        return pattern(amount)
    # What babel's format_decimal(amount, format="#,##0.00") does, parsing the pattern once.
    return _plain_number(babel_locale)(amount)


@lru_cache(maxsize=256)
def _currency_pattern(babel_locale: Locale, code: str) -> Callable[[Decimal], str] | None:
    """The locale's currency pattern with `code`'s symbol and decimals written in, as a
    function of the amount.

    `pattern(amount)` is then `format_currency(amount, code, locale=babel_locale)`,
    without looking the currency up (and, for every amount, its long plural name, which
    the standard pattern never shows) again. None when there is no such pattern or it
    shows the long name (`¤¤¤`): that is left to `format_currency`.
    """
    standard = babel_locale.currency_formats.get("standard")
    if standard is None or any("¤¤¤" in affix for affix in (*standard.prefix, *standard.suffix)):
        return None
    symbol = get_currency_symbol(code, babel_locale)

    def written(affix: str) -> str:
        return affix.replace("¤¤", code).replace("¤", symbol)

    pattern = copy.copy(standard)
    pattern.prefix = tuple(written(affix) for affix in standard.prefix)
    pattern.suffix = tuple(written(affix) for affix in standard.suffix)
    pattern.frac_prec = (get_currency_precision(code),) * 2
    return _Plain.of(pattern, babel_locale) or (lambda amount: pattern.apply(amount, babel_locale))


@lru_cache(maxsize=256)
def _plain_number(babel_locale: Locale) -> Callable[[Decimal], str]:
    """`_PLAIN_NUMBER.apply(amount, babel_locale)` as a function of the amount."""
    return _Plain.of(_PLAIN_NUMBER, babel_locale) or (
        lambda amount: _PLAIN_NUMBER.apply(amount, babel_locale)
    )


class _Plain:
    """`pattern.apply(amount, locale)` for a plain pattern (fixed decimals, grouped, no
    quoting, no scaling or exponent, Latin digits), with the locale's symbols looked up
    once instead of for every amount: what every money placeholder of every message
    costs. Babel's own steps, in its order, on the same decimal context; patterns it
    does not cover stay with `apply` (`of` gives None)."""

    __slots__ = ("decimal", "frac", "group", "grouping", "int_min", "prefix", "quantum", "suffix")

    @classmethod
    def of(cls, pattern: NumberPattern, locale: Locale) -> "_Plain | None":
        group = get_group_symbol(locale, numbering_system="latn")
        decimal = get_decimal_symbol(locale, numbering_system="latn")
        frac_min, frac_max = pattern.frac_prec
        if (
            pattern.scale
            or pattern.exp_prec
            or "@" in pattern.pattern
            or frac_min != frac_max
            or "'" in "".join((*pattern.prefix, *pattern.suffix, group, decimal))
            or "¤" in "".join((*pattern.prefix, *pattern.suffix))
        ):
            return None
        plain = cls()
        plain.prefix, plain.suffix = tuple(pattern.prefix), tuple(pattern.suffix)
        plain.quantum = get_decimal_quantum(frac_max)
        plain.frac, plain.int_min = frac_max, pattern.int_prec[0]
        plain.grouping, plain.group, plain.decimal = tuple(pattern.grouping), group, decimal
        return plain

    def __call__(self, amount: Decimal) -> str:
        """`amount` (finite, as `to_decimal` gives) formatted."""
        negative = int(amount.is_signed())
        rounded = abs(amount).normalize().quantize(self.quantum)
        digits, _, fraction = f"{rounded:f}".partition(".")
        if len(digits) < self.int_min:
            digits = "0" * (self.int_min - len(digits)) + digits
        size, grouped = self.grouping[0], ""
        while len(digits) > size:
            grouped = self.group + digits[-size:] + grouped
            digits = digits[:-size]
            size = self.grouping[1]
        number = digits + grouped
        if self.frac:
            number += self.decimal + (fraction or "0").ljust(self.frac, "0")
        return self.prefix[negative] + number + self.suffix[negative]


def to_decimal(value: object) -> Decimal | None:
    """A finite Decimal from an event field (str, int, float or Decimal), else None."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return amount if amount.is_finite() else None


def normalise_locale(locale: str) -> str:
    """`pt-br` → `pt_BR`, `EN` → `en`: the one spelling stored and looked up."""
    language, _, region = (locale or "").strip().replace("-", "_").partition("_")
    language = language.lower()
    if not region:
        return language
    region = region.upper() if len(region) <= 3 else region.title()
    return f"{language}_{region}"


def babel_locale_for(locale: str) -> Locale:
    """The Babel locale for `locale`, falling back to its language, then to English."""
    if type(locale) is str:
        return _babel_locale(locale)
    return _find_babel_locale(locale)


@lru_cache(maxsize=256)
def _babel_locale(locale: str) -> Locale:
    return _find_babel_locale(locale)


def _find_babel_locale(locale: str) -> Locale:
    normalised = normalise_locale(locale)
    for candidate in (normalised, normalised.split("_", 1)[0]):
        if not candidate:
            continue
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def mask_numbers(text: str) -> str:
    """Show any run of 8 or more digits (spaces, dashes, dots allowed) as `•••• 1234`."""

    def masked(match: re.Match) -> str:
        digits = [ch for ch in match.group(0) if ch.isdigit()]
        return f"{MASK} {''.join(digits[-4:])}"

    return _DIGIT_RUN.sub(masked, text)


def clean_text(text: str) -> str:
    """Drop control characters (keeping line breaks) and bidirectional overrides."""
    if type(text) is str and _UNCLEAN.search(text) is None:
        return text
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u2028", "\n")
    text = text.replace("\u2029", "\n").replace("\t", " ")
    return "".join(
        ch
        for ch in text
        if ch == "\n" or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, ending with an ellipsis when cut."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + ELLIPSIS
