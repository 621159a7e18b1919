"""Delivery: claims, the message form, errors by class, leases, order and the audit trail.

The Send API is faked at the messenger client boundary (an httpx MockTransport); the
database and Redis are real.
"""

import datetime as dt

import httpx
import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from linking import services as linking_services
from notifications import selectors, services
from notifications.models import DeliveryAttempt, Notification, Outcome, Recipient
from notifications.page_limits import page_buckets
from notifications.services.delivery import lease_owner_new
from notifications.services.delivery.claim import _claim
from notifications.tests.conftest import graph_error
from notifications.tests.factories import approved_utility_template, contact_for, event_payload
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.selectors import audit_chains_verify

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
State, Reason, Form = Notification.State, Notification.Reason, Notification.Form


def post(api, *events):
    response = api.post(EVENTS, {"events": list(events)}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def deliver(**kwargs):
    return services.deliveries_run(seconds=0, **kwargs)


def one() -> Notification:
    (notification,) = Notification.objects.all()
    return notification


# The message form


def test_inside_the_window_the_text_goes_out_as_a_free_form_update(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    report = deliver()

    (body,) = graph.sent
    assert body["messaging_type"] == "UPDATE" and "tag" not in body
    assert body["recipient"] == {"id": linked.consent.psid}
    assert "ELECTRO-WORLD ONLINE" in body["message"]["text"]
    notification = one()
    assert (notification.state, notification.form) == (State.SENT, Form.UPDATE)
    assert notification.message_id == "m_fake_1" and notification.sent_at is not None
    assert notification.lease_owner == "" and notification.attempts == 1
    assert report.count(State.SENT) == 1


def test_outside_the_window_the_approved_utility_template_is_used(linked, linked_api, graph):
    contact_for(linked.consent, hours_ago=30)
    utility = approved_utility_template(linked.bank, "fraud.alert")
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    deliver()

    (body,) = graph.sent
    assert body["messaging_type"] == "UTILITY"
    template = body["message"]["template"]
    assert (template["name"], template["language"]) == (utility.name, {"code": "en"})
    params = [p["text"] for p in template["components"][0]["parameters"]]
    assert "-€899.00" in params and "ELECTRO-WORLD ONLINE" in params
    assert one().form == Form.UTILITY


def test_outside_the_window_without_a_template_it_is_held_with_a_visible_reason(
    linked, linked_api, graph
):
    contact_for(linked.consent, hours_ago=30)
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    deliver()

    assert graph.sent == []
    notification = one()
    assert (notification.state, notification.reason) == (State.HELD, Reason.NO_ALLOWED_FORM)
    assert "24-hour window" in notification.detail


def test_a_held_notification_goes_out_when_the_person_writes_again(linked, linked_api, graph):
    contact_for(linked.consent, hours_ago=30)
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()
    contact_for(linked.consent)

    released = services.recipient_acted(
        bank_id=linked.bank.pk, page_id=linked.consent.page_id, psid=linked.consent.psid
    )
    deliver()

    assert released == 1
    assert one().state == State.SENT and graph.sent[0]["messaging_type"] == "UPDATE"


def test_never_a_message_tag(linked, linked_api, graph):
    contact_for(linked.consent, hours_ago=30)
    approved_utility_template(linked.bank, "transaction.posted")
    post(
        linked_api,
        event_payload("transaction.posted", account=linked.card),
        event_payload("fraud.alert", account=linked.card),
    )

    for _ in range(3):
        deliver()

    assert graph.sent and all(b["messaging_type"] != "MESSAGE_TAG" for b in graph.sent)
    assert all("tag" not in b for b in graph.sent)


# Consent at send time


def test_a_consent_revoked_between_enqueue_and_send_cancels_the_notification(
    linked, linked_api, graph
):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    linking_services.consent_revoke(
        consent=linked.consent, actor=Actor.system("test"), reason="Customer stopped sharing"
    )  # in this test's transaction the link_ended receiver never runs: the send re-checks

    deliver()

    assert graph.sent == []
    assert (one().state, one().reason) == (State.CANCELLED, Reason.LINK_ENDED)


def test_link_ended_cancels_every_open_notification_in_one_audited_step(linked, linked_api):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
    )
    Notification.objects.filter(event_type="fraud.alert").update(state=State.HELD)

    cancelled = services.notifications_cancel_for_link(consent_id=linked.consent.pk)

    assert cancelled == 2
    assert set(Notification.objects.values_list("state", flat=True)) == {State.CANCELLED}
    (entry,) = AuditEvent.objects.filter(action="notifications.cancelled")
    assert entry.details["cancelled"] == 2 and entry.target_id == str(linked.consent.pk)


# Errors by class


@pytest.fixture
def alert(linked, linked_api):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    return one()


def test_a_transient_error_retries_later_with_backoff(alert, graph, settings):
    graph.answers = [graph_error(2, status=500, message="An unexpected error has occurred")]

    deliver()

    notification = one()
    assert (notification.state, notification.reason) == (State.PENDING, Reason.RETRYING)
    base = settings.NOTIFICATIONS_RETRY_BASE_SECONDS
    wait = (notification.next_attempt_at - timezone.now()).total_seconds()
    assert base / 2 - 1 <= wait <= base
    (attempt,) = DeliveryAttempt.objects.all()
    assert (attempt.outcome, attempt.error_code, attempt.number) == ("transient", 2, 1)
    assert not Outcome.objects.filter(type__startswith="notification.").exists()


def test_a_throttle_retries_after_the_wait_and_stops_the_page(alert, graph, linked):
    usage = (
        '{"1122334455":[{"type":"messenger","call_count":100,"estimated_time_to_regain_access":2}]}'
    )
    graph.answers = [
        graph_error(613, message="(#613) rate limit", headers={"X-Business-Use-Case-Usage": usage})
    ]

    deliver()

    notification = one()
    assert (notification.state, notification.reason) == (State.PENDING, Reason.THROTTLED)
    assert notification.next_attempt_at >= timezone.now() + dt.timedelta(seconds=110)
    grant = page_buckets().take(linked.integration.page_id, 1)
    assert grant.granted == 0 and grant.wait > 100


def test_outside_the_window_after_all_switches_to_the_utility_template(alert, graph, linked):
    approved_utility_template(linked.bank, "fraud.alert")
    graph.answers = [graph_error(10, 2018278, message="(#10) outside of allowed window")]

    deliver()
    deliver()

    assert [b["messaging_type"] for b in graph.sent] == ["UPDATE", "UTILITY"]
    assert (one().state, one().form, one().attempts) == (State.SENT, Form.UTILITY, 2)


def test_a_person_who_cannot_be_reached_fails_and_is_marked_unreachable(
    alert, graph, linked, linked_api
):
    graph.answers = [graph_error(551, 1545041, message="This person isn't available")]

    deliver()
    post(linked_api, event_payload("transaction.posted", account=linked.card))
    deliver()

    first, second = Notification.objects.order_by("sequence")
    assert (first.state, first.reason) == (State.FAILED, Reason.PERSON_UNAVAILABLE)
    assert (second.state, second.reason) == (State.FAILED, Reason.PERSON_UNAVAILABLE)
    assert len(graph.sent) == 1  # nothing more is sent to them
    assert Recipient.objects.get(psid=linked.consent.psid).unreachable_at is not None
    assert Outcome.objects.filter(type="notification.failed").count() == 2


def test_a_bad_token_pauses_the_integration_and_stops_the_banks_sends(
    alert, graph, linked, linked_api
):
    graph.answers = [graph_error(190, message="Invalid OAuth access token")]

    deliver()
    post(linked_api, event_payload("transaction.posted", account=linked.card))
    deliver()

    integration = MessengerIntegration.objects.get(bank=linked.bank)
    assert integration.status == MessengerIntegration.Status.PAUSED
    assert "access token" in integration.status_reason
    assert len(graph.sent) == 1
    assert set(Notification.objects.values_list("state", "reason")) == {
        (State.PENDING, Reason.INTEGRATION_PAUSED),
        (State.PENDING, Reason.QUEUED),
    }
    assert AuditEvent.objects.filter(action="integration.paused").count() == 1


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (graph_error(100, message="(#100) Invalid parameter"), "bad_request"),
        (graph_error(100, 2018001, message="template not approved"), "bad_request"),
        (graph_error(200, 2018028, message="app not live"), "config"),
    ],
    ids=["bad-request", "template-not-approved", "permission"],
)
def test_a_refused_request_is_dead_lettered_at_once(alert, graph, answer, outcome):
    graph.answers = [answer]

    deliver()

    notification = one()
    assert (notification.state, notification.reason) == (State.DEAD, Reason.REFUSED)
    assert DeliveryAttempt.objects.get().outcome == outcome
    assert Outcome.objects.get(type="notification.dead").notification == notification


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadTimeout("timed out"),
        httpx.Response(200, json={"recipient_id": "x"}),
    ],
    ids=["connection-lost-in-flight", "success-without-a-message-id"],
)
def test_an_answer_that_may_hide_a_sent_message_is_never_resent_blindly(
    alert, graph, answer, linked
):
    graph.answers = [answer]

    deliver()
    deliver()

    assert len(graph.sent) == 1
    notification = one()
    # It waits for the message's echo (tests/test_echoes.py), not resent, not dead-lettered.
    assert (notification.state, notification.reason) == (State.PENDING, Reason.AWAITING_ECHO)
    assert notification.uncertain and not notification.resent
    assert notification.next_attempt_at >= timezone.now() + dt.timedelta(seconds=55)
    assert selectors.uncertain_send_count(bank=linked.bank) == 1
    entry = AuditEvent.objects.get(action="notification.send_uncertain")
    assert entry.data_categories == ["fraud_alerts"]


