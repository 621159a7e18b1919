"""The core-banking simulator: its options, its events, and how it talks to the API."""

import io
import random
import re
from decimal import Decimal

import httpx
import pytest
from django.core.management import CommandError, call_command

from demo.roster import roster
from demo.simulator import (
    EVENT_TYPES,
    CoreApi,
    CoreApiError,
    CoreSimulator,
    parse_mix,
)
from linking.models import Customer
from notifications.models import Event
from notifications.validation import event_check
from portal.tests.factories import BankFactory, api_key_for

KEY = "bsk_abcdefgh_0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"url": "ftp://127.0.0.1:8000"}, "--url must be an http(s) address"),
        ({"url": "127.0.0.1:8000"}, "--url must be an http(s) address"),
        ({"rate": 0}, "--rate must be above 0"),
        ({"rate": 5000}, "--rate must be above 0 and at most 1000"),
        ({"batch": 0}, "--batch must be from 1 to 1000"),
        ({"batch": 1001}, "--batch must be from 1 to 1000"),
        ({"customers": 0}, "--customers must be from 1 to 200"),
        ({"customers": 201}, "--customers must be from 1 to 200"),
        ({"fraud_every": -1}, "--fraud-every must be 0"),
        ({"count": 0}, "--count must be at least 1"),
        ({"duration": 0}, "--duration must be above 0"),
        ({"tally_every": 0}, "--tally-every must be above 0"),
        ({"mix": "transaction.posted=1,wire.sent=2"}, "'wire.sent' is not an event type"),
        ({"mix": "transaction.posted"}, "'transaction.posted' is not TYPE=WEIGHT"),
        ({"mix": "transaction.posted=lots"}, "the weight of transaction.posted must be a number"),
        ({"mix": "fraud.alert=-1"}, "the weight of fraud.alert must be from 0 to 1000"),
        ({"mix": "fraud.alert=0"}, "at least one event type needs a weight above 0"),
        ({"api_key": "not-a-key"}, "does not look like bsk_<prefix>_<secret>"),
    ],
)
def test_bad_options_are_refused_with_the_reason(options, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("simulate_core", **{"api_key": KEY, **options})


def test_without_a_key_it_says_where_to_get_one(tmp_path):
    missing = tmp_path / "core-api-key"
    with pytest.raises(CommandError, match=re.escape("run `manage.py seed_demo`")):
        call_command("simulate_core", key_file=str(missing))


def test_nothing_answering_is_a_clear_error():
    with pytest.raises(CommandError, match=re.escape("Nothing answers at http://127.0.0.1:9")):
        call_command("simulate_core", url="http://127.0.0.1:9", api_key=KEY, count=1)


def test_mix_names_weights_and_leaves_the_rest_at_zero():
    assert parse_mix("transaction.posted=6, fraud.alert=0.5") == {
        "transaction.posted": 6.0,
        "balance.updated": 0.0,
        "receipt.issued": 0.0,
        "shipment.updated": 0.0,
        "fraud.alert": 0.5,
    }


def test_every_simulated_event_passes_the_api_validation():
    simulator = CoreSimulator(
        customers=roster(6),
        mix=dict.fromkeys(EVENT_TYPES, 1.0),
        fraud_every=7,
        rng=random.Random(3),
    )
    events = [simulator.next_event() for _ in range(600)]

    problems = [(e, event_check(e, index=0).reasons) for e in events]
    assert [p for p in problems if p[1]] == []
    assert {e["type"] for e in events} == set(EVENT_TYPES)
    assert len({e["id"] for e in events}) == 600
    assert [e["type"] for e in events[6::7]] == ["fraud.alert"] * len(events[6::7])


def test_no_run_makes_ids_the_api_takes_for_card_numbers():
    refused = []
    for seed in range(300):  # each simulator draws its own run id for its event ids
        simulator = CoreSimulator(
            customers=roster(2), mix={"receipt.issued": 1.0}, fraud_every=2, rng=random.Random(seed)
        )
        for _ in range(12):
            event = simulator.next_event()
            if event_check(event, index=0).reasons:
                refused.append(event["id"])
    assert refused == []


def test_balance_updates_follow_the_transactions_posted():
    customer = roster(1)[0]
    simulator = CoreSimulator(
        customers=[customer],
        mix={"transaction.posted": 1.0},
        rng=random.Random(5),
    )
    spent: dict[str, Decimal] = {}
    for _ in range(20):
        event = simulator.next_event()
        account = event["account_id"]
        spent[account] = spent.get(account, Decimal(0)) + Decimal(event["data"]["amount"])
    simulator.mix = {"balance.updated": 1.0}
    reported = {}
    for _ in range(len(spent)):
        event = simulator.next_event()
        reported[event["account_id"]] = Decimal(event["data"]["ledger"])

    opening = {a.id: a.balance for a in customer.accounts}
    assert reported == {account: opening[account] + total for account, total in spent.items()}


def test_shipments_follow_the_orders_receipts_announced():
    simulator = CoreSimulator(
        customers=roster(2),
        mix={"shipment.updated": 1.0},
        rng=random.Random(1),
    )
    events = [simulator.next_event() for _ in range(5)]

    assert events[0]["type"] == "receipt.issued"  # no order yet to ship
    order = events[0]["data"]["order_number"]
    assert [e["data"]["order_number"] for e in events[1:]] == [order] * 4
    assert [e["data"]["status"] for e in events[1:]] == [
        "label_created",
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]


class Answers:
    """The events API at the HTTP boundary: answers in order, records what was asked."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0)


def accepted(count: int) -> httpx.Response:
    results = [{"index": i, "id": f"e{i}", "status": "accepted"} for i in range(count)]
    return httpx.Response(202, json={"accepted": count, "results": results})


def api_with(answers: Answers, slept: list[float]) -> CoreApi:
    client = httpx.Client(base_url="http://core.test", transport=httpx.MockTransport(answers))
    return CoreApi(client, sleep=slept.append)


def test_a_429_is_waited_out_for_its_retry_after_then_posted_again():
    answers = Answers(
        httpx.Response(429, headers={"Retry-After": "3"}, json={"detail": "slow down"}),
        accepted(2),
    )
    slept: list[float] = []
    api = api_with(answers, slept)
    events = CoreSimulator(customers=roster(1), rng=random.Random(2))
    batch = [events.next_event(), events.next_event()]

    report = api.events_post(batch)

    assert report["accepted"] == 2
    assert slept == [3.0]
    assert api.tally.waits == 1
    assert api.tally.outcomes["accepted"] == 2
    first, second = answers.requests
    assert first.content == second.content
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_transient_failures_are_retried_with_backoff():
    answers = Answers(
        httpx.Response(503, json={"detail": "down"}),
        httpx.Response(502, json={"detail": "down"}),
        accepted(1),
    )
    slept: list[float] = []
    api = api_with(answers, slept)
    event = CoreSimulator(customers=roster(1), rng=random.Random(2)).next_event()

    api.events_post([event])

    assert slept == [0.5, 1.0]
    assert api.tally.retries == 2


def test_a_refusal_stops_with_the_problem_detail():
    answers = Answers(httpx.Response(401, json={"detail": "Unknown or revoked API key."}))
    api = api_with(answers, [])

    with pytest.raises(CoreApiError, match="401: Unknown or revoked API key"):
        api.whoami()


@pytest.mark.django_db(transaction=True)
def test_events_posted_to_the_running_portal_are_accepted(live_server, tmp_path):
    bank = BankFactory(slug="harbour", notification_defaults=True)
    key = api_key_for(bank).secret
    key_file = tmp_path / "core-api-key"
    key_file.write_text(key + "\n")
    out = io.StringIO()

    call_command(
        "simulate_core",
        url=live_server.url,
        key_file=str(key_file),
        count=30,
        rate=500,
        batch=7,
        fraud_every=5,
        seed=11,
        tally_every=60,
        stdout=out,
    )

    events = Event.objects.filter(bank=bank)
    assert events.count() == 30
    assert events.filter(type="fraud.alert").count() == 6
    assert {e.customer.external_id for e in events} <= {c.id for c in roster(4)}
    assert Customer.objects.filter(bank=bank).count() == 4
    last = out.getvalue().strip().splitlines()[-1]
    assert "30 events" in last
    assert "accepted 30, duplicate 0, rejected 0" in last


@pytest.mark.django_db(transaction=True)
def test_a_portal_without_the_sandbox_gets_no_simulated_events(live_server, settings):
    settings.ROOT_URLCONF = "portal.urls"  # what production serves: no /sandbox/
    bank = BankFactory(slug="harbour")

    with pytest.raises(CommandError, match="has no Messenger sandbox"):
        call_command(
            "simulate_core", url=live_server.url, api_key=api_key_for(bank).secret, count=5
        )

    assert not Event.objects.exists()
    assert not Customer.objects.exists()
