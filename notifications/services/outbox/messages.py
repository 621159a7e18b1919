"""What a message may show about an event, and which of the consent's scopes that draws on."""

from collections.abc import Iterable, Mapping
from typing import Any

from portal.events import EVENT_SCOPES, DataScope, EventType

# Placeholders that show the balance: they leave the bank only under the balances scope.
BALANCE_PLACEHOLDERS = frozenset({"balance", "available"})


def message_data(
    event_type: str,
    data: Mapping[str, Any],
    *,
    first_name: str,
    last4: str,
    currency: str,
    scopes: Iterable[str],
    account_name: str = "",
) -> dict[str, Any]:
    """What a template may show about an event: its data plus the customer and account.

    Balance figures are removed unless the consent covers balances: a transaction
    template that shows the balance must not leak it to a customer who only shared
    transactions.
    """
    values = dict(data)
    values["customer_first_name"] = first_name
    values["last4"] = data.get("card_last4") or last4
    values["currency"] = data.get("currency") or currency
    values["account_name"] = account_name
    if event_type == EventType.BALANCE_UPDATED:
        values.setdefault("balance", data.get("ledger") or data.get("available"))
    elif event_type == EventType.RECEIPT_ISSUED:
        values.setdefault("amount", data.get("total"))
        items = data.get("items") or []
        values.setdefault(
            "description", ", ".join(str(i.get("title", "")) for i in items if isinstance(i, dict))
        )
    elif event_type == EventType.SHIPMENT_UPDATED:
        values["status"] = str(data.get("status", "")).replace("_", " ")
    elif event_type == EventType.FRAUD_ALERT:
        values.setdefault("description", data.get("location"))
    if DataScope.BALANCES not in set(scopes):
        for name in BALANCE_PLACEHOLDERS:
            values.pop(name, None)
    return values


def data_categories_for(
    event_type: str, placeholders: Iterable[str], scopes: Iterable[str]
) -> list[str]:
    """The consent scopes a message about `event_type` showing `placeholders` draws on."""
    categories = {EVENT_SCOPES[event_type]}
    if set(placeholders) & BALANCE_PLACEHOLDERS and DataScope.BALANCES in set(scopes):
        categories.add(DataScope.BALANCES)
    return sorted(categories)


def first_name(name: str) -> str:
    return (name or "").strip().split(" ", 1)[0]
