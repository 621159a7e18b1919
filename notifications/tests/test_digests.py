"""Digests: on a Page under backlog, a person's several routine updates go out as one message.

The Send API is faked at the messenger client boundary; the database and Redis are real.
The Page here is under backlog from 4 due routine notifications: its limit (300 calls/s)
times `NOTIFICATIONS_DIGEST_BACKLOG_SECONDS` (1/80 s) is 3.75.
"""

import datetime as dt

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification, Outcome
from notifications.services.delivery.digest import page_backlogged
from notifications.tests.conftest import graph_error
from notifications.tests.factories import approved_utility_template, contact_for, event_payload
from notifications.tests.test_delivery import EVENTS, deliver, post
from notifications.tests.test_outbox import always_quiet
from notifications.tests.test_urgency import mark_urgent
from portal.models import AuditEvent, MessageTemplate
from portal.selectors import audit_chains_verify

pytestmark = pytest.mark.django_db

State, Reason = Notification.State, Notification.Reason


@pytest.fixture(autouse=True)
def _small_backlog(settings):
    settings.NOTIFICATIONS_DIGESTS = True
    settings.NOTIFICATIONS_DIGEST_BACKLOG_SECONDS = 1 / 80  # 4 due at 300 calls/s


def shop(account, name, minutes_ago=10):
    payload = event_payload("transaction.posted", account=account)
    del payload["data"]["merchant"]  # the message then names the description
    payload["data"]["description"] = name
    payload["occurred_at"] = (timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat()
    return payload


def balance(account, available, minutes_ago):
    return event_payload(
        "balance.updated",
        account=account,
        data={"available": available, "ledger": available},
        occurred_at=(timezone.now() - dt.timedelta(minutes=minutes_ago)).isoformat(),
    )


def deliver_all(rounds=12):
    for _ in range(rounds):
        deliver()
        if not Notification.objects.filter(state=State.PENDING).exists():
            return


def ordered(**filters):
    return list(Notification.objects.filter(**filters).order_by("sequence"))


# When a digest goes out


def test_a_backlogged_page_sends_a_persons_routine_updates_as_one_digest(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    texts = [n.text for n in ordered()]

    deliver()

    (body,) = graph.sent
    assert body["messaging_type"] == "UPDATE" and body["recipient"] == {"id": linked.consent.psid}
    assert body["message"]["text"] == "4 transactions:\n" + "\n".join(f"• {t}" for t in texts)
    assert "quick_replies" not in body["message"]
    notifications = ordered()
    lead = notifications[0]
    assert [n.state for n in notifications] == [State.SENT] * 4
    assert {n.digest for n in notifications} == {lead.pk}
    assert {n.message_id for n in notifications} == {"m_fake_1"}
    assert all(n.attempts == 1 and n.lease_owner == "" and n.sent_at for n in notifications)


def test_below_the_backlog_each_update_goes_on_its_own(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(3)])

    deliver_all()

    assert graph.texts() == [n.text for n in ordered()]  # one call each, in order
    assert [n.digest for n in ordered()] == [None] * 3


def test_the_backlog_is_the_pages_due_routine_notifications_against_its_limit(
    linked, linked_api, settings
):
    page = linked.integration.page_id
    post(linked_api, *[shop(linked.card, f"Shop {n}") for n in range(3)])
    assert not page_backlogged(page, now=timezone.now())
    # The Page's own limit counts: at 100 calls/s, 3 due are more than 1/80 s of sends.
    assert page_backlogged(page, now=timezone.now(), setting=100)

    post(linked_api, event_payload("fraud.alert", account=linked.card))  # urgent: not counted
    assert not page_backlogged(page, now=timezone.now())

    post(linked_api, shop(linked.card, "Shop 3"))
    assert page_backlogged(page, now=timezone.now())


def test_with_digests_off_every_update_is_its_own_call(linked, linked_api, graph, settings):
    settings.NOTIFICATIONS_DIGESTS = False
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])

    deliver_all()

    assert len(graph.sent) == 4
    assert [n.digest for n in ordered()] == [None] * 4


def test_a_digest_is_per_person(linked, linked_api, graph):
    other_account, other = linked.person()
    post(
        linked_api,
        *[shop(linked.card, f"Ana {n}", 20 - n) for n in range(3)],
        *[shop(other_account, f"Bea {n}", 20 - n) for n in range(3)],
    )

    deliver()

    assert len(graph.sent) == 2
    by_person = {b["recipient"]["id"]: b["message"]["text"] for b in graph.sent}
    assert by_person[linked.consent.psid].startswith("3 transactions:")
    assert "Bea" not in by_person[linked.consent.psid]
    assert by_person[other.psid].startswith("3 transactions:")
    assert "Ana" not in by_person[other.psid]