def test_an_exhausted_retry_budget_dead_letters(alert, graph, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 2
    graph.answers = [graph_error(1, status=500), graph_error(1, status=500)]

    deliver()
    Notification.objects.update(next_attempt_at=timezone.now())
    deliver()

    notification = one()
    assert (notification.state, notification.reason) == (State.DEAD, Reason.BUDGET_EXHAUSTED)
    assert notification.attempts == 2 and DeliveryAttempt.objects.count() == 2


def test_a_notification_older_than_the_budgets_hours_is_dead_lettered_unsent(alert, graph):
    Notification.objects.update(queued_at=timezone.now() - dt.timedelta(days=2))

    deliver()

    assert graph.sent == []
    assert (one().state, one().reason) == (State.DEAD, Reason.BUDGET_EXHAUSTED)


# The record of each send


def test_each_send_is_recorded_audited_and_reported_in_the_outcome_feed(linked, linked_api, graph):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("balance.updated", account=linked.checking),
    )

    deliver()
    deliver()  # one person: one message at a time

    assert DeliveryAttempt.objects.filter(outcome="sent").count() == 2
    entries = AuditEvent.objects.filter(action="notification.sent").order_by("seq")
    assert [e.target_id for e in entries] == [str(linked.consent.pk)] * 2
    assert sorted(c for e in entries for c in e.data_categories) == ["balances", "fraud_alerts"]
    assert {e.details["message_id"] for e in entries} == {"m_fake_1", "m_fake_2"}
    assert all(report.intact for report in audit_chains_verify(bank=linked.bank))
    feed = Outcome.objects.filter(type="notification.sent")
    assert {(o.notification.event_type, o.event_ref) for o in feed} == {
        (n.event_type, n.event.event_id) for n in Notification.objects.all()
    }


