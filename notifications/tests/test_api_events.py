import json
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from linking.api.validators import CARD_NUMBER_REASON, LAST4_TOO_LONG_REASON
from linking.tests.factories import AccountFactory, CustomerFactory
from notifications.models import Event, Notification, Outcome
from notifications.signals import events_accepted
from notifications.tests.factories import EventFactory, event_payload
from notifications.tests.problems import assert_problem
from portal import selectors
from portal.audit import Actor
from portal.models import AuditEvent
from portal.services import api_key_revoke
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
PAN = "4111 1111 1111 1111"
PAN_ANY_SPACING = re.compile(r"4111\W{0,3}1111\W{0,3}1111\W{0,3}1111")


def post(api, body, **extra):
    return api.post(EVENTS, body, format="json", **extra)


def database_text() -> str:
    """Everything notifications and the audit log hold, as text."""
    with connection.cursor() as cursor:
        rows = []
        for table in (
            "notifications_event",
            "notifications_outcome",
            "notifications_idempotencyrecord",
            "portal_auditevent",
        ):
            cursor.execute(f"SELECT * FROM {table}")
            rows += cursor.fetchall()
    return repr(rows)


@pytest.mark.parametrize(
    "event_type",
    [
        "transaction.posted",
        "balance.updated",
        "fraud.alert",
        "receipt.issued",
        "shipment.updated",
    ],
)
def test_a_valid_event_of_each_type_is_accepted_and_stored(api, card, event_type):
    payload = event_payload(event_type, account=card)

    response = post(api, payload)

    assert response.status_code == 202
    assert response.json()["results"] == [{"index": 0, "id": payload["id"], "status": "accepted"}]
    stored = Event.objects.get(event_id=payload["id"])
    assert (stored.type, stored.account, stored.data) == (event_type, card, payload["data"])
    assert stored.status == Event.Status.PROCESSED  # the rules ran in the same transaction


def test_an_invalid_event_is_rejected_with_reasons_and_not_stored(api, card):
    payload = event_payload("fraud.alert", account=card, data={"currency": "EURO"})

    response = post(api, payload)

    assert response.status_code == 202
    (result,) = response.json()["results"]
    assert result["status"] == "rejected"
    assert result["reasons"] == [
        {"path": "data.currency", "reason": "must be an ISO 4217 currency code such as EUR"}
    ]
    assert not Event.objects.exists()


