"""`event_check`: what a posted event must look like, and what is refused."""

import datetime as dt

import pytest
from django.utils import timezone

from linking.api.validators import CARD_NUMBER_REASON, LAST4_TOO_LONG_REASON
from notifications.api.schemas import EXAMPLE_EVENTS
from notifications.tests.factories import event_payload
from notifications.validation import event_check

VISA_TEST_PAN = "4111 1111 1111 1111"


def reasons_of(payload) -> dict[str, str]:
    return {r["path"]: r["reason"] for r in event_check(payload, index=0).reasons}


@pytest.mark.parametrize("event_type", list(EXAMPLE_EVENTS))
def test_every_documented_example_is_valid(event_type):
    checked = event_check(EXAMPLE_EVENTS[event_type], index=0)

    assert checked.reasons == []
    assert checked.type == event_type
    assert checked.data == EXAMPLE_EVENTS[event_type]["data"]


@pytest.mark.parametrize(
    ("event_type", "data", "path"),
    [
        ("transaction.posted", {"amount": -42.1}, "data.amount"),
        ("transaction.posted", {"amount": "-42.1234"}, "data.amount"),
        ("transaction.posted", {"currency": "EURO"}, "data.currency"),
        ("transaction.posted", {"currency": "eur"}, "data.currency"),
        ("transaction.posted", {"currency": "XTS"}, "data.currency"),
        ("transaction.posted", {"description": "  "}, "data.description"),
        ("transaction.posted", {"card_last4": "12a4"}, "data.card_last4"),
        ("balance.updated", {"available": None}, "data.available"),
        ("balance.updated", {"ledger": "1,204.50"}, "data.ledger"),
        ("fraud.alert", {"card_last4": None}, "data.card_last4"),
        ("fraud.alert", {"alert_id": "fa 778"}, "data.alert_id"),
        ("fraud.alert", {"merchant": "x" * 201}, "data.merchant"),
        ("receipt.issued", {"items": []}, "data.items"),
        ("receipt.issued", {"total": "99.00"}, "data.total"),
        ("receipt.issued", {"total": "-37.90"}, "data.total"),
        ("shipment.updated", {"status": "lost_in_space"}, "data.status"),
        ("shipment.updated", {"tracking_url": "http://track.example/1"}, "data.tracking_url"),
        ("shipment.updated", {"carrier": "CTT\n"}, "data.carrier"),
    ],
)
def test_invalid_data_is_refused_at_its_path(event_type, data, path):
    assert path in reasons_of(event_payload(event_type, data=data))


def test_a_receipt_item_needs_a_positive_whole_quantity():
    payload = event_payload("receipt.issued")
    payload["data"]["items"][1]["quantity"] = 0

    assert "data.items[1].quantity" in reasons_of(payload)


def test_receipt_total_may_include_shipping_tax_and_discount():
    payload = event_payload("receipt.issued", data={"discount": "2.00", "total": "35.90"})

    assert reasons_of(payload) == {}


def test_unknown_fields_are_refused_in_data_and_event():
    payload = event_payload(data={"iban": "PT50"}, note="x")

    assert set(reasons_of(payload)) == {"data.iban", "note"}


def test_a_data_object_of_another_type_is_refused():
    payload = event_payload("balance.updated")
    payload["data"] = EXAMPLE_EVENTS["shipment.updated"]["data"]

    assert "data.available" in reasons_of(payload)


@pytest.mark.parametrize(
    ("occurred_at", "reason_part"),
    [
        ("2026-03-01T09:30:00", "time zone"),
        ("yesterday", "ISO 8601"),
        ((timezone.now() + dt.timedelta(hours=1)).isoformat(), "future"),
    ],
)
def test_occurred_at_must_be_an_aware_past_moment(occurred_at, reason_part):
    reasons = reasons_of(event_payload(occurred_at=occurred_at))

    assert reason_part in reasons["occurred_at"]