def test_the_event_lookup_lists_its_notifications(linked, linked_api, graph):
    payload = event_payload("fraud.alert", account=linked.card)
    post(linked_api, payload)
    deliver()

    body = linked_api.get(f"{EVENTS}/{payload['id']}").json()

    (row,) = body["notifications"]
    assert (row["state"], row["form"], row["attempts"]) == ("sent", "update", 1)
    assert row["data_categories"] == ["fraud_alerts"] and row["sent_at"]


def test_the_outcome_feed_names_the_notification(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()

    rows = linked_api.get("/api/v1/outcomes").json()["outcomes"]

    sent = [r for r in rows if r["type"] == "notification.sent"]
    assert [r["notification_id"] for r in sent] == [str(one().pk)]


# Order, claims and leases


def test_only_the_head_of_each_persons_queue_is_claimed(linked, linked_api):
    _, other = linked.person()
    other_card = other.accounts.get()
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
        event_payload("fraud.alert", account=other_card),
        event_payload("transaction.posted", account=other_card),
    )

    claimed = _claim(owner="a", limit=10, now=timezone.now(), lease_seconds=60)
    again = _claim(owner="b", limit=10, now=timezone.now(), lease_seconds=60)

    heads = Notification.objects.filter(pk__in=claimed)
    assert sorted(n.sequence for n in heads) == [1, 1]
    assert again == []  # each person already has one in flight


