"""The message templates a new bank starts with, in English, French and German.

Plain, factual utility wording: nothing that reads as marketing, which Meta would refuse
for a utility template. Migrations import this module, so it must stay free of models.
"""

DEFAULT_TEMPLATES: dict[str, dict[str, str]] = {
    "en": {
        "transaction.posted": (
            "Hi {customer_first_name}, a transaction of {amount} was posted on your "
            "card or account •••• {last4}: {description}."
        ),
        "balance.updated": (
            "Hi {customer_first_name}, the balance of your account •••• {last4} is now "
            "{balance} ({available} available)."
        ),
        "fraud.alert": (
            "Security alert: a payment of {amount} at {merchant} with your card •••• {last4} "
            "looks unusual. Was this you? Reply Yes or No."
        ),
        "receipt.issued": (
            "Thanks {customer_first_name}. Receipt for order {order_number} at {merchant}: "
            "{amount}, paid with •••• {last4}."
        ),
        "shipment.updated": (
            "Hi {customer_first_name}, your order {order_number} with {carrier}: {status}."
        ),
    },
    "fr": {
        "transaction.posted": (
            "Bonjour {customer_first_name}, une opération de {amount} a été passée sur "
            "votre carte ou compte •••• {last4} : {description}."
        ),
        "balance.updated": (
            "Bonjour {customer_first_name}, le solde de votre compte •••• {last4} est "
            "maintenant de {balance} ({available} disponible)."
        ),
        "fraud.alert": (
            "Alerte de sécurité : un paiement de {amount} chez {merchant} avec votre carte "
            "•••• {last4} semble inhabituel. Est-ce bien vous ? Répondez Oui ou Non."
        ),
        "receipt.issued": (
            "Merci {customer_first_name}. Reçu de la commande {order_number} chez {merchant} : "
            "{amount}, payé avec •••• {last4}."
        ),
        "shipment.updated": (
            "Bonjour {customer_first_name}, votre commande {order_number} avec {carrier} : "
            "{status}."
        ),
    },
    "de": {
        "transaction.posted": (
            "Hallo {customer_first_name}, auf Ihrer Karte oder Ihrem Konto •••• {last4} "
            "wurde ein Umsatz von {amount} gebucht: {description}."
        ),
        "balance.updated": (
            "Hallo {customer_first_name}, der Kontostand Ihres Kontos •••• {last4} beträgt "
            "jetzt {balance} ({available} verfügbar)."
        ),
        "fraud.alert": (
            "Sicherheitswarnung: Eine Zahlung von {amount} bei {merchant} mit Ihrer Karte "
            "•••• {last4} wirkt ungewöhnlich. Waren Sie das? Antworten Sie mit Ja oder Nein."
        ),
        "receipt.issued": (
            "Danke, {customer_first_name}. Beleg für Bestellung {order_number} bei {merchant}: "
            "{amount}, bezahlt mit •••• {last4}."
        ),
        "shipment.updated": (
            "Hallo {customer_first_name}, Ihre Bestellung {order_number} mit {carrier}: {status}."
        ),
    },
}


def default_template_text(event_type: str, locale: str) -> str:
    """The starting text for `event_type` in `locale`'s language, else in English."""
    language = locale.replace("-", "_").split("_", 1)[0].lower()
    return DEFAULT_TEMPLATES.get(language, DEFAULT_TEMPLATES["en"])[event_type]
