"""Rules -> outbox: accepted events become notifications in the same transaction."""

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from linking.models import Consent
from notifications.models import Event, Notification, Recipient
from notifications.tests.factories import event_payload, link_for
from portal.models import MessageTemplate, NotificationPolicy

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
State, Reason = Notification.State, Notification.Reason


def post(api, *events):
    body = events[0] if len(events) == 1 else {"events": list(events)}
    response = api.post(EVENTS, body, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def balance(account, available, occurred_at=None, **extra):
    payload = event_payload(
        "balance.updated", account=account, data={"available": available, "ledger": available}
    )
    if occurred_at is not None:
        payload["occurred_at"] = occurred_at.isoformat().replace("+00:00", "Z")
    payload.update(extra)
    return payload


def test_a_linked_customer_gets_one_notification_rendered_in_their_language(linked, linked_api):
    payload = event_payload("fraud.alert", account=linked.card)

    post(linked_api, payload)

    (notification,) = Notification.objects.all()
    event = Event.objects.get(event_id=payload["id"])
    assert (notification.event, notification.consent) == (event, linked.consent)
    assert (notification.page_id, notification.psid) == (
        linked.integration.page_id,
        linked.consent.psid,
    )
    assert (notification.state, notification.reason, notification.sequence) == (
        State.PENDING,
        Reason.QUEUED,
        1,
    )
    assert notification.next_attempt_at <= timezone.now()
    assert "€899.00" in notification.text and "ELECTRO-WORLD ONLINE" in notification.text
    assert "•••• 9012" in notification.text
    assert notification.data_categories == ["fraud_alerts"]
    assert event.status == Event.Status.PROCESSED


def test_an_event_outside_the_consented_scopes_writes_no_notification(linked, linked_api):
    linked.consent.scopes = ["balances"]
    linked.consent.save()

    post(linked_api, event_payload("transaction.posted", account=linked.card))

    assert not Notification.objects.exists()


def test_an_account_the_consent_does_not_cover_writes_no_notification(linked, linked_api):
    linked.consent.accounts.set([linked.checking])

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    "change",
    [
        {"status": Consent.Status.REVOKED},
        {"psid": ""},
        {"expires_at": timezone.now() - dt.timedelta(minutes=1)},
    ],
    ids=["revoked", "not-bound-to-messenger", "past-its-end"],
)
def test_only_active_links_get_notifications(linked, linked_api, change):
    Consent.objects.filter(pk=linked.consent.pk).update(**change)

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert not Notification.objects.exists()


def test_every_active_link_covering_the_account_gets_its_own(linked, linked_api):
    other_page = link_for(
        linked.customer,
        [linked.card],
        scopes=["fraud_alerts"],
        page_id="99887766",
        psid="5550001",
    )

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert {n.consent for n in Notification.objects.all()} == {linked.consent, other_page}


def test_a_new_notification_starts_fresh_in_its_bank_queued_when_created(linked, linked_api):
    before = timezone.now()
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    (n,) = Notification.objects.all()
    assert n.bank == linked.bank
    assert before <= n.created_at == n.queued_at <= timezone.now()
    assert (n.attempts, n.lease_owner, n.form, n.message_id) == (0, "", "", "")
    assert not (n.waiting or n.window_closed or n.uncertain)
    assert (n.state, n.sequence) == (State.PENDING, 1)


def test_a_disabled_update_type_writes_nothing(linked, linked_api):
    NotificationPolicy.objects.filter(bank=linked.bank, event_type="fraud.alert").update(
        enabled=False
    )

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert not Notification.objects.exists()


def test_a_transaction_below_the_bank_threshold_writes_nothing(linked, linked_api):
    NotificationPolicy.objects.filter(bank=linked.bank, event_type="transaction.posted").update(
        min_amount="100.00"
    )

    post(linked_api, event_payload(account=linked.card, data={"amount": "-42.10"}))
    post(linked_api, event_payload(account=linked.card, data={"amount": "-150.00"}))

    (notification,) = Notification.objects.all()
    assert notification.event.data["amount"] == "-150.00"


def test_a_balance_is_sent_only_below_the_bank_low_balance_line(linked, linked_api):
    NotificationPolicy.objects.filter(bank=linked.bank, event_type="balance.updated").update(
        low_balance_below="50.00"
    )

    post(linked_api, balance(linked.checking, "80.00"))
    post(linked_api, balance(linked.checking, "20.00"))

    (notification,) = Notification.objects.all()
    assert notification.event.data["available"] == "20.00"


def test_quiet_hours_defer_a_transaction_until_they_end(linked, linked_api):
    always_quiet(linked.bank, "transaction.posted")

    post(linked_api, event_payload("transaction.posted", account=linked.card))

    (notification,) = Notification.objects.all()
    assert (notification.state, notification.reason) == (State.PENDING, Reason.QUIET_HOURS)
    assert notification.next_attempt_at > timezone.now()