def test_a_second_message_in_flight_to_one_person_is_refused_by_the_database(linked, linked_api):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
    )
    Notification.objects.filter(sequence=1).update(state=State.IN_FLIGHT)

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(sequence=2).update(state=State.IN_FLIGHT)


def test_messages_to_one_person_go_out_in_event_order(linked, linked_api, graph):
    events = [event_payload("transaction.posted", account=linked.card) for _ in range(4)]
    for n, payload in enumerate(events):
        del payload["data"]["merchant"]  # the message then ends with the description
        payload["data"]["description"] = f"Shop {n}"
        payload["occurred_at"] = (timezone.now() - dt.timedelta(minutes=10 - n)).isoformat()
    post(linked_api, *reversed(events))

    for _ in range(4):
        deliver()

    assert [t.rsplit(": ", 1)[1].rstrip(".") for t in graph.texts()] == [
        "Shop 0",
        "Shop 1",
        "Shop 2",
        "Shop 3",
    ]


def test_one_run_sends_a_persons_next_message_once_the_first_is_recorded(linked, linked_api, graph):
    first, second = (event_payload("transaction.posted", account=linked.card) for _ in "ab")
    first["data"]["description"], second["data"]["description"] = "Shop 1", "Shop 2"
    del first["data"]["merchant"], second["data"]["merchant"]  # the messages end with them
    post(linked_api, first, second)

    report = services.deliveries_run(seconds=5)

    assert [t.rsplit(": ", 1)[1].rstrip(".") for t in graph.texts()] == ["Shop 1", "Shop 2"]
    assert report.count(State.SENT) == 2
    assert not Notification.objects.filter(state=State.PENDING).exists()


def test_a_retrying_notification_holds_back_the_persons_later_ones(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    graph.answers = [graph_error(2, status=500)]
    deliver()
    post(linked_api, event_payload("transaction.posted", account=linked.card))

    deliver()

    assert len(graph.sent) == 1
    assert Notification.objects.get(event_type="transaction.posted").state == State.PENDING


def test_an_update_parked_for_quiet_hours_does_not_hold_back_a_fraud_alert(
    linked, linked_api, graph
):
    post(linked_api, event_payload("transaction.posted", account=linked.card))
    Notification.objects.update(
        reason=Reason.QUIET_HOURS, next_attempt_at=timezone.now() + dt.timedelta(hours=8)
    )
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    deliver()

    assert len(graph.sent) == 1 and "Security alert" in graph.texts()[0]


def test_a_dead_workers_claim_is_taken_over_and_sent_once(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    _claim(owner=lease_owner_new(), limit=10, now=timezone.now(), lease_seconds=60)
    assert deliver().claimed == 0  # the lease still holds
    Notification.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))

    report = services.outbox_sweep()
    deliver()

    assert (report.taken_over, report.uncertain) == (1, 0)
    assert len(graph.sent) == 1
    notification = one()
    assert notification.state == State.SENT and not notification.uncertain


