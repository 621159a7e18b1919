"""The message templates a new bank starts with, translated with Django's i18n.

Plain, factual utility wording: nothing that reads as marketing, which Meta would refuse
for a utility template. Migrations import this module, so it must stay free of models.

A transaction template the bank has left as it started (`is_default_transaction_text`)
is written the way a careful bank writes it, by the sign and kind of each transaction
(`bank_style_transaction`): "You paid €4.61 at Corner Coffee with your card •••• 4037",
"€250.00 arrived in your Everyday account •••• 4321" (the account's name where the bank gave
it one), refunds and cash withdrawals. Outside the
24-hour window the approved utility template (its one registered text) is sent instead.
"""

from collections.abc import Iterator, Mapping
from decimal import Decimal, InvalidOperation
from functools import lru_cache

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_noop

TRANSACTION = "transaction.posted"

# The English texts; `locale/<language>/LC_MESSAGES/django.po` holds the others.
_TEXTS: dict[str, str] = {
    TRANSACTION: gettext_noop(
        "Hi {customer_first_name}, a transaction of {amount} was posted on your "
        "card or account •••• {last4}: {description}."
    ),
    "balance.updated": gettext_noop(
        "Hi {customer_first_name}, the balance of your account •••• {last4} is now "
        "{balance} ({available} available)."
    ),
    "fraud.alert": gettext_noop(
        "Security alert: a payment of {amount} at {merchant} with your card •••• {last4} "
        "looks unusual. Was this you? Reply Yes or No."
    ),
    "receipt.issued": gettext_noop(
        "Thanks {customer_first_name}. Receipt for order {order_number} at {merchant}: "
        "{amount}, paid with •••• {last4}."
    ),
    "shipment.updated": gettext_noop(
        "Hi {customer_first_name}, your order {order_number} with {carrier}: {status}."
    ),
}

# A transaction by its kind, as a bank writes it; `{amount}` is shown without its sign.
TRANSACTION_KINDS: dict[str, str] = {
    "card_payment": gettext_noop("You paid {amount} at {merchant} with your card •••• {last4}."),
    "card_payment_plain": gettext_noop(
        "You paid {amount} with your card •••• {last4}: {description}."
    ),
    "account_payment": gettext_noop(
        "You paid {amount} at {merchant} from your account •••• {last4}."
    ),
    "debit": gettext_noop("{amount} left your account •••• {last4}: {description}."),
    "credit": gettext_noop("{amount} arrived in your account •••• {last4}: {description}."),
    "card_refund": gettext_noop("{merchant} refunded {amount} to your card •••• {last4}."),
    "account_refund": gettext_noop("{merchant} refunded {amount} to your account •••• {last4}."),
    "refund_plain": gettext_noop(
        "You received a refund of {amount} on •••• {last4}: {description}."
    ),
    "card_withdrawal": gettext_noop("You withdrew {amount} in cash with your card •••• {last4}."),
    "account_withdrawal": gettext_noop(
        "You withdrew {amount} in cash from your account •••• {last4}."
    ),
    # The same, for an account the bank has named ("your Everyday account •••• 4321").
    "account_payment_named": gettext_noop(
        "You paid {amount} at {merchant} from your {account_name} account •••• {last4}."
    ),
    "debit_named": gettext_noop(
        "{amount} left your {account_name} account •••• {last4}: {description}."
    ),
    "credit_named": gettext_noop(
        "{amount} arrived in your {account_name} account •••• {last4}: {description}."
    ),
    "account_refund_named": gettext_noop(
        "{merchant} refunded {amount} to your {account_name} account •••• {last4}."
    ),
    "account_withdrawal_named": gettext_noop(
        "You withdrew {amount} in cash from your {account_name} account •••• {last4}."
    ),
}
# The kinds that name the account rather than a card, and the word each language puts
# beside the account's name already ("your Everyday account"): a name that carries it
# ("Everyday Account", "Compte Courant") is shown without it.
NAMED_KINDS = frozenset(
    {"account_payment", "debit", "credit", "account_refund", "account_withdrawal"}
)
ACCOUNT_WORDS = {"en": "account", "fr": "compte", "de": "konto", "es": "cuenta"}

# The `category` values (case ignored) that make a transaction a refund or a withdrawal.
REFUND_CATEGORIES = frozenset({"refund", "refunds", "chargeback", "reversal"})
WITHDRAWAL_CATEGORIES = frozenset({"atm", "cash", "cash_withdrawal", "withdrawal"})