# What each original records


def test_each_original_records_its_digest_in_attempts_audit_and_data_categories(
    linked, linked_api, graph
):
    post(
        linked_api,
        shop(linked.card, "Shop 0", 30),
        balance(linked.checking, "120.00", 20),
        shop(linked.card, "Shop 1", 10),
    )
    post(linked_api, shop(linked.card, "Shop 2", 5))

    deliver()

    notifications = ordered()
    lead = notifications[0]
    assert graph.sent[0]["message"]["text"].startswith("4 updates:")
    assert DeliveryAttempt.objects.filter(outcome="sent").count() == 4
    assert sorted(DeliveryAttempt.objects.values_list("notification_id", flat=True)) == sorted(
        n.pk for n in notifications
    )
    (entry,) = AuditEvent.objects.filter(action="notification.sent")
    assert entry.target_id == str(linked.consent.pk)
    assert entry.details["notification"] == lead.pk
    listed = entry.details["digest"]
    assert [row["notification"] for row in listed] == [n.pk for n in notifications]
    assert [row["event"] for row in listed] == [n.event.event_id for n in notifications]
    assert [row["data_categories"] for row in listed] == [n.data_categories for n in notifications]
    assert entry.data_categories == ["balances", "transactions"]
    assert all(report.intact for report in audit_chains_verify(bank=linked.bank))


def test_the_outcome_feed_and_event_lookup_show_the_digest(linked, linked_api, graph):
    payloads = [shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)]
    post(linked_api, *payloads)
    deliver()
    lead = ordered()[0]

    rows = linked_api.get("/api/v1/outcomes").json()["outcomes"]
    detail = linked_api.get(f"{EVENTS}/{payloads[2]['id']}").json()

    sent = [r for r in rows if r["type"] == "notification.sent"]
    assert sorted(r["notification_id"] for r in sent) == sorted(str(n.pk) for n in ordered())
    assert {r["digest_id"] for r in sent} == {str(lead.pk)}
    assert {r["notification_reason"] for r in sent} == {None}
    accepted = [r for r in rows if r["type"] == "event.accepted"]
    assert {r["digest_id"] for r in accepted} == {None}
    (row,) = detail["notifications"]
    assert (row["state"], row["digest_id"]) == ("sent", str(lead.pk))


def test_a_notification_sent_alone_shows_no_digest(linked, linked_api, graph):
    payload = shop(linked.card, "Alone")
    post(linked_api, payload)
    deliver()

    rows = linked_api.get("/api/v1/outcomes").json()["outcomes"]
    detail = linked_api.get(f"{EVENTS}/{payload['id']}").json()

    assert [r["digest_id"] for r in rows if r["type"] == "notification.sent"] == [None]
    assert detail["notifications"][0]["digest_id"] is None


def test_a_failed_digest_sends_each_original_back_to_the_queue(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    graph.answers = [graph_error(2, status=503, message="(#2) Service temporarily unavailable")]

    deliver()

    notifications = ordered()
    assert [(n.state, n.reason, n.attempts) for n in notifications] == [
        (State.PENDING, Reason.RETRYING, 1)
    ] * 4
    assert [n.digest for n in notifications] == [None] * 4
    assert DeliveryAttempt.objects.filter(outcome="transient").count() == 4
    assert not Outcome.objects.filter(type="notification.sent").exists()
    Notification.objects.update(next_attempt_at=timezone.now())

    deliver()

    assert len(graph.sent) == 2 and graph.sent[1]["message"]["text"].startswith("4 transactions")
    assert {n.state for n in ordered()} == {State.SENT}


def test_a_digests_originals_are_in_flight_together_but_no_second_message(linked, linked_api):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(3)])
    first, second, third = ordered()
    Notification.objects.filter(pk=first.pk).update(state=State.IN_FLIGHT)
    Notification.objects.filter(pk=second.pk).update(state=State.IN_FLIGHT, digest=first.pk)

    with pytest.raises(IntegrityError), transaction.atomic():
        Notification.objects.filter(pk=third.pk).update(state=State.IN_FLIGHT)


# Messenger's 2,000 characters, and masking


def test_a_digest_holds_what_fits_in_2000_characters_and_the_rest_stays_queued(
    linked, linked_api, graph
):
    MessageTemplate.objects.filter(bank=linked.bank, event_type="transaction.posted").update(
        body="Card {last4}: {amount} at {description}. " + "Thank you for banking with us. " * 20
    )
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(5)])
    texts = [n.text for n in ordered()]
    assert all(600 < len(t) < 700 for t in texts)

    deliver()

    first = graph.sent[0]["message"]["text"]
    assert len(first) < 2000 and first.startswith("3 transactions:")
    assert first == "3 transactions:\n" + "\n".join(f"• {t}" for t in texts[:3])
    assert [n.state for n in ordered()][3:] in ([State.PENDING] * 2, [State.SENT] * 2)
    deliver_all()
    later = [b["message"]["text"] for b in graph.sent[1:]]
    # The rest went after it, in order (as a digest or one by one, as the backlog was).
    assert "".join(later).count("Shop 3") == 1 and "".join(later).count("Shop 4") == 1
    assert "".join(later).index("Shop 3") < "".join(later).index("Shop 4")
    assert all(len(text) < 2000 for text in graph.texts())