def test_a_claim_lost_mid_send_is_resent_flagged_and_counted_when_no_echo_came(
    linked, linked_api, graph, settings
):
    settings.NOTIFICATIONS_ECHO_WAIT_SECONDS = 0  # the wait for its echo is over at once
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    _claim(owner=lease_owner_new(), limit=10, now=timezone.now(), lease_seconds=60)
    Notification.objects.update(
        send_started_at=timezone.now() - dt.timedelta(seconds=61),
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )

    report = services.outbox_sweep()
    deliver()

    assert (report.taken_over, report.uncertain) == (1, 1)
    notification = one()
    assert (
        notification.state,
        notification.uncertain,
        notification.resent,
        notification.attempts,
    ) == (State.SENT, True, True, 2)
    assert list(DeliveryAttempt.objects.order_by("number").values_list("outcome", flat=True)) == [
        "worker_lost",
        "sent",
    ]
    assert selectors.uncertain_send_count(bank=linked.bank) == 1
    assert AuditEvent.objects.filter(action="notification.send_uncertain").count() == 1


def test_results_after_a_lease_was_taken_over_do_not_overwrite_the_new_owner(
    linked, linked_api, graph
):
    from notifications.services.delivery import Result, results_record
    from notifications.services.delivery.claim import _jobs

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    (pk,) = _claim(owner="slow-worker", limit=10, now=timezone.now(), lease_seconds=60)
    Notification.objects.update(lease_owner="new-owner")
    (job,) = _jobs([pk])

    results_record(owner="slow-worker", results=[Result(job, State.DEAD, Reason.REFUSED)], banks={})

    assert (one().state, one().lease_owner) == (State.IN_FLIGHT, "new-owner")


# Dead letters and replay


def test_a_dead_notification_can_be_replayed_and_is_audited(linked, linked_api, graph):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    graph.answers = [graph_error(100, message="(#100) Invalid parameter")]
    deliver()
    post(linked_api, event_payload("transaction.posted", account=linked.card))
    deliver()
    dead = Notification.objects.get(state=State.DEAD)

    replayed = services.notifications_replay(
        actor=Actor.system("staff"), bank=linked.bank, notification_ids=[dead.pk]
    )
    deliver()

    dead.refresh_from_db()
    assert replayed == 1
    assert (dead.state, dead.attempts, dead.sequence) == (State.SENT, 1, 3)  # end of queue
    entry = AuditEvent.objects.get(action="notification.replayed")
    assert entry.target_id == str(dead.pk)


def test_every_dead_notification_of_a_bank_can_be_replayed_at_once(linked, linked_api, graph):
    people = [linked.person() for _ in range(3)]
    post(linked_api, *[event_payload("fraud.alert", account=a) for a, _ in people])
    graph.answers = [graph_error(100)] * 3
    deliver()

    replayed = services.notifications_replay(
        actor=Actor.system("staff"), bank=linked.bank, every_dead=True
    )
    deliver()

    assert replayed == 3
    assert set(Notification.objects.values_list("state", flat=True)) == {State.SENT}
    (entry,) = AuditEvent.objects.filter(action="notifications.replayed")
    assert entry.details["count"] == 3


def test_replay_never_touches_another_banks_notifications(linked, linked_api, graph):
    from portal.tests.factories import BankFactory

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    Notification.objects.update(state=State.DEAD)

    replayed = services.notifications_replay(
        actor=Actor.system("staff"), bank=BankFactory(), every_dead=True
    )

    assert replayed == 0 and one().state == State.DEAD


def test_dead_letters_are_listed_and_replayed_from_the_command_line(linked, linked_api, graph):
    from io import StringIO

    from django.core.management import call_command

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    graph.answers = [graph_error(100, message="(#100) Invalid parameter")]
    deliver()
    listing = StringIO()

    call_command("dead_letters", "--bank", "harbour", stdout=listing)
    call_command("dead_letters", "--bank", "harbour", "--replay-all", stdout=StringIO())
    deliver()

    assert "fraud.alert\trefused\t1 attempt(s)\tlast: bad_request 100" in listing.getvalue()
    assert one().state == State.SENT
    assert AuditEvent.objects.filter(action="notification.replayed").exists()