def test_a_batch_answers_each_event_in_order(api, card):
    stored = EventFactory(bank=card.bank, account=card, event_id="evt-old")
    batch = [
        event_payload(account=card, id="evt-a"),
        event_payload(account=card, id="evt-b", data={"amount": "lots"}),
        event_payload("balance.updated", account=card, id="evt-old"),
        event_payload("shipment.updated", account=card, id="evt-c"),
    ]

    response = post(api, {"events": batch})

    body = response.json()
    assert response.status_code == 202
    assert [r["status"] for r in body["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "accepted",
    ]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    assert set(Event.objects.values_list("event_id", flat=True)) == {
        "evt-a",
        "evt-c",
        stored.event_id,
    }


def test_a_duplicate_answers_the_original_outcome_and_changes_nothing(api, card):
    first = event_payload(account=card, id="evt-1")
    post(api, first)
    original = Event.objects.get(event_id="evt-1")

    response = post(api, {**first, "data": {**first["data"], "amount": "-1.00"}})

    (result,) = response.json()["results"]
    assert result["status"] == "duplicate"
    assert result["original"]["status"] == "processed"
    assert result["original"]["received_at"].startswith(original.received_at.date().isoformat())
    assert Event.objects.get(event_id="evt-1").data == first["data"]
    assert Event.objects.count() == 1


def test_the_same_id_twice_in_one_batch_is_stored_once(api, card):
    payload = event_payload(account=card)

    response = post(api, {"events": [payload, payload]})

    assert [r["status"] for r in response.json()["results"]] == ["accepted", "duplicate"]
    assert Event.objects.count() == 1


def test_a_card_number_in_text_is_rejected_and_stored_nowhere(api, card):
    payload = event_payload(account=card, data={"description": f"Refund to {PAN}"})

    response = post(api, payload, HTTP_IDEMPOTENCY_KEY="k-pan")

    (result,) = response.json()["results"]
    assert result["reasons"] == [{"path": "data.description", "reason": CARD_NUMBER_REASON}]
    assert not Event.objects.exists()
    # The number in any spacing, and the text around it: random ids and hashes may hold a
    # "1111" of their own.
    for text in (response.content.decode(), database_text()):
        assert not PAN_ANY_SPACING.search(text)
        assert "Refund to" not in text


def test_a_full_number_in_card_last4_is_rejected_and_stored_nowhere(api, card):
    payload = event_payload(account=card, data={"card_last4": "4111111111111111"})

    response = post(api, payload)

    (result,) = response.json()["results"]
    assert result["reasons"] == [{"path": "data.card_last4", "reason": LAST4_TOO_LONG_REASON}]
    assert not Event.objects.exists()
    assert "41111111" not in database_text()


def test_a_card_number_as_the_event_id_is_rejected_and_stored_nowhere(api, card):
    response = post(api, event_payload(account=card, id="4111111111111111"))

    (result,) = response.json()["results"]
    assert result == {
        "index": 0,
        "id": None,
        "status": "rejected",
        "reasons": [{"path": "id", "reason": CARD_NUMBER_REASON}],
    }
    assert "41111111" not in database_text()


def test_a_long_numeric_event_id_that_is_no_card_number_is_accepted(api, card):
    response = post(api, event_payload(account=card, id="20261124000000000017"))

    (result,) = response.json()["results"]
    assert result["status"] == "accepted"
    assert api.get(f"{EVENTS}/20261124000000000017").json()["id"] == "20261124000000000017"


def test_the_audit_entry_of_a_post_carries_its_request_id(api, card):
    post(api, event_payload(account=card), HTTP_X_REQUEST_ID="req-core-0001")

    (entry,) = AuditEvent.objects.filter(action="events.ingested")
    assert entry.request_id == "req-core-0001"
    assert selectors.audit_chain_verify(entry.chain.scope).intact


def test_an_unknown_customer_or_account_is_rejected(api, card):
    other = AccountFactory(customer=CustomerFactory(bank=card.bank, external_id="cu-bob"))
    batch = [
        event_payload(account=card, customer_id="cu-nobody"),
        event_payload(account=card, account_id=other.external_id),
    ]

    results = post(api, {"events": batch}).json()["results"]

    assert results[0]["reasons"] == [
        {"path": "customer_id", "reason": "is not a customer of this bank"}
    ]
    assert results[1]["reasons"] == [
        {"path": "account_id", "reason": "is not an account of this customer"}
    ]


def test_a_key_cannot_post_events_for_another_banks_customer(api, card):
    elsewhere = AccountFactory(customer=CustomerFactory(external_id="cu-elsewhere"))

    (result,) = post(api, event_payload(account=elsewhere)).json()["results"]

    assert result["status"] == "rejected"
    assert result["reasons"] == [
        {"path": "customer_id", "reason": "is not a customer of this bank"}
    ]
    assert not Event.objects.exists()


def test_the_same_event_id_at_two_banks_is_two_events(api, card):
    other = AccountFactory(customer=CustomerFactory(external_id="cu-x"))
    EventFactory(bank=other.bank, account=other, event_id="evt-shared")

    (result,) = post(api, event_payload(account=card, id="evt-shared")).json()["results"]

    assert result["status"] == "accepted"


def test_a_non_object_in_a_batch_is_rejected_alone(api, card):
    response = post(api, {"events": ["hello", event_payload(account=card)]})

    results = response.json()["results"]
    assert results[0] == {
        "index": 0,
        "id": None,
        "status": "rejected",
        "reasons": [{"path": "", "reason": "must be an event object"}],
    }
    assert results[1]["status"] == "accepted"


def test_malformed_json_is_a_400_problem_and_writes_nothing(api, card):
    response = api.post(EVENTS, '{"events": [', content_type="application/json")

    assert_problem(response, 400)
    assert not Event.objects.exists()
    assert not AuditEvent.objects.filter(action="events.ingested").exists()


def test_a_body_that_is_not_json_is_a_415_problem(api, card):
    response = api.post(EVENTS, "id=1", content_type="application/x-www-form-urlencoded")

    assert_problem(response, 415)


@pytest.mark.parametrize(
    "body", [[{"id": "x"}], {"events": []}, {"events": {}}, {"events": [], "more": 1}, "text"]
)
def test_a_wrong_envelope_is_a_400_problem(api, card, body):
    body = assert_problem(post(api, body), 400)

    assert body["errors"]
    assert not Event.objects.exists()


def test_an_empty_body_is_a_400_problem_and_writes_nothing(api, card):
    response = api.post(EVENTS, b"", content_type="application/json")

    body = assert_problem(response, 400)
    assert body["errors"] == [
        {"path": "", "reason": 'is empty: send one event, or {"events": [...]}'}
    ]
    assert not Event.objects.exists()
    assert not Outcome.objects.exists()


@pytest.mark.parametrize("body", [{}, {"note": "hello"}])
def test_an_object_with_no_event_field_is_a_400_problem_not_a_rejected_event(api, card, body):
    body = assert_problem(post(api, body), 400)

    assert body["errors"] == [
        {
            "path": "",
            "reason": 'must be one event or {"events": [...]}; it has no field of an event',
        }
    ]
    assert not Event.objects.exists()
    assert not Outcome.objects.exists()


def test_an_event_and_a_batch_in_one_body_is_a_400_problem_saying_so(api, card):
    event = event_payload(account=card)

    response = post(api, {**event, "events": [event_payload(account=card)]})

    body = assert_problem(response, 400)
    assert body["errors"] == [
        {
            "path": "",
            "reason": 'holds both an event\'s fields and "events": send one event, '
            'or a batch with only "events"',
        }
    ]
    assert not Event.objects.exists()


def test_more_than_1000_events_is_a_413_problem_and_writes_nothing(api, card):
    batch = [event_payload(account=card) for _ in range(1001)]

    body = assert_problem(post(api, {"events": batch}), 413)

    assert body["code"] == "too_many_events"
    assert not Event.objects.exists()


def test_a_body_over_the_size_limit_is_a_413_problem(api, card, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    batch = [event_payload(account=card) for _ in range(10)]

    assert_problem(post(api, {"events": batch}), 413)


def test_one_audit_entry_records_the_batch_with_counts(api, card):
    batch = [event_payload(account=card), event_payload(account=card, data={"amount": "x"})]

    post(api, {"events": batch})

    (entry,) = AuditEvent.objects.filter(action="events.ingested")
    assert entry.actor_type == "api_key"
    assert entry.details == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "accepted_types": {"transaction.posted": 1},
    }


def test_accepted_events_are_signalled_after_commit(api, card, django_capture_on_commit_callbacks):
    received = []

    def listener(sender, event_ids, **kwargs):
        received.append(event_ids)

    events_accepted.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            post(api, {"events": [event_payload(account=card), event_payload(account=card)]})
            assert received == []
    finally:
        events_accepted.disconnect(listener)

    assert received == [sorted(Event.objects.values_list("pk", flat=True))]


def test_a_1000_event_batch_takes_a_handful_of_queries(
    api, card, django_assert_max_num_queries, settings
):
    batch = [event_payload(account=card) for _ in range(1000)]

    with django_assert_max_num_queries(20):
        response = post(api, {"events": batch})

    assert response.json()["accepted"] == 1000
    assert Outcome.objects.filter(type="event.accepted").count() == 1000


def test_a_revoked_key_is_refused(api, issued, card):
    api_key_revoke(actor=Actor.system("test"), api_key=issued.api_key)

    assert_problem(post(api, event_payload(account=card)), 401)
    assert not Event.objects.exists()


def test_a_missing_key_is_refused(card):
    assert_problem(APIClient().post(EVENTS, event_payload(account=card), format="json"), 401)


def test_an_event_can_be_looked_up_by_the_banks_id(api, card):
    payload = event_payload("fraud.alert", account=card)
    post(api, payload)

    response = api.get(f"{EVENTS}/{payload['id']}")

    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "processed"
    assert body["notifications"] == []  # nobody is linked
    assert (body["customer_id"], body["account_id"], body["data"]) == (
        "cu-ana",
        "visa-001",
        payload["data"],
    )


def test_another_banks_event_is_not_found(api, card):
    other_bank = BankFactory()
    other = AccountFactory(customer=CustomerFactory(bank=other_bank))
    EventFactory(bank=other_bank, account=other, event_id="evt-theirs")
    other_key = api_key_for(other_bank)

    mine = api.get(f"{EVENTS}/evt-theirs")
    theirs = APIClient().get(
        f"{EVENTS}/evt-theirs", HTTP_AUTHORIZATION=f"Bearer {other_key.secret}"
    )

    assert_problem(mine, 404)
    assert theirs.status_code == 200


def test_the_answer_is_json_with_no_value_echoed_for_a_refused_type(api, card):
    response = post(api, event_payload(account=card, type="card 4111111111111111"))

    assert "4111" not in json.dumps(response.json())


@pytest.mark.parametrize("event_type", [{}, [], {"a": 1}, ["transaction.posted"], 7, True])
def test_a_type_that_is_not_a_string_is_rejected_not_crashed_on(api, card, event_type):
    response = post(api, {"events": [event_payload(account=card, type=event_type)]})

    assert response.status_code == 202
    (result,) = response.json()["results"]
    assert result["status"] == "rejected"
    assert result["reasons"] == [
        {
            "path": "type",
            "reason": "must be one of transaction.posted, balance.updated, fraud.alert, "
            "receipt.issued, shipment.updated",
        }
    ]
    assert not Event.objects.exists()


def test_absurdly_nested_json_is_a_400_problem(api, card):
    response = api.post(EVENTS, "[" * 100_000 + "]" * 100_000, content_type="application/json")

    assert_problem(response, 400)


def test_deeply_nested_data_is_rejected_not_crashed_on(api, card):
    nested = "x"
    for _ in range(400):
        nested = [nested]

    response = post(api, event_payload(account=card, data={"description": nested}))

    assert response.json()["results"][0]["status"] == "rejected"


EVENT_TYPES = ["transaction.posted", "fraud.alert", "balance.updated", "shipment.updated"]


def _batch_queries(api, people, size: int) -> int:
    batch = [
        event_payload(EVENT_TYPES[n % len(EVENT_TYPES)], account=people[n % len(people)][0])
        for n in range(size)
    ]
    # Right before: the key's last use (written once a minute) and the settings read once a
    # few seconds are fresh, so both measured posts find the same state, however slow.
    post(api, event_payload(account=people[-1][0]))
    with CaptureQueriesContext(connection) as queries:
        response = post(api, {"events": batch})
    assert response.json()["accepted"] == size
    return len(queries)


def test_the_queries_of_a_post_do_not_grow_with_the_batch(linked, linked_api):
    post(linked_api, event_payload(account=linked.card))  # the key's last use is recorded
    few = [linked.person() for _ in range(2)]
    many = [linked.person() for _ in range(20)]

    small = _batch_queries(linked_api, few, len(EVENT_TYPES))
    large = _batch_queries(linked_api, many, 1000)

    assert Notification.objects.filter(psid=many[0][1].psid).count() == 50
    assert large == small
