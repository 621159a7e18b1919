"""Urgent first: fraud alerts, and the types a bank marks urgent, overtake routine backlogs.

The Send API is faked at the messenger client boundary; the database and Redis are real.
"""

import datetime as dt
import time

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notifications import services
from notifications.models import Notification
from notifications.page_limits import page_buckets
from notifications.services.delivery.claim import Claiming, _claim
from notifications.services.queue import people_wake
from notifications.tests.factories import approved_utility_template, contact_for, event_payload
from notifications.tests.test_delivery import EVENTS, deliver, post
from notifications.tests.test_outbox import always_quiet
from portal.models import AuditEvent, NotificationPolicy, StaffMembership, TextVersion
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

State, Reason, Urgency = Notification.State, Notification.Reason, Notification.Urgency


def shop(account, name, minutes_ago=10):
    payload = event_payload("transaction.posted", account=account)
    del payload["data"]["merchant"]  # the message then ends with the description
    payload["data"]["description"] = name
    payload["occurred_at"] = (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()
    return payload


def shops(texts):
    """The shop of each transaction message, and `FRAUD` for a fraud alert, in order."""
    return ["FRAUD" if "Security alert" in t else t.rsplit(": ", 1)[1].rstrip(".") for t in texts]


def mark_urgent(bank, event_type, urgent=True):
    NotificationPolicy.objects.filter(bank=bank, event_type=event_type).update(urgent=urgent)


# Classes


def test_fraud_alerts_are_urgent_and_other_updates_routine(linked, linked_api):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
        event_payload("balance.updated", account=linked.checking),
    )

    classes = dict(Notification.objects.values_list("event_type", "urgency"))
    assert classes == {
        "fraud.alert": Urgency.URGENT,
        "transaction.posted": Urgency.ROUTINE,
        "balance.updated": Urgency.ROUTINE,
    }


def test_a_fraud_alert_stays_urgent_whatever_its_policy_row_says(linked, linked_api):
    mark_urgent(linked.bank, "fraud.alert", urgent=False)

    post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert Notification.objects.get().urgency == Urgency.URGENT


def test_a_bank_marks_another_type_urgent_on_the_staff_page(linked, linked_api, sign_in):
    post(linked_api, shop(linked.card, "Before"))
    operator = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR).user
    admin = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user
    staff = sign_in(operator)
    policy = NotificationPolicy.objects.get(bank=linked.bank, event_type="transaction.posted")
    url = reverse(
        "portal:notification_policy_edit", kwargs={"bank": linked.bank.slug, "policy": policy.pk}
    )
    form = staff.get(url).content.decode()

    response = staff.post(url, {"enabled": "on", "urgent": "on"}, follow=True)
    post(linked_api, shop(linked.card, "Drafted"))  # the draft decides nothing yet
    draft = TextVersion.objects.get(bank=linked.bank, state=TextVersion.State.DRAFT)
    approved = sign_in(admin, http_client=Client()).post(
        reverse(
            "portal:notification_policy_version_approve",
            kwargs={"bank": linked.bank.slug, "policy_version": draft.pk},
        ),
        follow=True,
    )
    post(linked_api, shop(linked.card, "After"))

    assert "Urgent: send before routine updates" in form and "Quiet hours still apply" in form
    assert "Draft saved as version 2." in response.content.decode()
    assert "Version 2 is approved" in approved.content.decode()
    listing = sign_in(operator).get(
        reverse("portal:notification_policies", kwargs={"bank": linked.bank.slug})
    )
    row = listing.content.decode().split('id="policy-transactionposted"', 1)[1].split("</tr>")[0]
    assert "Urgent" in row
    entry = AuditEvent.objects.get(action="notification_policy.updated")
    assert entry.details["changed"] == {"urgent": [False, True]}
    assert (entry.actor_type, entry.actor_id) == ("staff", str(admin.pk))
    assert AuditEvent.objects.get(action="text_version.drafted").actor_id == str(operator.pk)
    # The next event after approval is urgent; those before keep the class they had.
    classes = {
        n.event.data["description"]: n.urgency for n in Notification.objects.select_related("event")
    }
    assert classes == {
        "Before": Urgency.ROUTINE,
        "Drafted": Urgency.ROUTINE,
        "After": Urgency.URGENT,
    }