def test_a_claim_sets_aside_what_waits_behind_a_persons_first_message(linked, linked_api):
    post(linked_api, *[event_payload("transaction.posted", account=linked.card) for _ in range(3)])

    (head,) = _claim(owner="w", limit=10, now=timezone.now(), lease_seconds=60)

    rows = {n.sequence: n for n in Notification.objects.all()}
    assert head == rows[1].pk
    assert [rows[2].waiting, rows[3].waiting] == [True, True]
    assert _claim(owner="w2", limit=10, now=timezone.now(), lease_seconds=60) == []


def test_a_sent_message_wakes_the_ones_waiting_behind_it(linked, linked_api, graph):
    post(linked_api, *[event_payload("transaction.posted", account=linked.card) for _ in range(3)])

    deliver()

    assert list(Notification.objects.order_by("sequence").values_list("state", "waiting")) == [
        (State.SENT, False),
        (State.PENDING, False),  # the next one is woken…
        (State.PENDING, True),  # …and the one behind it waits for it in turn
    ]
    deliver()
    deliver()
    assert len(graph.sent) == 3


def test_the_sweeper_wakes_a_waiting_notification_that_nothing_holds_back(
    linked, linked_api, graph
):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    Notification.objects.update(waiting=True)  # as if its wake-up was missed
    assert deliver().claimed == 0

    services.outbox_sweep()
    deliver()

    assert one().state == State.SENT


def test_an_urgent_worker_wakes_only_the_urgent_notifications_nothing_holds_back(
    linked, linked_api
):
    from notifications.services.queue import waiting_wake_stranded

    post(linked_api, event_payload("transaction.posted", account=linked.card))
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    Notification.objects.update(waiting=True)  # as if their wake-ups were missed

    woken = waiting_wake_stranded(urgent_only=True)

    assert woken == 1
    assert {n.event_type: n.waiting for n in Notification.objects.all()} == {
        "fraud.alert": False,  # claimable now, by the urgent worker itself
        "transaction.posted": True,  # the sweeper's, or a routine worker's, to wake
    }


@pytest.mark.django_db(transaction=True)
def test_waking_stranded_notifications_passes_over_a_row_another_transaction_holds(
    linked, linked_api
):
    """It never waits for a row lock, so it cannot deadlock with a claim flagging rows in
    another order; the row held is woken by a later sweep."""
    import threading

    from django.db import connection

    from notifications.services.queue import waiting_wake_stranded

    someone_else = linked.person()[0]
    post(
        linked_api, *[event_payload("fraud.alert", account=a) for a in (linked.card, someone_else)]
    )
    Notification.objects.update(waiting=True)
    held, _ = Notification.objects.order_by("id")
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                Notification.objects.select_for_update().get(pk=held.pk)
                locked.set()
                release.wait(10)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert locked.wait(10)
        woken_while_held = waiting_wake_stranded()
    finally:
        release.set()
        holder.join()
    woken_after = waiting_wake_stranded()

    assert (woken_while_held, woken_after) == (1, 1)
    assert not Notification.objects.filter(waiting=True).exists()


def test_a_flag_raced_by_the_head_being_recorded_is_lifted_on_second_look(linked, linked_api):
    from notifications.services.queue import waiting_recheck

    post(linked_api, *[event_payload("transaction.posted", account=linked.card) for _ in range(2)])
    _claim(owner="other", limit=1, now=timezone.now(), lease_seconds=60)  # the head in flight
    _claim(owner="me", limit=10, now=timezone.now(), lease_seconds=60)  # flags the next one
    second = Notification.objects.get(sequence=2)
    assert second.waiting
    # Meanwhile the other worker records the head as sent; its wake-up came too early.
    Notification.objects.filter(sequence=1).update(state=State.SENT, lease_owner="")

    woken = waiting_recheck([second.pk], now=timezone.now())

    second.refresh_from_db()
    assert woken == 1 and not second.waiting