def test_each_line_is_the_originals_masked_text(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])

    deliver()

    text = graph.sent[0]["message"]["text"]
    for notification in ordered():
        assert f"• {notification.text}" in text.split("\n")
    assert "9012" in text
    digits = [run for run in text.replace(".", " ").split() if run.isdigit()]
    assert all(len(run) <= 4 for run in digits)  # at most the last 4 digits of a card


# Urgent, quiet hours, the window, supersession


def test_urgent_notifications_are_never_digested(linked, linked_api, graph):
    post(
        linked_api,
        *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)],
        event_payload("fraud.alert", account=linked.card),
    )

    deliver()
    deliver()

    texts = graph.texts()
    assert "Security alert" in texts[0] and not texts[0].startswith("4")
    assert texts[1].startswith("4 transactions:") and "Security alert" not in texts[1]
    fraud = Notification.objects.get(event_type="fraud.alert")
    assert fraud.digest is None and fraud.state == State.SENT


def test_a_type_the_bank_marked_urgent_is_not_digested(linked, linked_api, graph):
    mark_urgent(linked.bank, "transaction.posted")
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    post(linked_api, *[balance(linked.checking, "10.00", 1)])
    for account, _ in [linked.person() for _ in range(4)]:
        post(linked_api, balance(account, "5.00", 1))

    deliver_all()

    assert len([t for t in graph.texts() if "Shop" in t]) == 4
    assert all(not t.startswith("4 transactions") for t in graph.texts())
    assert set(
        Notification.objects.filter(event_type="transaction.posted").values_list(
            "digest", flat=True
        )
    ) == {None}


def test_an_update_parked_for_quiet_hours_stays_parked_and_the_digest_goes_without_it(
    linked, linked_api, graph
):
    always_quiet(linked.bank, "balance.updated")
    post(linked_api, balance(linked.checking, "50.00", 30))
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])

    deliver()

    (body,) = graph.sent
    assert body["message"]["text"].startswith("4 transactions:")
    parked = Notification.objects.get(event_type="balance.updated")
    assert (parked.state, parked.reason, parked.digest) == (State.PENDING, Reason.QUIET_HOURS, None)
    assert parked.next_attempt_at > timezone.now()


def test_outside_the_window_each_update_goes_as_its_own_utility_message(linked, linked_api, graph):
    contact_for(linked.consent, hours_ago=30)
    approved_utility_template(linked.bank, "transaction.posted")
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])

    deliver_all()

    assert len(graph.sent) == 4
    assert all(b["messaging_type"] == "UTILITY" for b in graph.sent)
    assert [n.digest for n in ordered()] == [None] * 4


def test_an_update_that_switched_to_the_utility_template_is_not_digested(linked, linked_api, graph):
    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(5)])
    switched = ordered()[2]
    Notification.objects.filter(pk=switched.pk).update(window_closed=True)

    deliver()

    text = graph.sent[0]["message"]["text"]
    assert text.startswith("2 transactions:") and "Shop 2" not in text
    assert Notification.objects.get(pk=switched.pk).state == State.PENDING


def test_balance_updates_keep_superseding_older_ones(linked, linked_api, graph):
    post(
        linked_api,
        balance(linked.checking, "100.00", 40),
        *[shop(linked.card, f"Shop {n}", 30 - n) for n in range(3)],
    )
    post(linked_api, balance(linked.checking, "80.00", 5))

    deliver()

    (body,) = graph.sent
    text = body["message"]["text"]
    assert text.startswith("4 updates:")
    assert "80.00" in text and "100.00" not in text
    old, new = Notification.objects.filter(event_type="balance.updated").order_by("pk")
    assert (old.state, old.reason, old.digest) == (State.SUPERSEDED, Reason.SUPERSEDED, None)
    assert new.state == State.SENT and new.digest is not None
    superseded_sent = Outcome.objects.filter(type="notification.sent", notification=old)
    assert not superseded_sent.exists()


