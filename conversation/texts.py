"""What the bank's automatic answers say, in English, French and German (else English).

Plain sentences with `{name}` fields filled by `say`. None promises what the bank has not
confirmed: after a "No" the customer hears `fraud_denied_neutral` (the bank's fraud team
has the answer, and the bank's phone number) unless the bank's fraud callback answered
that it acted. Then the bank's own editable text (`ConversationText`, or the text the
callback's answer carried) is sent; `FRAUD_DENIED_DEFAULTS` is what a bank starts with.
"""

from notifications.fraud_replies import LABELS, language_of

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "not_linked": "Link your {bank} account to check your balance and get updates here.",
        "log_in": "Log In",
        "balance_head": "Your balances:",
        "transactions_head": "Your latest transactions:",
        "no_transactions": "No recent transactions on the accounts you share.",
        "no_accounts": "No account is shared with Messenger at the moment.",
        "not_shared": (
            "You have not chosen to share {what} in Messenger, so I can't show them here. "
            "To change what you share, open {dashboard}"
        ),
        "what_balances": "balances",
        "what_transactions": "transactions",
        "help": (
            "You can ask me for your balance or your latest transactions, talk to a person, "
            "or stop sharing. Pick one below or type your question."
        ),
        "agent": "Thanks. A person from {bank} will answer here as soon as possible.",
        "not_understood": (
            "Sorry, I didn't understand that. A person from {bank} will read your message. "
            "Meanwhile you can pick one of these."
        ),
        "unlink": "To stop sharing your {bank} accounts with Messenger, tap Log Out below.",
        "log_out": "Log Out",
        "greeting": "Hello {name}! How can I help?",
        "thanks": "You're welcome.",
        "fraud_confirmed": "Thanks, we've noted that the payment was yours. Nothing else to do.",
        "fraud_already": "Your answer to this alert was already recorded: “{answer}”.",
        "fraud_none": "There is no security alert waiting for an answer.",
        "fraud_denied_neutral": (
            "Thank you. We have passed your answer to the {bank} fraud team. If you need "
            "help now, for example to block your card, call {bank} on {phone}."
        ),
        "phone_unknown": "the number on the back of your card",
        "qr_balance": "Balance",
        "qr_transactions": "Transactions",
        "qr_agent": "Talk to a person",
        "qr_help": "Help",
        **LABELS["en"],
        "card_number_warning": (
            "For your safety, never send card numbers in this chat: we have hidden the one "
            "you sent. {bank} will never ask you for your full card number here."
        ),
    },
    "fr": {
        "not_linked": (
            "Associez votre compte {bank} pour consulter votre solde et recevoir vos alertes ici."
        ),
        "log_in": "Se connecter",
        "balance_head": "Vos soldes :",
        "transactions_head": "Vos dernières opérations :",
        "no_transactions": "Aucune opération récente sur les comptes que vous partagez.",
        "no_accounts": "Aucun compte n'est partagé avec Messenger pour le moment.",
        "not_shared": (
            "Vous n'avez pas choisi de partager vos {what} dans Messenger : je ne peux donc pas "
            "les afficher ici. Pour modifier ce que vous partagez, ouvrez {dashboard}"
        ),
        "what_balances": "soldes",
        "what_transactions": "opérations",
        "help": (
            "Demandez-moi votre solde ou vos dernières opérations, parlez à un conseiller, "
            "ou arrêtez le partage. Choisissez ci-dessous ou écrivez votre question."
        ),
        "agent": "Merci. Un conseiller de {bank} vous répondra ici dès que possible.",
        "not_understood": (
            "Désolé, je n'ai pas compris. Un conseiller de {bank} lira votre message. "
            "En attendant, vous pouvez choisir ci-dessous."
        ),
        "unlink": "Pour ne plus partager vos comptes {bank} avec Messenger, touchez Déconnexion.",
        "log_out": "Déconnexion",
        "greeting": "Bonjour {name} ! Comment puis-je vous aider ?",
        "thanks": "Avec plaisir.",
        "fraud_confirmed": "Merci, nous avons noté que ce paiement venait bien de vous.",
        "fraud_already": "Votre réponse à cette alerte est déjà enregistrée : « {answer} ».",
        "fraud_none": "Aucune alerte de sécurité n'attend de réponse.",
        "fraud_denied_neutral": (
            "Merci. Nous avons transmis votre réponse à l'équipe fraude de {bank}. Si vous "
            "avez besoin d'aide maintenant, par exemple pour bloquer votre carte, appelez "
            "{bank} au {phone}."
        ),
        "phone_unknown": "numéro au dos de votre carte",
        "qr_balance": "Solde",
        "qr_transactions": "Opérations",
        "qr_agent": "Un conseiller",
        "qr_help": "Aide",
        **LABELS["fr"],
        "card_number_warning": (
            "Pour votre sécurité, n'envoyez jamais de numéro de carte dans cette conversation : "
            "nous avons masqué celui que vous avez envoyé. {bank} ne vous demandera jamais votre "
            "numéro de carte complet ici."
        ),
    },
    "de": {
        "not_linked": (
            "Verknüpfen Sie Ihr Konto bei {bank}, um hier Ihren Kontostand und Hinweise zu sehen."
        ),
        "log_in": "Anmelden",
        "balance_head": "Ihre Kontostände:",
        "transactions_head": "Ihre letzten Umsätze:",
        "no_transactions": "Keine neuen Umsätze auf den Konten, die Sie teilen.",
        "no_accounts": "Derzeit ist kein Konto mit Messenger geteilt.",
        "not_shared": (
            "Sie teilen Ihre {what} nicht in Messenger, daher kann ich sie hier nicht zeigen. "
            "Um zu ändern, was Sie teilen, öffnen Sie {dashboard}"
        ),
        "what_balances": "Kontostände",
        "what_transactions": "Umsätze",
        "help": (
            "Fragen Sie mich nach Ihrem Kontostand oder Ihren letzten Umsätzen, sprechen Sie "
            "mit einem Menschen oder beenden Sie die Freigabe. Wählen Sie unten oder schreiben Sie."
        ),
        "agent": "Danke. Eine Person von {bank} antwortet Ihnen hier so bald wie möglich.",
        "not_understood": (
            "Das habe ich leider nicht verstanden. Eine Person von {bank} liest Ihre Nachricht. "
            "Bis dahin können Sie unten wählen."
        ),
        "unlink": (
            "Um Ihre Konten bei {bank} nicht mehr mit Messenger zu teilen, tippen Sie auf Abmelden."
        ),
        "log_out": "Abmelden",
        "greeting": "Hallo {name}! Wie kann ich helfen?",
        "thanks": "Gern geschehen.",
        "fraud_confirmed": "Danke, wir haben vermerkt, dass die Zahlung von Ihnen war.",
        "fraud_already": "Ihre Antwort auf diesen Hinweis ist bereits gespeichert: „{answer}“.",
        "fraud_none": "Es wartet kein Sicherheitshinweis auf eine Antwort.",
        "fraud_denied_neutral": (
            "Danke. Wir haben Ihre Antwort an das Betrugsteam von {bank} weitergegeben. "
            "Wenn Sie jetzt Hilfe brauchen, etwa um Ihre Karte zu sperren, rufen Sie {bank} "
            "unter {phone} an."
        ),
        "phone_unknown": "der Nummer auf der Rückseite Ihrer Karte",
        "qr_balance": "Kontostand",
        "qr_transactions": "Umsätze",
        "qr_agent": "Mit Person sprechen",
        "qr_help": "Hilfe",
        **LABELS["de"],
        "card_number_warning": (
            "Senden Sie zu Ihrer Sicherheit niemals Kartennummern in diesem Chat: Wir haben "
            "die gesendete Nummer unkenntlich gemacht. {bank} fragt Sie hier nie nach Ihrer "
            "vollständigen Kartennummer."
        ),
    },
}

