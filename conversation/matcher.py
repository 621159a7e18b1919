"""What a customer's message asks for: a small keyword and phrase matcher, per language.

No model and no database: a message is normalised (lower case, accents and punctuation
dropped) and compared with the phrases of each intent in the customer's language first,
then in the other languages. Quick-reply taps carry their intent in the payload, so they
never depend on the words.
"""

import re
import unicodedata
from dataclasses import dataclass

from conversation.texts import STOP_NO, STOP_YES
from notifications.fraud_replies import FRAUD_YES, fraud_payload_read
from portal.languages import language_of

BALANCE = "balance"
TRANSACTIONS = "transactions"
HELP = "help"
UNLINK = "unlink"
STOP = "stop"  # stop the updates: asked to confirm
STOP_CONFIRMED = "stop_confirmed"
STOP_CANCELLED = "stop_cancelled"
AGENT = "agent"
LOST_CARD = "lost_card"  # lost or stolen card: a person, at once
GREETING = "greeting"
THANKS = "thanks"
YES = "yes"
NO = "no"
UNKNOWN = "unknown"

# Quick-reply payloads the bank offers; a fraud answer adds the notification id.
PAYLOADS = {
    "BALANCE": BALANCE,
    "TRANSACTIONS": TRANSACTIONS,
    "HELP": HELP,
    "AGENT": AGENT,
    "UNLINK": UNLINK,
    STOP_YES: STOP_CONFIRMED,
    STOP_NO: STOP_CANCELLED,
    # Messenger's *Get Started* button, the first tap of a new thread (an m.me link's too).
    "GET_STARTED": GREETING,
}

# Phrases per language and intent, already normalised. A phrase of several words matches
# those words in order anywhere in the message; a single word matches a whole word.
PHRASES: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        LOST_CARD: (
            "lost my card",
            "lost my debit card",
            "lost my credit card",
            "lost card",
            "card is lost",
            "card was lost",
            "card is missing",
            "cant find my card",
            "card was stolen",
            "card has been stolen",
            "card is stolen",
            "stolen card",
            "stole my card",
            "block my card",
            "block the card",
            "freeze my card",
        ),
        AGENT: (
            "agent",
            "human",
            "person",
            "someone",
            "somebody",
            "representative",
            "operator",
            "advisor",
            "adviser",
            "call me",
            "speak to",
            "talk to",
        ),
        STOP: (
            "stop",
            "unsubscribe",
            "opt out",
            "stop updates",
            "stop messages",
            "stop sharing",
            "no more updates",
            "no more messages",
        ),
        UNLINK: ("unlink", "log out", "logout", "disconnect", "remove my account"),
        TRANSACTIONS: (
            "transactions",
            "transaction",
            "payments",
            "purchases",
            "spending",
            "statement",
            "history",
            "last payment",
            "what did i spend",
            "recent activity",
        ),
        BALANCE: (
            "balance",
            "balances",
            "how much do i have",
            "how much money",
            "how much is in",
            "available",
            "funds",
        ),
        HELP: ("help", "menu", "options", "what can you do", "commands"),
        THANKS: ("thanks", "thank you", "thx", "cheers"),
        GREETING: ("hi", "hello", "hey", "good morning", "good evening", "good afternoon"),
        YES: ("yes", "yep", "yeah", "it was me", "that was me"),
        NO: ("no", "nope", "not me", "it wasnt me", "wasnt me", "that wasnt me"),
    },
    "fr": {
        LOST_CARD: (
            "perdu ma carte",
            "perdu la carte",
            "carte perdue",
            "perte de ma carte",
            "perte de carte",
            "carte volee",
            "vole ma carte",
            "vol de ma carte",
            "vol de carte",
            "bloquer ma carte",
            "bloquer la carte",
            "bloquez ma carte",
            "faire opposition",
            "opposition sur ma carte",
        ),
        AGENT: (
            "conseiller",
            "conseillere",
            "humain",
            "quelqu un",
            "une personne",
            "agent",
            "parler a",
            "appelez moi",
        ),
        STOP: (
            "stop",
            "arret",
            "arreter",
            "arrete",
            "arretez",
            "desabonner",
            "desabonnement",
            "desinscrire",
            "desinscription",
            "arreter le partage",
            "ne plus recevoir",
        ),
        UNLINK: ("delier", "deconnecter", "deconnexion", "se deconnecter"),
        TRANSACTIONS: (
            "transactions",
            "operations",
            "operation",
            "paiements",
            "achats",
            "depenses",
            "releve",
            "historique",
            "dernieres operations",
        ),
        BALANCE: (
            "solde",
            "soldes",
            "combien ai je",
            "combien j ai",
            "combien il me reste",
            "disponible",
        ),
        HELP: ("aide", "menu", "options", "que peux tu faire", "que pouvez vous faire"),
        THANKS: ("merci",),
        GREETING: ("bonjour", "salut", "bonsoir", "coucou"),
        YES: ("oui", "c etait moi", "c est moi"),
        NO: ("non", "pas moi", "ce n etait pas moi", "ce netait pas moi"),
    },
    "de": {
        LOST_CARD: (
            "karte verloren",
            "karte verlegt",
            "karte gestohlen",
            "karte wurde gestohlen",
            "karte ist gestohlen",
            "karte ist weg",
            "verlorene karte",
            "gestohlene karte",
            "karte sperren",
            "karte blockieren",
            "kartensperre",
            "kreditkarte verloren",
            "kreditkarte gestohlen",
            "bankkarte verloren",
            "bankkarte gestohlen",
        ),
        AGENT: (
            "berater",
            "beraterin",
            "mensch",
            "mitarbeiter",
            "mitarbeiterin",
            "person",
            "jemand",
            "sprechen mit",
            "rufen sie mich an",
        ),
        STOP: (
            "stopp",
            "stop",
            "abmelden",
            "abbestellen",
            "abmeldung",
            "keine nachrichten mehr",
            "freigabe beenden",
            "benachrichtigungen beenden",
        ),
        UNLINK: ("trennen", "verknupfung aufheben", "ausloggen"),
        TRANSACTIONS: (
            "umsatze",
            "umsatz",
            "buchungen",
            "buchung",
            "transaktionen",
            "zahlungen",
            "kontoauszug",
            "ausgaben",
            "letzte zahlung",
        ),
        BALANCE: (
            "kontostand",
            "saldo",
            "guthaben",
            "wie viel habe ich",
            "wieviel habe ich",
            "verfugbar",
        ),
        HELP: ("hilfe", "menu", "optionen", "was kannst du"),
        THANKS: ("danke", "vielen dank"),
        GREETING: ("hallo", "guten tag", "guten morgen", "guten abend", "servus", "moin"),
        YES: ("ja", "das war ich", "ich war das", "war ich"),
        NO: ("nein", "nicht ich", "das war ich nicht", "war ich nicht"),
    },
    "es": {
        LOST_CARD: (
            "perdi mi tarjeta",
            "perdi la tarjeta",
            "perdido mi tarjeta",
            "perdido la tarjeta",
            "tarjeta perdida",
            "tarjeta robada",
            "tarjeta fue robada",
            "robaron mi tarjeta",
            "robaron la tarjeta",
            "robado mi tarjeta",
            "bloquear mi tarjeta",
            "bloquear la tarjeta",
            "bloquea mi tarjeta",
            "bloqueen mi tarjeta",
        ),
        AGENT: ("agente", "humano", "persona", "asesor", "hablar con"),
        STOP: (
            "stop",
            "parar",
            "baja",
            "darme de baja",
            "dar de baja",
            "cancelar suscripcion",
            "cancelar la suscripcion",
            "detener",
            "dejar de compartir",
            "no quiero mas mensajes",
        ),
        UNLINK: ("desvincular", "cerrar sesion"),
        TRANSACTIONS: ("movimientos", "transacciones", "pagos", "compras", "gastos", "historial"),
        BALANCE: ("saldo", "saldos", "cuanto tengo", "cuanto dinero", "disponible"),
        HELP: ("ayuda", "menu", "opciones"),
        THANKS: ("gracias",),
        GREETING: ("hola", "buenos dias", "buenas tardes", "buenas noches"),
        YES: ("si", "fui yo", "era yo"),
        NO: ("no", "no fui yo", "no era yo"),
    },
}

