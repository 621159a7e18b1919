"""What the bank's automatic answers say, translated with Django's i18n (`locale/`).

Each answer is an English sentence with `{name}` fields, translated into the customer's
language and filled by `say`. The caller passes the locale bankside speaks in to that
customer (`portal.languages.speaking_locale`: theirs, else the bank's default), and
formats any amount or date in the same locale. None promises what the bank has not
confirmed: after a "No" the customer hears `fraud_denied_neutral` (the bank's fraud team
has the answer, and the bank's phone number) unless the bank's fraud callback answered
that it acted. Then the bank's own editable text (`ConversationText`, or the text the
callback's answer carried) is sent; `FRAUD_DENIED_DEFAULT` is what a bank starts with.
"""

from django.utils.translation import gettext, gettext_noop

from notifications.fraud_replies import LABELS
from portal.languages import speaking

TEXTS: dict[str, str] = {
    "not_linked": gettext_noop(
        "Link your {bank} account to check your balance and get updates here."
    ),
    "log_in": gettext_noop("Log In"),
    "balance_head": gettext_noop("Your balances:"),
    "transactions_head": gettext_noop("Your latest transactions:"),
    "no_transactions": gettext_noop("No recent transactions on the accounts you share."),
    "no_accounts": gettext_noop("No account is shared with Messenger at the moment."),
    "not_shared": gettext_noop(
        "You have not chosen to share {what} in Messenger, so I can't show them here. "
        "To change what you share, open {dashboard}"
    ),
    "what_balances": gettext_noop("balances"),
    "what_transactions": gettext_noop("transactions"),
    "help": gettext_noop(
        "You can ask me for your balance or your latest transactions, talk to a person, "
        "or stop sharing. Pick one below or type your question."
    ),
    "agent": gettext_noop("Thanks. A person from {bank} will answer here as soon as possible."),
    # "I lost my card", "carte volée", "Karte gestohlen"…: a person, and the phone to block it.
    "lost_card": gettext_noop(
        "A person from {bank} will answer here as soon as possible to help with your card. "
        "To block it right away, call {bank} on {phone}."
    ),
    "lost_card_no_phone": gettext_noop(
        "A person from {bank} will answer here as soon as possible to help with your card."
    ),
    "not_understood": gettext_noop(
        "Sorry, I didn't understand that. A person from {bank} will read your message. "
        "Meanwhile you can pick one of these."
    ),
    "unlink": gettext_noop(
        "To stop sharing your {bank} accounts with Messenger, tap Log Out below."
    ),
    "log_out": gettext_noop("Log Out"),
    "greeting": gettext_noop("Hello {name}! How can I help?"),
    "thanks": gettext_noop("You're welcome."),
    "fraud_confirmed": gettext_noop(
        "Thanks, we've noted that the payment was yours. Nothing else to do."
    ),
    "fraud_already": gettext_noop("Your answer to this alert was already recorded: “{answer}”."),
    "fraud_none": gettext_noop("There is no security alert waiting for an answer."),
    "qr_balance": gettext_noop("Balance"),
    "qr_transactions": gettext_noop("Transactions"),
    "qr_agent": gettext_noop("Talk to a person"),
    "qr_help": gettext_noop("Help"),
    **LABELS,
    "card_number_warning": gettext_noop(
        "For your safety, never send card numbers in this chat: we have hidden the one "
        "you sent. {bank} will never ask you for your full card number here."
    ),
    # "stop", "unsubscribe", "arrêt", "abmelden", "baja"…: asked, then done on a tap.
    "stop_confirm": gettext_noop(
        "Do you want to stop your {bank} updates in Messenger? Your accounts will no longer "
        "be shared here, and updates not yet sent will not be sent."
    ),
    "qr_stop_yes": gettext_noop("Yes, stop updates"),
    "qr_stop_no": gettext_noop("No, keep them"),
    "stop_kept": gettext_noop(
        "All right, your updates continue. Write “stop” whenever you want to end them."
    ),
    # After a "No", until the bank's fraud callback confirms that it acted.
    "fraud_denied_neutral": gettext_noop(
        "Thank you. We have passed your answer to the {bank} fraud team. If you need "
        "help now, for example to block your card, call {bank} on {phone}."
    ),
    "phone_unknown": gettext_noop("the number on the back of your card"),
    # Where the bank tells customers the chat is automated (`Bank.disclose_automation`).
    "automated": gettext_noop("You are chatting with an automated assistant of {bank}."),
}

# Sent only once the bank's fraud callback answered that it acted (`action_taken`), which
# says no more than that: so this says no more either. A bank that knows what its fraud
# system does (blocks the card, opens a dispute) writes that in its own text.
FRAUD_DENIED_DEFAULT = gettext_noop(
    "Thank you. Our fraud team has acted on your answer to protect your account, and "
    "will contact you if anything more is needed. If you need us sooner, call the "
    "number on the back of your card."
)

# Quick-reply payloads of the stop confirmation (read by `conversation.matcher`).
STOP_YES = "STOP_CONFIRM"
STOP_NO = "STOP_CANCEL"


def say(key: str, locale: str, **values: object) -> str:
    """One of the answers in `locale`'s language (English if bankside has none), filled in."""
    with speaking(locale):
        template = gettext(TEXTS[key])
    return template.format(**values) if values else template


def fraud_denied_default(locale: str) -> str:
    with speaking(locale):
        return gettext(FRAUD_DENIED_DEFAULT)


def _quick(pairs: tuple[tuple[str, str], ...], locale: str) -> list[dict[str, str]]:
    return [
        {"content_type": "text", "title": say(key, locale), "payload": payload}
        for key, payload in pairs
    ]


def common_quick_replies(locale: str) -> list[dict[str, str]]:
    return _quick(
        (
            ("qr_balance", "BALANCE"),
            ("qr_transactions", "TRANSACTIONS"),
            ("qr_agent", "AGENT"),
            ("qr_help", "HELP"),
        ),
        locale,
    )


def stop_quick_replies(locale: str) -> list[dict[str, str]]:
    """The confirmation's two answers: stop now, or keep the updates."""
    return _quick((("qr_stop_yes", STOP_YES), ("qr_stop_no", STOP_NO)), locale)