def test_quiet_hours_never_hold_back_a_fraud_alert(linked, linked_api):
    always_quiet(linked.bank, "transaction.posted")
    NotificationPolicy.objects.filter(bank=linked.bank, event_type="fraud.alert").update(
        quiet_hours_start=None, quiet_hours_end=None
    )

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    (notification,) = Notification.objects.all()
    assert notification.reason == Reason.QUEUED
    assert notification.next_attempt_at <= timezone.now()


def always_quiet(bank, event_type):
    """Quiet hours that hold now, ending in about an hour (in the bank's time zone)."""
    from zoneinfo import ZoneInfo

    local = timezone.now().astimezone(ZoneInfo(bank.timezone))
    NotificationPolicy.objects.filter(bank=bank, event_type=event_type).update(
        quiet_hours_start=(local - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_hours_end=(local + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
    )


def test_a_newer_balance_update_supersedes_the_pending_one(linked, linked_api):
    now = timezone.now()
    post(linked_api, balance(linked.checking, "100.00", now - dt.timedelta(minutes=2)))
    post(linked_api, balance(linked.checking, "80.00", now - dt.timedelta(minutes=1)))

    older, newer = Notification.objects.order_by("event__occurred_at")
    assert (older.state, older.reason) == (State.SUPERSEDED, Reason.SUPERSEDED)
    assert newer.state == State.PENDING and "€80.00" in newer.text


def test_a_balance_update_that_arrives_late_is_itself_superseded(linked, linked_api):
    now = timezone.now()
    post(linked_api, balance(linked.checking, "80.00", now - dt.timedelta(minutes=1)))
    post(linked_api, balance(linked.checking, "100.00", now - dt.timedelta(minutes=5)))

    late = Notification.objects.get(text__contains="€100.00")
    current = Notification.objects.get(text__contains="€80.00")
    assert (late.state, current.state) == (State.SUPERSEDED, State.PENDING)


def test_balance_updates_of_one_batch_keep_only_the_newest(linked, linked_api):
    now = timezone.now()
    post(
        linked_api,
        balance(linked.checking, "1.00", now - dt.timedelta(minutes=3)),
        balance(linked.checking, "3.00", now - dt.timedelta(minutes=1)),
        balance(linked.checking, "2.00", now - dt.timedelta(minutes=2)),
        balance(linked.card, "9.00", now - dt.timedelta(minutes=2)),
    )

    pending = Notification.objects.filter(state=State.PENDING)
    assert sorted(n.text.split(" is now ")[1][:5] for n in pending) == ["€3.00", "€9.00"]
    assert Notification.objects.filter(state=State.SUPERSEDED).count() == 2


def test_a_superseded_balance_update_wakes_what_waited_behind_it(linked, linked_api):
    now = timezone.now()
    post(linked_api, balance(linked.checking, "100.00", now - dt.timedelta(minutes=2)))
    post(linked_api, event_payload("transaction.posted", account=linked.checking))
    # A worker found the transaction behind the balance update and set it waiting.
    Notification.objects.filter(event_type="transaction.posted").update(waiting=True)

    post(linked_api, balance(linked.checking, "80.00", now - dt.timedelta(minutes=1)))

    superseded = Notification.objects.get(text__contains="€100.00")
    behind = Notification.objects.get(event_type="transaction.posted")
    assert superseded.state == State.SUPERSEDED
    assert (behind.state, behind.waiting) == (State.PENDING, False)


def test_superseding_a_stored_balance_update_costs_no_round_trip_of_its_own(linked, linked_api):
    now = timezone.now()
    post(linked_api, balance(linked.checking, "100.00", now - dt.timedelta(minutes=3)))
    with CaptureQueriesContext(connection) as first:
        post(linked_api, balance(linked.card, "5.00", now - dt.timedelta(minutes=2)))
    with CaptureQueriesContext(connection) as superseding:
        post(linked_api, balance(linked.checking, "80.00", now - dt.timedelta(minutes=1)))

    # Both read the open balance updates of their account; superseding the one found
    # and waking whoever waited behind it go with the statements writing the new one.
    assert len(superseding) == len(first)
    assert Notification.objects.get(text__contains="€100.00").state == State.SUPERSEDED


def test_a_sent_balance_update_is_never_superseded(linked, linked_api):
    now = timezone.now()
    post(linked_api, balance(linked.checking, "100.00", now - dt.timedelta(minutes=2)))
    Notification.objects.update(state=State.SENT)
    post(linked_api, balance(linked.checking, "80.00", now - dt.timedelta(minutes=1)))

    assert sorted(Notification.objects.values_list("state", flat=True)) == [
        State.PENDING,
        State.SENT,
    ]


def test_a_persons_notifications_are_numbered_in_event_order(linked, linked_api):
    now = timezone.now()
    first = event_payload("transaction.posted", account=linked.card)
    second = event_payload("fraud.alert", account=linked.card)
    first["occurred_at"] = (now - dt.timedelta(minutes=2)).isoformat()
    second["occurred_at"] = (now - dt.timedelta(minutes=3)).isoformat()
    post(linked_api, first, second)
    post(linked_api, event_payload("shipment.updated", account=linked.card))

    ordered = Notification.objects.order_by("sequence")
    assert [n.event_type for n in ordered] == [
        "fraud.alert",
        "transaction.posted",
        "shipment.updated",
    ]
    assert [n.sequence for n in ordered] == [1, 2, 3]
    assert Recipient.objects.get(psid=linked.consent.psid).last_sequence == 3


def test_a_reposted_event_writes_no_second_notification(linked, linked_api):
    payload = event_payload("fraud.alert", account=linked.card)
    post(linked_api, payload)

    post(linked_api, payload)

    assert Notification.objects.count() == 1


def test_a_card_payment_message_names_the_amount_the_merchant_and_the_card(linked, linked_api):
    payload = event_payload("transaction.posted", account=linked.card)  # -42.10 EUR, card 9012

    post(linked_api, payload)

    (notification,) = Notification.objects.all()
    assert notification.data_categories == ["transactions"]
    assert notification.text == "You paid €42.10 at Mercado Central with your card •••• 9012."


def test_a_payment_without_a_merchant_shows_its_description(linked, linked_api):
    payload = event_payload("transaction.posted", account=linked.card)
    del payload["data"]["merchant"]

    post(linked_api, payload)

    (notification,) = Notification.objects.all()
    assert notification.text == "You paid €42.10 with your card •••• 9012: Groceries."
    assert "{" not in notification.text and ": ." not in notification.text


def test_without_a_template_the_notification_is_held_with_its_reason(linked, linked_api):
    MessageTemplate.objects.filter(bank=linked.bank, event_type="fraud.alert").delete()

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    (notification,) = Notification.objects.all()
    assert (notification.state, notification.reason) == (State.HELD, Reason.NO_TEMPLATE)
    assert "no fraud.alert message template" in notification.detail


def test_a_1000_event_batch_for_linked_people_takes_a_handful_of_queries(linked, linked_api):
    people = [linked.person() for _ in range(20)]
    batch = [
        event_payload(kind, account=people[n % len(people)][0])
        for n, kind in zip(
            range(1000),
            ["transaction.posted", "fraud.alert", "balance.updated", "shipment.updated"] * 250,
            strict=True,
        )
    ]

    with CaptureQueriesContext(connection) as queries:
        body = post(linked_api, {"events": batch})

    assert body["accepted"] == 1000
    assert Notification.objects.count() == 1000
    assert len(queries) <= 40, [q["sql"][:120] for q in queries]


def test_a_large_batch_is_stored_as_the_same_events_posted_one_by_one(linked, linked_api):
    from core.db.rows import ARRAY_MIN_ROWS
    from notifications.models import Outcome

    odd = 'Caf\u00e9 "Le {Coin}", 50% \\ off; it\'s NULL'
    shown = {  # a text field each type's message shows
        "transaction.posted": "merchant",
        "fraud.alert": "merchant",
        "shipment.updated": "carrier",
        "receipt.issued": "merchant",
    }
    count = ARRAY_MIN_ROWS + 4
    payloads = []
    for n in range(count):
        kind = list(shown)[n % len(shown)]
        payloads.append(event_payload(kind, account=linked.card, data={shown[kind]: f"{odd} {n}"}))
    post(linked_api, *payloads)  # many rows: columns go as arrays
    for payload in payloads:  # one at a time: rows go as VALUES
        post(linked_api, {**payload, "id": f"{payload['id']}-alone"})

    def stored(alone: bool):
        """What was stored of each event, by the id posted; and the person's sequence
        numbers the notifications took."""
        events = Event.objects.filter(event_id__endswith="-alone")
        if not alone:
            events = Event.objects.exclude(pk__in=events)
        rows = {}
        for e in events:
            (n,) = e.notifications.all()
            (outcome,) = Outcome.objects.filter(event=e)
            rows[e.event_id.removesuffix("-alone")] = (
                (e.type, e.customer_id, e.account_id, e.occurred_at, e.data, e.status),
                (n.text, n.state, n.reason, n.locale, n.data_categories, n.page_id, n.psid),
                (n.waiting, n.attempts, n.event_type, n.consent_id, n.account_id),
                (outcome.type, outcome.event_ref.removesuffix("-alone"), outcome.event_type),
            )
        sequences = sorted(
            Notification.objects.filter(event__in=events).values_list("sequence", flat=True)
        )
        return rows, sequences

    in_batch, numbered = stored(alone=False)
    alone, numbered_alone = stored(alone=True)
    assert len(in_batch) == count
    assert all(odd in notification[0] for _, notification, *_ in in_batch.values())
    assert in_batch == alone
    assert numbered == list(range(1, count + 1))
    assert numbered_alone == list(range(count + 1, 2 * count + 1))


@pytest.mark.skipif(connection.vendor != "postgresql", reason="fill factors are PostgreSQL's")
def test_recipients_pages_keep_room_to_raise_their_counters_in_place():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reloptions FROM pg_class WHERE relname = %s", ["notifications_recipient"]
        )
        (options,) = cursor.fetchone()
    assert "fillfactor=50" in options
