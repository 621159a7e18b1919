"""`event_check` finds card numbers wherever they are nested, each reported once."""

import datetime as dt

from linking.api.validators import CARD_NUMBER_REASON
from notifications.tests.factories import event_payload
from notifications.validation import event_check

NOW = dt.datetime(2026, 3, 2, tzinfo=dt.UTC)


def test_card_numbers_nested_anywhere_in_an_event_are_refused_at_their_paths():
    payload = event_payload("receipt.issued", account_id="5500-0000-0000-0004")
    payload["data"]["items"][0]["title"] = "Gift card 4111 1111 1111 1111"
    payload["data"]["items"][1]["4111111111111111"] = "x"
    payload["data"]["order_number"] = "1234567890123"  # an identifier: its digits are an id
    payload["data"]["merchant"] = "Shop\x07"
    payload["x9"] = {"id": ["1234567890123", "ok"], "y": "٤١١١١١١١١١١١١١١١"}

    checked = event_check(payload, index=2, now=NOW)

    assert checked.reasons == [
        {"path": "account_id", "reason": CARD_NUMBER_REASON},
        {"path": "data.items[0].title", "reason": CARD_NUMBER_REASON},
        {"path": "x9.y", "reason": CARD_NUMBER_REASON},
        {"path": "x9", "reason": "is not a field of an event"},
        {"path": "data.merchant", "reason": "must not contain control characters"},
        {"path": "data.items[1]", "reason": "has a field whose name is not allowed"},
    ]
    assert checked.event_id == payload["id"]