def test_a_digest_lost_with_its_worker_is_resent_and_each_original_flagged(
    linked, linked_api, graph, settings
):
    settings.NOTIFICATIONS_ECHO_WAIT_SECONDS = 0  # no echo came: the wait is over at once
    from notifications import services
    from notifications.services.delivery import lease_owner_new
    from notifications.services.delivery.pipeline import _Pipeline

    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    pipeline = _Pipeline(lease_owner_new(), report=None)
    assert pipeline.claim(10) == 1  # the head, carrying the 3 others
    (lead,) = pipeline.queues[linked.integration.page_id]
    pipeline.mark_started([lead])  # handed to the Send API, then the worker died
    assert {n.state for n in ordered()} == {State.IN_FLIGHT}
    Notification.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))

    report = services.outbox_sweep()
    deliver_all()

    assert (report.taken_over, report.uncertain) == (4, 4)
    assert AuditEvent.objects.filter(action="notification.send_uncertain").count() == 4
    notifications = ordered()
    assert {(n.state, n.uncertain, n.resent, n.attempts) for n in notifications} == {
        (State.SENT, True, True, 2)
    }
    # Each may have reached the person in the lost digest: each is resent once, by itself
    # (its own reference, so that its own echo could settle it), in the person's order.
    assert [b["message"]["metadata"] for b in graph.sent] == [
        f"bankside:n:{n.pk}" for n in notifications
    ]
    assert not any(b["message"]["text"].startswith("4 transactions:") for b in graph.sent)


def test_a_lost_digests_echo_settles_every_original_it_carried(linked, linked_api, graph):
    from notifications import services
    from notifications.services.delivery import lease_owner_new
    from notifications.services.delivery.pipeline import _Pipeline
    from notifications.tests.test_echoes import post_echo

    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    pipeline = _Pipeline(lease_owner_new(), report=None)
    assert pipeline.claim(10) == 1
    (lead,) = pipeline.queues[linked.integration.page_id]
    pipeline.mark_started([lead])  # the digest reached Messenger, then the worker died
    Notification.objects.update(lease_expires_at=timezone.now() - dt.timedelta(seconds=1))
    services.outbox_sweep()
    assert {(n.state, n.reason) for n in ordered()} == {(State.PENDING, Reason.AWAITING_ECHO)}

    # Meta echoes the digest: its metadata names the notification that led it.
    post_echo(linked, metadata=f"bankside:n:{lead.id}", mid="m_digest_echo", app_id="1")
    deliver_all()

    notifications = ordered()
    assert {(n.state, n.message_id) for n in notifications} == {(State.SENT, "m_digest_echo")}
    assert not any(n.resent for n in notifications)
    assert graph.sent == []  # nothing sent twice
    assert Outcome.objects.filter(type="notification.sent").count() == 4


# What auditors and the customer see


def test_the_link_page_and_the_download_show_each_original_in_its_digest(
    linked, linked_api, graph, sign_in
):
    import json

    from django.urls import reverse

    from portal.models import StaffMembership
    from portal.tests.factories import StaffMembershipFactory

    post(linked_api, *[shop(linked.card, f"Shop {n}", 20 - n) for n in range(4)])
    deliver()
    lead = ordered()[0]
    auditor = sign_in(
        StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.AUDITOR).user
    )

    html = auditor.get(
        reverse(
            "linking:link_detail", kwargs={"bank": linked.bank.slug, "consent": linked.consent.pk}
        )
    ).content.decode()
    response = auditor.get(
        reverse(
            "linking:subject_export",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        )
    )

    section = html[html.index('id="section-notifications-sent"') :]
    section = section[: section.index("</section>")]
    assert section.count(f"digest of notification {lead.pk}") == 4
    document = json.loads(b"".join(response.streaming_content))
    rows = document["parts"]["notifications.messages"]["notifications"]
    assert [(r["state"], r["digest"]) for r in rows] == [("sent", lead.pk)] * 4


def test_a_balance_in_a_digest_on_its_way_is_not_superseded_and_the_newer_one_follows(
    linked, linked_api, graph
):
    from notifications.services.delivery import lease_owner_new
    from notifications.services.delivery.pipeline import _Pipeline

    post(
        linked_api,
        *[shop(linked.card, f"Shop {n}", 30 - n) for n in range(3)],
        balance(linked.checking, "100.00", 20),
    )
    pipeline = _Pipeline(lease_owner_new(), report=None)
    try:
        assert pipeline.claim(10) == 1
        post(linked_api, balance(linked.checking, "80.00", 1))  # while the digest is on its way
        while pipeline.backlog():
            pipeline.step()
    finally:
        pipeline.close()
    deliver_all()

    first, second = graph.texts()
    assert first.startswith("4 updates:") and "100.00" in first and "80.00" not in first
    assert "80.00" in second and not second.startswith(("2 ", "4 "))
    old, new = Notification.objects.filter(event_type="balance.updated").order_by("pk")
    assert (old.state, new.state) == (State.SENT, State.SENT)
    assert old.digest == ordered()[0].pk and new.digest is None