def _language(locale: str) -> str:
    return (locale or "").replace("-", "_").split("_", 1)[0].lower()


def _translated(text: str, language: str) -> str:
    with translation.override(language):
        return translation.gettext(text)


def default_template_text(event_type: str, locale: str) -> str:
    """The starting text for `event_type` in `locale`'s language, else in English."""
    language = _language(locale)
    if language not in dict(settings.LANGUAGES):
        language = "en"
    return _translated(_TEXTS[event_type], language)


class _DefaultTemplates(Mapping[str, dict[str, str]]):
    """{language: {event type: text}} for every language bankside is translated into."""

    def __getitem__(self, language: str) -> dict[str, str]:
        if language not in dict(settings.LANGUAGES):
            raise KeyError(language)
        return {event_type: _translated(text, language) for event_type, text in _TEXTS.items()}

    def __iter__(self) -> Iterator[str]:
        return iter(code for code, _ in settings.LANGUAGES)

    def __len__(self) -> int:
        return len(settings.LANGUAGES)


DEFAULT_TEMPLATES: Mapping[str, dict[str, str]] = _DefaultTemplates()

# What a bank's transaction template said by default before the texts above; a bank that
# kept it gets the bank-style texts too.
_EARLIER_TRANSACTION_DEFAULTS = {
    "fr": (
        "Bonjour {customer_first_name}, une opération de {amount} a été passée sur "
        "votre carte ou compte •••• {last4} : {description}."
    ),
    "de": (
        "Hallo {customer_first_name}, auf Ihrer Karte oder Ihrem Konto •••• {last4} "
        "wurde ein Umsatz von {amount} gebucht: {description}."
    ),
}


@lru_cache(maxsize=1)
def _default_transaction_texts() -> dict[str, str]:
    """{a default transaction text: its language}."""
    texts = {text: language for language, text in _EARLIER_TRANSACTION_DEFAULTS.items()}
    for language, _ in settings.LANGUAGES:
        texts[_translated(_TEXTS[TRANSACTION], language)] = language
    return texts


def is_default_transaction_text(text: str) -> bool:
    return text in _default_transaction_texts()


def transaction_kind(data: Mapping[str, object]) -> str | None:
    """Which of `TRANSACTION_KINDS` a posted transaction is, from its sign, whether a card
    made it, its merchant and its category; None when it has no usable amount (or 0)."""
    try:
        amount = Decimal(str(data.get("amount", "")).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount == 0:
        return None
    card = bool(data.get("card_last4"))
    merchant = bool(str(data.get("merchant") or "").strip())
    category = str(data.get("category") or "").strip().lower()
    if amount > 0:
        if category in REFUND_CATEGORIES or (card and merchant):
            if not merchant:
                return "refund_plain"
            return "card_refund" if card else "account_refund"
        return "credit"
    if category in WITHDRAWAL_CATEGORIES:
        return "card_withdrawal" if card else "account_withdrawal"
    if card:
        return "card_payment" if merchant else "card_payment_plain"
    return "account_payment" if merchant else "debit"


def bank_style_transaction(
    template_text: str, data: Mapping[str, object]
) -> tuple[str, Mapping[str, object]] | None:
    """For a transaction template left as the default: the bank-style text of this
    transaction's kind, in the template's language, and the data it shows (the amount
    without its sign, which the words carry). None for any other template."""
    language = _default_transaction_texts().get(template_text)
    if language is None:
        return None
    kind = transaction_kind(data)
    if kind is None:
        return None
    values = dict(data)
    values["amount"] = str(abs(Decimal(str(data["amount"]).strip())))
    name = account_name_shown(str(data.get("account_name") or ""), language)
    if kind in NAMED_KINDS and name:
        kind = f"{kind}_named"
        values["account_name"] = name
    return _kind_text(kind, language), values


def account_name_shown(name: str, language: str) -> str:
    """The account's name as the bank-style texts show it beside the word for account:
    "Everyday Account" is "Everyday" in English, "Compte courant" is "courant" in French;
    a name that is only that word, or none, is not shown."""
    words = name.split()
    word = ACCOUNT_WORDS.get(language, "")
    if len(words) > 1 and word:
        if words[-1].lower() == word:
            words = words[:-1]
        elif words[0].lower() == word:
            words = words[1:]
    shown = " ".join(words)
    return "" if shown.lower() == word else shown


@lru_cache(maxsize=256)
def _kind_text(kind: str, language: str) -> str:
    return _translated(TRANSACTION_KINDS[kind], language)
