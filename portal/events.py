"""The kinds of account event a bank's core posts, and what each one offers a message.

Shared by the policies, the message templates and (later) the delivery engine, so it
holds no model: just the event types, the data scope each needs, the placeholders a
template for it may use, and the sample data the staff preview renders.
"""

from django.db import models
from django.utils.translation import gettext_lazy as _


class EventType(models.TextChoices):
    TRANSACTION_POSTED = "transaction.posted", "Card and account transactions"
    BALANCE_UPDATED = "balance.updated", "Balance updates"
    FRAUD_ALERT = "fraud.alert", "Fraud alerts"
    RECEIPT_ISSUED = "receipt.issued", "Receipts"
    SHIPMENT_UPDATED = "shipment.updated", "Shipping updates"


class DataScope(models.TextChoices):
    """What a customer can agree to share; the same values as `linking.Consent.Scope`."""

    BALANCES = "balances", _("Balances")
    TRANSACTIONS = "transactions", _("Card and account transactions")
    FRAUD_ALERTS = "fraud_alerts", _("Fraud alerts")
    RECEIPTS_SHIPPING = "receipts_shipping", _("Receipts and shipping updates")


# The consent scope an event needs before anything about it may leave the bank.
EVENT_SCOPES: dict[str, str] = {
    EventType.TRANSACTION_POSTED: DataScope.TRANSACTIONS,
    EventType.BALANCE_UPDATED: DataScope.BALANCES,
    EventType.FRAUD_ALERT: DataScope.FRAUD_ALERTS,
    EventType.RECEIPT_ISSUED: DataScope.RECEIPTS_SHIPPING,
    EventType.SHIPMENT_UPDATED: DataScope.RECEIPTS_SHIPPING,
}

# Placeholders formatted as money in the event's currency.
MONEY_PLACEHOLDERS = frozenset({"amount", "balance", "available"})

# Every placeholder, with what it stands for (shown beside the template editor).
PLACEHOLDER_HELP: dict[str, str] = {
    "customer_first_name": "the customer's first name",
    "last4": "the last 4 digits of the card or account",
    "account_name": "the account's name at the bank, such as Everyday",
    "amount": "the amount, formatted in the account's currency",
    "currency": "the currency code, such as EUR",
    "merchant": "the merchant or counterparty",
    "description": "the transaction or alert description",
    "balance": "the balance after the event",
    "available": "the available balance",
    "order_number": "the order number",
    "carrier": "the delivery company",
    "status": "the shipment status",
    "location": "where the shipment is",
}

_COMMON = ("customer_first_name", "last4", "currency")

PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    # Only what the event's data carries: a transaction says nothing of the balance, a
    # shipment nothing of the merchant (the core sends balance.updated and receipts).
    EventType.TRANSACTION_POSTED: (*_COMMON, "account_name", "amount", "merchant", "description"),
    EventType.BALANCE_UPDATED: (*_COMMON, "account_name", "balance", "available"),
    EventType.FRAUD_ALERT: (*_COMMON, "amount", "merchant", "description"),
    EventType.RECEIPT_ISSUED: (*_COMMON, "amount", "merchant", "description", "order_number"),
    EventType.SHIPMENT_UPDATED: ("customer_first_name", "order_number", "carrier", "status"),
}

# What the preview renders, and the examples sent with a utility template. The card
# number in the descriptions shows staff that digit-heavy text is masked.
SAMPLE_DATA: dict[str, dict[str, str]] = {
    EventType.TRANSACTION_POSTED: {
        "customer_first_name": "Ana",
        "last4": "4821",
        "currency": "EUR",
        "amount": "-42.50",
        "merchant": "Café Lumière",
        "description": "Contactless payment, card 4929 1234 5678 4821",
        "card_last4": "4821",
        "account_name": "Everyday",
    },
    EventType.BALANCE_UPDATED: {
        "customer_first_name": "Ana",
        "last4": "4821",
        "currency": "EUR",
        "account_name": "Everyday",
        "balance": "1204.50",
        "available": "1154.50",
    },
    EventType.FRAUD_ALERT: {
        "customer_first_name": "Ana",
        "last4": "4821",
        "currency": "EUR",
        "amount": "899.00",
        "merchant": "Electro World Online",
        "description": "Online purchase with card 4929123456784821",
    },
    EventType.RECEIPT_ISSUED: {
        "customer_first_name": "Ana",
        "last4": "4821",
        "currency": "EUR",
        "amount": "64.90",
        "merchant": "Bookshop Lyon",
        "description": "2 books",
        "order_number": "BK-20931",
    },
    EventType.SHIPMENT_UPDATED: {
        "customer_first_name": "Ana",
        "order_number": "BK-20931",
        "carrier": "ParcelPost",
        "status": "Out for delivery",
    },
}