def test_the_fraud_alert_policy_page_says_it_is_always_urgent(linked, sign_in):
    staff = sign_in(StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.ADMIN).user)
    policy = NotificationPolicy.objects.get(bank=linked.bank, event_type="fraud.alert")

    form = staff.get(
        reverse(
            "portal:notification_policy_edit",
            kwargs={"bank": linked.bank.slug, "policy": policy.pk},
        )
    ).content.decode()
    listing = staff.get(
        reverse("portal:notification_policies", kwargs={"bank": linked.bank.slug})
    ).content.decode()

    assert 'name="urgent"' not in form and "always urgent" in form
    row = listing.split('id="policy-fraudalert"', 1)[1].split("</tr>", 1)[0]
    assert "Urgent" in row and "always" in row


# The API shows the class


def test_the_event_lookup_and_the_outcome_feed_show_the_class(linked, linked_api, graph):
    fraud = event_payload("fraud.alert", account=linked.card)
    routine = event_payload("transaction.posted", account=linked.card)
    post(linked_api, fraud, routine)
    for _ in range(2):
        deliver()

    detail = linked_api.get(f"{EVENTS}/{fraud['id']}").json()
    feed = linked_api.get("/api/v1/outcomes").json()["outcomes"]

    assert [n["urgency"] for n in detail["notifications"]] == ["urgent"]
    assert linked_api.get(f"{EVENTS}/{routine['id']}").json()["notifications"][0]["urgency"] == (
        "routine"
    )
    sent = {
        o["event_id"]: o["notification_urgency"] for o in feed if o["type"] == "notification.sent"
    }
    assert sent == {fraud["id"]: "urgent", routine["id"]: "routine"}
    accepted = [o for o in feed if o["type"] == "event.accepted"]
    assert accepted and all(o["notification_urgency"] is None for o in accepted)


# Urgent overtakes routine


def test_an_urgent_notification_is_claimed_before_older_routine_ones(linked, linked_api):
    people = [linked.person() for _ in range(3)]
    post(linked_api, *[shop(account, f"Shop {n}", 30) for n, (account, _) in enumerate(people)])
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    (first,) = _claim(owner="w", limit=1, now=timezone.now(), lease_seconds=60)
    rest = _claim(owner="w", limit=10, now=timezone.now(), lease_seconds=60)

    assert Notification.objects.get(pk=first).event_type == "fraud.alert"
    assert len(rest) == 3  # the routine ones after it, each the head of its person's queue


def test_a_persons_urgent_message_overtakes_their_routine_ones_in_order(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 10 - n) for n in range(3)])
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    report = services.deliveries_run(seconds=5)

    assert shops(graph.texts()) == ["FRAUD", "Shop 0", "Shop 1", "Shop 2"]
    assert report.count(State.SENT) == 4


def test_an_urgent_message_waits_only_for_the_one_in_flight(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 10 - n) for n in range(3)])
    (head,) = _claim(owner="other", limit=10, now=timezone.now(), lease_seconds=60)
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    assert _claim(owner="me", limit=10, now=timezone.now(), lease_seconds=60) == []
    fraud = Notification.objects.get(event_type="fraud.alert")
    assert fraud.waiting  # set aside behind the message in flight, like any other

    # The other worker records its message as sent and wakes the person's next one.
    Notification.objects.filter(pk=head).update(state=State.SENT, lease_owner="")
    people_wake([(fraud.page_id, fraud.psid)])
    for _ in range(3):
        deliver()

    assert shops(graph.texts()) == ["FRAUD", "Shop 1", "Shop 2"]


def test_a_retrying_urgent_message_still_holds_back_the_persons_routine_ones(
    linked, linked_api, graph
):
    from notifications.tests.conftest import graph_error

    post(linked_api, event_payload("fraud.alert", account=linked.card))
    graph.answers = [graph_error(2, status=500)]
    deliver()
    post(linked_api, shop(linked.card, "Shop 0"))

    deliver()

    assert len(graph.sent) == 1
    assert Notification.objects.get(event_type="transaction.posted").state == State.PENDING