# When several intents match, the first in this order wins: a lost or stolen card comes
# before all else ("I lost my card, can someone call me?" is urgent); "no, I want to talk
# to a person" is a request for a person; "what's my balance history" is about transactions.
PRIORITY = (LOST_CARD, AGENT, STOP, UNLINK, TRANSACTIONS, BALANCE, HELP, NO, YES, THANKS, GREETING)
# Yes and no answer a question only when the message says little else.
SHORT_ANSWER_WORDS = 6

_NON_WORD = re.compile(r"[^a-z0-9]+")


@dataclass(frozen=True)
class Match:
    intent: str
    notification_id: int | None = None  # a fraud answer's alert, from its quick reply
    # A lost card that also says a payment was not theirs ("it wasn't me, block my card"):
    # an answer to a fraud alert, when one waits for it.
    denies: bool = False


def normalise(text: str) -> str:
    """Lower case, accents dropped, apostrophes and punctuation as spaces: "Où?" → "ou"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    plain = plain.replace("ß", "ss").replace("'", "").replace("\u2019", "")
    return _NON_WORD.sub(" ", plain).strip()


def _contains(words: list[str], phrase: str) -> bool:
    needle = phrase.split()
    if len(needle) == 1:
        return needle[0] in words
    size = len(needle)
    return any(words[i : i + size] == needle for i in range(len(words) - size + 1))


def _intents_in(words: list[str], phrases: dict[str, tuple[str, ...]]) -> set[str]:
    return {
        intent for intent, options in phrases.items() if any(_contains(words, p) for p in options)
    }


def match(text: str | None, *, locale: str = "en", quick_reply_payload: str | None = None) -> Match:
    """The intent of one message; quick-reply payloads first, then the words."""
    if quick_reply_payload:
        from_payload = match_payload(quick_reply_payload)
        if from_payload is not None:
            return from_payload
    words = normalise(text or "").split()
    if not words:
        return Match(UNKNOWN)
    language = language_of(locale)
    ordered = [language] if language in PHRASES else []
    ordered += [other for other in PHRASES if other not in ordered]
    for lang in ordered:
        found = _intents_in(words, PHRASES[lang])
        if len(words) > SHORT_ANSWER_WORDS:
            found -= {YES, NO}
        if found:
            intent = next(intent for intent in PRIORITY if intent in found)
            return Match(intent, denies=intent == LOST_CARD and _denies(words, lang))
    return Match(UNKNOWN)


def _denies(words: list[str], lang: str) -> bool:
    """Whether the words say "it wasn't me" (a phrase: a bare "no" says too little)."""
    return any(_contains(words, p) for p in PHRASES[lang][NO] if " " in p)


def match_payload(payload: str) -> Match | None:
    """The intent a quick reply (or postback) of the bank's carries, else None."""
    if payload in PAYLOADS:
        return Match(PAYLOADS[payload])
    answer = fraud_payload_read(payload)
    if answer is not None:
        kind, notification_id = answer
        return Match(YES if kind == FRAUD_YES else NO, notification_id=notification_id)
    return None