def test_missing_fields_are_all_reported_at_once():
    assert set(reasons_of({})) == {"id", "type", "customer_id", "account_id", "occurred_at", "data"}


@pytest.mark.parametrize(
    "text",
    [
        f"Refund to card {VISA_TEST_PAN}",
        "Refund to card 4111-1111-1111-1111",
        "Card 4111111111111111 blocked",
        "Account 1234567890123",  # 13 digits in a row, Luhn or not
        "IBAN PT50000201231234567890154",
    ],
)
def test_card_and_account_numbers_in_text_are_refused(text):
    reasons = reasons_of(event_payload(data={"description": text}))

    assert reasons == {"data.description": CARD_NUMBER_REASON}


@pytest.mark.parametrize(
    "text",
    [
        "Call us on +44 20 7946 0958",
        "Rent 2026-03-01 ref 884211",
        "Order 1234 5678 9012 3456 7",  # 17 digits in groups that fail the Luhn check
        "Reference 123456789012",  # 12 digits: not a card number
    ],
)
def test_ordinary_numbers_in_text_are_allowed(text):
    assert reasons_of(event_payload(data={"description": text})) == {}


def test_a_full_number_in_card_last4_is_refused_as_such():
    reasons = reasons_of(event_payload(data={"card_last4": "4111111111111111"}))

    assert reasons == {"data.card_last4": LAST4_TOO_LONG_REASON}


def test_card_numbers_are_refused_in_ids_and_the_id_is_not_echoed():
    checked = event_check(event_payload(id="4111111111111111"), index=0)

    assert checked.reasons == [{"path": "id", "reason": CARD_NUMBER_REASON}]
    assert checked.event_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "4111111111111111"),
        ("customer_id", "cu-4111111111111111"),
        ("account_id", "5500-0000-0000-0004"),
        ("data.alert_id", "378282246310005"),  # an Amex number: 15 digits
        ("data.order_number", "Order 4111 1111 1111 1111"),
    ],
)
def test_a_card_number_is_refused_in_every_identifier(field, value):
    payload = event_payload("fraud.alert")
    if field == "data.order_number":
        payload = event_payload("shipment.updated", data={"order_number": value})
    elif field.startswith("data."):
        payload["data"][field.removeprefix("data.")] = value
    else:
        payload[field] = value

    assert reasons_of(payload) == {field: CARD_NUMBER_REASON}


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        ("transaction.posted", "id", "1234567890123"),  # 13 digits, not a card number
        ("transaction.posted", "id", "4111111111111112"),  # 16 digits that fail the Luhn check
        ("transaction.posted", "customer_id", "10000000000000000001"),  # 20 digits
        ("fraud.alert", "data.alert_id", "FA-20261124000000000017"),
        ("shipment.updated", "data.order_number", "1123456789012346"),
        (
            "shipment.updated",
            "data.tracking_url",
            "https://tools.usps.com/go/TrackConfirmAction?tLabels=9400111899223344556677",
        ),
    ],
)
def test_long_numeric_identifiers_that_are_not_card_numbers_are_accepted(event_type, field, value):
    payload = event_payload(event_type)
    if field.startswith("data."):
        payload["data"][field.removeprefix("data.")] = value
    else:
        payload[field] = value

    checked = event_check(payload, index=0)

    assert checked.reasons == []
    assert checked.event_id == payload["id"]


def test_a_long_digit_run_in_free_text_is_still_refused_as_an_account_number():
    reasons = reasons_of(event_payload(data={"description": "Transfer to 4111111111111112"}))

    assert reasons == {"data.description": CARD_NUMBER_REASON}


def test_no_reason_ever_repeats_the_refused_value():
    payload = event_payload(
        data={"description": VISA_TEST_PAN, "card_last4": "4111111111111111"},
        type="4111111111111111",
    )
    payload["4111111111111111"] = "x"

    reasons = event_check(payload, index=0).reasons

    assert reasons
    assert "4111" not in repr(reasons)