def test_no_routine_call_joins_the_pool_while_a_pages_urgent_one_waits_for_a_token(
    linked, linked_api, graph
):
    """In the pool, calls race for the Page's next tokens: a routine one could win."""
    from collections import deque

    from notifications.services.delivery import lease_owner_new
    from notifications.services.delivery.claim import _jobs
    from notifications.services.delivery.pipeline import _Pipeline

    account, _ = linked.person()
    post(linked_api, shop(account, "Shop"), event_payload("fraud.alert", account=linked.card))
    ids = _claim(owner="w", limit=10, now=timezone.now(), lease_seconds=60)
    routine, urgent = sorted(_jobs(ids), key=lambda job: job.urgency == Urgency.URGENT)
    for job in (routine, urgent):
        job.send_until = time.monotonic() + 60
    page = urgent.page_id
    pipeline = _Pipeline(lease_owner_new(), report=None)

    def pick(*jobs, urgent_in_pool=0):
        pipeline.queues[page] = deque(jobs)
        pipeline.order = deque([page])
        pipeline.urgent_in_pool[page] = urgent_in_pool
        return [job.urgency for job in pipeline.pick(10, time.monotonic())]

    try:
        assert pick(urgent, routine) == [Urgency.URGENT]
        assert pick(routine, urgent_in_pool=1) == []
        assert pick(routine) == [Urgency.ROUTINE]
    finally:
        pipeline.close()


def test_an_urgent_call_takes_its_token_from_the_page_s_reserve_when_routine_ones_wait(
    linked, linked_api, graph, settings
):
    """Routine calls have spent the Page's budget for longer than a sender waits; the
    fraud alert still goes out at once, from the reserve only urgent calls may use."""
    page = linked.integration.page_id
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {page: 10}
    settings.NOTIFICATIONS_PAGE_ARRIVAL_SECONDS = 5.0  # unanswered calls count for 6 s
    assert page_buckets().take(page, 9, urgent=True).granted == 9  # all but the reserve
    assert page_buckets().take(page, 1).granted == 0
    account, _ = linked.person()
    post(linked_api, shop(account, "Shop"), event_payload("fraud.alert", account=linked.card))

    deliver()

    assert shops(graph.texts()) == ["FRAUD"]
    assert Notification.objects.get(event_type="fraud.alert").state == State.SENT
    routine = Notification.objects.get(event_type="transaction.posted")
    assert (routine.state, routine.reason) == (State.PENDING, Reason.RATE_LIMITED)


def test_a_claimed_message_that_holds_back_the_persons_urgent_one_goes_first_as_urgent(
    linked, linked_api, graph
):
    """Ana's card transaction is claimed, behind other people's, when her fraud alert
    comes in: the alert waits for it, so it goes ahead of the others, in the urgent lane."""
    from notifications.services.delivery import lease_owner_new
    from notifications.services.delivery.pipeline import _Pipeline

    others = [linked.person()[0] for _ in range(3)]
    post(linked_api, *[shop(a, f"Shop {n}") for n, a in enumerate(others)])
    post(linked_api, shop(linked.card, "Ana's shop"))
    pipeline = _Pipeline(lease_owner_new(), report=None)
    try:
        assert pipeline.claim(10) == 4
        post(linked_api, event_payload("fraud.alert", account=linked.card))

        pipeline.promote_for_urgent()

        (queue,) = pipeline.queues.values()
        assert shops([job.text for job in queue]) == ["Ana's shop", "Shop 0", "Shop 1", "Shop 2"]
        assert [job.urgent_lane for job in queue] == [True, False, False, False]
    finally:
        pipeline.close()


