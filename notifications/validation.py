"""Strict validation of posted events, before anything is stored.

Every problem is reported as `{path, reason}` relative to the event (`data.card_last4`),
all of them at once; a reason never repeats the value it is about, so a refused card
number is not echoed into responses, logs or the idempotency store.
"""

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from linking.api.validators import (
    CARD_NUMBER_REASON,
    CURRENCY_RULE,
    EXTERNAL_ID_RULE,
    LAST4_TOO_LONG_REASON,
    card_number_paths,
    field_name,
    is_currency,
    is_external_id,
)
from notifications.models import Event

Reason = dict[str, str]
Check = Callable[[Any, str], list[Reason]]

FUTURE_TOLERANCE = dt.timedelta(minutes=5)
SIGNED_AMOUNT = re.compile(r"[+-]?[0-9]{1,12}(?:\.[0-9]{1,3})?")
UNSIGNED_AMOUNT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,3})?")
LAST4 = re.compile(r"[0-9]{4}")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SHIPMENT_STATUSES = (
    "label_created",
    "in_transit",
    "out_for_delivery",
    "delivered",
    "delayed",
    "returned",
)
MAX_RECEIPT_ITEMS = 100
MAX_QUANTITY = 10_000
EVENT_FIELDS = ("id", "type", "customer_id", "account_id", "occurred_at", "data")
# Fields meant for the last 4 digits have their own, more precise, check.
LAST4_PATHS = frozenset({"data.card_last4"})


def _reason(path: str, reason: str) -> list[Reason]:
    return [{"path": path, "reason": reason}]


def text(max_length: int) -> Check:
    def check(value: Any, path: str) -> list[Reason]:
        if not isinstance(value, str) or not value.strip():
            return _reason(path, "must be a non-empty string")
        if len(value) > max_length:
            return _reason(path, f"must be at most {max_length} characters")
        if CONTROL.search(value):
            return _reason(path, "must not contain control characters")
        return []

    return check


def amount(*, signed: bool) -> Check:
    pattern = SIGNED_AMOUNT if signed else UNSIGNED_AMOUNT
    example = '"-42.10"' if signed else '"42.10"'

    def check(value: Any, path: str) -> list[Reason]:
        if isinstance(value, str) and pattern.fullmatch(value):
            return []
        sign = "an optional sign, " if signed else ""
        return _reason(
            path,
            f"must be a decimal string such as {example}: {sign}at most 12 digits "
            "before the point and 3 after",
        )

    return check


def currency(value: Any, path: str) -> list[Reason]:
    return [] if is_currency(value) else _reason(path, CURRENCY_RULE)


def last4(value: Any, path: str) -> list[Reason]:
    if isinstance(value, str) and LAST4.fullmatch(value):
        return []
    digits = sum(c.isdigit() for c in str(value)) if isinstance(value, str | int) else 0
    if digits > 4:
        return _reason(path, LAST4_TOO_LONG_REASON)
    return _reason(path, 'must be a string of exactly the last 4 digits, such as "4821"')


def external_id(value: Any, path: str) -> list[Reason]:
    return [] if is_external_id(value) else _reason(path, EXTERNAL_ID_RULE)


def one_of(choices: tuple[str, ...]) -> Check:
    def check(value: Any, path: str) -> list[Reason]:
        if isinstance(value, str) and value in choices:
            return []
        return _reason(path, f"must be one of {', '.join(choices)}")

    return check


def https_url(value: Any, path: str) -> list[Reason]:
    rule = "must be an https:// URL of at most 500 characters"
    if not isinstance(value, str) or len(value) > 500 or CONTROL.search(value):
        return _reason(path, rule)
    if not re.fullmatch(r"https://[A-Za-z0-9.-]+(?::[0-9]{1,5})?(?:[/?#]\S*)?", value):
        return _reason(path, rule)
    return []


def receipt_items(value: Any, path: str) -> list[Reason]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_RECEIPT_ITEMS:
        return _reason(path, f"must be a list of 1 to {MAX_RECEIPT_ITEMS} items")
    reasons: list[Reason] = []
    for index, item in enumerate(value):
        reasons += _object(item, f"{path}[{index}]", ITEM_FIELDS)
    return reasons


def quantity(value: Any, path: str) -> list[Reason]:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_QUANTITY:
        return []
    return _reason(path, f"must be a whole number from 1 to {MAX_QUANTITY}")


@dataclass(frozen=True)
class Spec:
    check: Check
    required: bool = True


ITEM_FIELDS = {
    "title": Spec(text(200)),
    "quantity": Spec(quantity),
    "price": Spec(amount(signed=False)),
}
DATA_FIELDS: dict[str, dict[str, Spec]] = {
    Event.Type.TRANSACTION_POSTED: {
        "amount": Spec(amount(signed=True)),
        "currency": Spec(currency),
        "description": Spec(text(200)),
        "merchant": Spec(text(200), required=False),
        "card_last4": Spec(last4, required=False),
        "category": Spec(text(64), required=False),
    },
    Event.Type.BALANCE_UPDATED: {
        "available": Spec(amount(signed=True)),
        "ledger": Spec(amount(signed=True), required=False),
        "currency": Spec(currency),
    },
    Event.Type.FRAUD_ALERT: {
        "alert_id": Spec(external_id),
        "amount": Spec(amount(signed=True)),
        "currency": Spec(currency),
        "merchant": Spec(text(200)),
        "card_last4": Spec(last4),
        "location": Spec(text(200), required=False),
    },
    Event.Type.RECEIPT_ISSUED: {
        "order_number": Spec(text(64)),
        "merchant": Spec(text(200)),
        "items": Spec(receipt_items),
        "shipping": Spec(amount(signed=False), required=False),
        "tax": Spec(amount(signed=False), required=False),
        "discount": Spec(amount(signed=False), required=False),
        "total": Spec(amount(signed=False)),
        "currency": Spec(currency),
    },
    Event.Type.SHIPMENT_UPDATED: {
        "order_number": Spec(text(64)),
        "carrier": Spec(text(64)),
        "status": Spec(one_of(SHIPMENT_STATUSES)),
        "tracking_url": Spec(https_url, required=False),
    },
}