# Sent only once the bank's fraud callback answered that it acted (`action_taken`), which
# says no more than that: so these say no more either. A bank that knows what its fraud
# system does (blocks the card, opens a dispute) writes that in its own text.
FRAUD_DENIED_DEFAULTS: dict[str, str] = {
    "en": (
        "Thank you. Our fraud team has acted on your answer to protect your account, and "
        "will contact you if anything more is needed. If you need us sooner, call the "
        "number on the back of your card."
    ),
    "fr": (
        "Merci. Notre équipe fraude a donné suite à votre réponse pour protéger votre "
        "compte et vous contactera si nécessaire. En cas d'urgence, appelez le numéro au "
        "dos de votre carte."
    ),
    "de": (
        "Danke. Unser Betrugsteam hat auf Ihre Antwort hin gehandelt, um Ihr Konto zu "
        "schützen, und meldet sich, falls noch etwas nötig ist. Im Notfall rufen Sie die "
        "Nummer auf der Rückseite Ihrer Karte an."
    ),
}


def texts_for(locale: str) -> dict[str, str]:
    return TEXTS.get(language_of(locale), TEXTS["en"])


def say(key: str, locale: str, **values: object) -> str:
    """One of the answers in `locale`'s language (English if it has none), filled in."""
    template = texts_for(locale)[key]
    return template.format(**values) if values else template


def fraud_denied_default(locale: str) -> str:
    return FRAUD_DENIED_DEFAULTS.get(language_of(locale), FRAUD_DENIED_DEFAULTS["en"])


def common_quick_replies(locale: str) -> list[dict]:
    return [
        {"content_type": "text", "title": say(key, locale), "payload": payload}
        for key, payload in (
            ("qr_balance", "BALANCE"),
            ("qr_transactions", "TRANSACTIONS"),
            ("qr_agent", "AGENT"),
            ("qr_help", "HELP"),
        )
    ]