@pytest.mark.parametrize("queued", [False, True], ids=["someone_else", "a_person_with_a_backlog"])
def test_a_fraud_alert_overtakes_a_pages_routine_backlog_under_a_tight_limit(
    linked, linked_api, graph, settings, monkeypatch, queued
):
    """As a bank would see it: a Page limited to 10 calls/s, 48 card transactions queued
    for 8 people, then a fraud alert while the backlog drains, for a person with nothing
    queued or for one of the 8.

    For one of the 8, the alert waits for the one message of theirs in flight, while the
    worker goes on with other people's heads (a claim or two); never for their backlog.
    """
    batch = 8
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {linked.integration.page_id: 10}
    people = [linked.person() for _ in range(8)]
    post(
        linked_api,
        *[
            shop(account, f"Shop {p}.{n}", 30 - n)
            for p, (account, _) in enumerate(people)
            for n in range(6)
        ],
    )
    fraud = event_payload("fraud.alert", account=people[0][0] if queued else linked.card)
    backlog: set[int] = set()
    claims = 0
    claim = Claiming.claim

    def claim_then_alert(self, size, urgent_only=False):
        nonlocal claims
        claims += not urgent_only  # the batches, not the looks for urgent ones between them
        if claims == 3 and not urgent_only:  # the Page is busy with the backlog…
            post(linked_api, fraud)
            backlog.update(
                Notification.objects.filter(
                    event_type="transaction.posted", state=State.PENDING
                ).values_list("pk", flat=True)
            )
        return claim(self, size, urgent_only=urgent_only)

    monkeypatch.setattr(Claiming, "claim", claim_then_alert)

    services.deliveries_run(seconds=3, batch_size=batch)

    assert claims >= 3 and len(backlog) >= 30  # most of the backlog was still queued
    alert = Notification.objects.get(event_type="fraud.alert")
    assert alert.state == State.SENT, "the fraud alert did not reach the Send API"
    calls = shops(graph.texts())  # in the order the Send API received them
    queued_then = {
        shops([text])[0]
        for text in Notification.objects.filter(pk__in=backlog).values_list("text", flat=True)
    }
    before = [shop for shop in calls[: calls.index("FRAUD")] if shop in queued_then]
    assert len(before) <= (2 * batch if queued else 0)
    assert len(queued_then) - len(before) >= 20  # what was left of the backlog went after it
    assert alert.sent_at - alert.created_at < dt.timedelta(seconds=3 if queued else 2)


# Quiet hours and the window keep their rules for both classes


def test_quiet_hours_hold_a_type_the_bank_marked_urgent(linked, linked_api, graph):
    mark_urgent(linked.bank, "transaction.posted")
    always_quiet(linked.bank, "transaction.posted")

    post(linked_api, shop(linked.card, "Night"))
    deliver()

    notification = Notification.objects.get()
    assert notification.urgency == Urgency.URGENT
    assert (notification.state, notification.reason) == (State.PENDING, Reason.QUIET_HOURS)
    assert notification.next_attempt_at > timezone.now() and graph.sent == []


def test_quiet_hours_hold_routine_updates_and_never_a_fraud_alert(linked, linked_api, graph):
    always_quiet(linked.bank, "transaction.posted")

    post(linked_api, shop(linked.card, "Night"), event_payload("fraud.alert", account=linked.card))
    deliver()

    parked = Notification.objects.get(event_type="transaction.posted")
    assert (parked.urgency, parked.reason) == (Urgency.ROUTINE, Reason.QUIET_HOURS)
    assert shops(graph.texts()) == ["FRAUD"]


def test_an_urgent_update_parked_for_quiet_hours_does_not_hold_back_a_fraud_alert(
    linked, linked_api, graph
):
    mark_urgent(linked.bank, "transaction.posted")
    always_quiet(linked.bank, "transaction.posted")
    post(linked_api, shop(linked.card, "Night"))
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    deliver()

    assert shops(graph.texts()) == ["FRAUD"]
    assert Notification.objects.get(event_type="transaction.posted").state == State.PENDING


@pytest.mark.parametrize("urgent", [True, False], ids=["urgent", "routine"])
def test_outside_the_window_both_classes_use_the_utility_template_or_are_held(
    linked, linked_api, graph, urgent
):
    mark_urgent(linked.bank, "transaction.posted", urgent=urgent)
    contact_for(linked.consent, hours_ago=30)
    post(linked_api, shop(linked.card, "Held"))
    deliver()
    held = Notification.objects.get()
    approved_utility_template(linked.bank, "transaction.posted")
    post(linked_api, shop(linked.card, "Template"))

    deliver()

    assert (held.state, held.reason) == (State.HELD, Reason.NO_ALLOWED_FORM)
    (body,) = graph.sent
    assert body["messaging_type"] == "UTILITY"
    expected = Urgency.URGENT if urgent else Urgency.ROUTINE
    assert set(Notification.objects.values_list("urgency", flat=True)) == {expected}