def _object(value: Any, path: str, fields: dict[str, Spec]) -> list[Reason]:
    if not isinstance(value, dict):
        return _reason(path, "must be an object")
    reasons: list[Reason] = []
    for key in value:
        if key not in fields:
            name = field_name(key)
            reasons += (
                _reason(f"{path}.{name}", "is not a known field")
                if name != "*"
                else _reason(path, "has a field whose name is not allowed")
            )
    for name, spec in fields.items():
        where = f"{path}.{name}"
        if value.get(name) is None:
            if spec.required:
                reasons += _reason(where, "is required")
            continue
        reasons += spec.check(value[name], where)
    return reasons


def _receipt_totals(data: dict) -> list[Reason]:
    items = sum((Decimal(item["price"]) * item["quantity"] for item in data["items"]), Decimal(0))
    expected = (
        items
        + Decimal(data.get("shipping") or 0)
        + Decimal(data.get("tax") or 0)
        - Decimal(data.get("discount") or 0)
    )
    if Decimal(data["total"]) != expected:
        return _reason(
            "data.total",
            "must equal the items (price times quantity) plus shipping and tax minus discount",
        )
    return []


def _occurred_at(value: Any, now: dt.datetime) -> tuple[dt.datetime | None, list[Reason]]:
    rule = "must be an ISO 8601 date-time with a time zone, such as 2026-03-01T09:30:00Z"
    if not isinstance(value, str):
        return None, _reason("occurred_at", rule)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None, _reason("occurred_at", rule)
    if moment.tzinfo is None:
        return None, _reason("occurred_at", rule)
    if moment > now + FUTURE_TOLERANCE:
        return None, _reason("occurred_at", "must not be in the future")
    return moment, []


@dataclass
class CheckedEvent:
    """An event as posted, after validation: `reasons` is empty when it may be stored."""

    index: int
    event_id: str | None = None
    type: str = ""
    customer_ref: str = ""
    account_ref: str = ""
    occurred_at: dt.datetime | None = None
    data: dict = field(default_factory=dict)
    reasons: list[Reason] = field(default_factory=list)
    customer_pk: int | None = None
    account_pk: int | None = None

    @property
    def valid(self) -> bool:
        return not self.reasons


def event_check(raw: Any, *, index: int, now: dt.datetime | None = None) -> CheckedEvent:
    """Validate one posted event; the bank's id is kept only if it is itself acceptable."""
    now = now or timezone.now()
    checked = CheckedEvent(index=index)
    if not isinstance(raw, dict):
        checked.reasons = _reason("", "must be an event object")
        return checked
    card_numbers = card_number_paths(raw, skip=LAST4_PATHS)
    reasons = [{"path": path, "reason": CARD_NUMBER_REASON} for path in card_numbers]
    refused = set(card_numbers)

    for key in raw:
        if key not in EVENT_FIELDS:
            name = field_name(key)
            reasons += (
                _reason(name, "is not a field of an event")
                if name != "*"
                else _reason("", "has a field whose name is not allowed")
            )
    for name in ("id", "customer_id", "account_id"):
        if raw.get(name) is None:
            reasons += _reason(name, "is required")
        else:
            reasons += external_id(raw[name], name)
    event_type = raw.get("type")
    if not isinstance(event_type, str | None):  # a list or an object is no type, nor a key
        event_type = ""
    if event_type is None:
        reasons += _reason("type", "is required")
    elif event_type not in DATA_FIELDS:
        reasons += _reason("type", f"must be one of {', '.join(DATA_FIELDS)}")
    else:
        checked.type = event_type
    if raw.get("occurred_at") is None:
        reasons += _reason("occurred_at", "is required")
    else:
        checked.occurred_at, found = _occurred_at(raw["occurred_at"], now)
        reasons += found
    data = raw.get("data")
    if data is None:
        reasons += _reason("data", "is required")
    elif event_type in DATA_FIELDS:
        found = _object(data, "data", DATA_FIELDS[event_type])
        if not found and event_type == Event.Type.RECEIPT_ISSUED:
            found = _receipt_totals(data)
        reasons += found
    elif not isinstance(data, dict):
        reasons += _reason("data", "must be an object")

    # A refused number is reported once, as a refused number; other reasons about the
    # same value add nothing.
    checked.reasons = [
        r for r in reasons if r["reason"] == CARD_NUMBER_REASON or r["path"] not in refused
    ]
    if is_external_id(raw.get("id")) and "id" not in refused:
        checked.event_id = raw["id"]
    if checked.valid:
        checked.customer_ref = raw["customer_id"]
        checked.account_ref = raw["account_id"]
        checked.data = {k: v for k, v in data.items() if v is not None}
    return checked
