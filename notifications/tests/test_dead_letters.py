"""Dead letters in the staff portal: listed with their attempts and events, replayed singly
or in bulk, refused when the customer's consent or link no longer allows a send."""

import datetime as dt
from io import StringIO
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from linking import services as linking_services
from notifications import services
from notifications.models import Notification
from notifications.tests.conftest import graph_error
from notifications.tests.factories import event_payload
from portal.audit import Actor
from portal.models import AuditEvent
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

State, Reason = Notification.State, Notification.Reason


def refused(*events_for, api, graph):
    """Post one event per (type, account) and have Messenger refuse every message."""
    payloads = [event_payload(kind, account=account) for kind, account in events_for]
    response = api.post("/api/v1/events", {"events": payloads}, format="json")
    assert response.status_code == 202
    graph.answers = [graph_error(100, message="(#100) Invalid parameter")] * len(payloads)
    services.deliveries_run(seconds=0)
    dead = list(Notification.objects.filter(state=State.DEAD).order_by("id"))
    assert len(dead) == len(payloads)
    return dead


@pytest.fixture
def people(linked):
    return [linked.person(name=f"Person {n}") for n in range(3)]


@pytest.fixture
def dead(linked, linked_api, graph, people):
    """Three dead letters: two fraud alerts and a card transaction, one per person."""
    (a, _), (b, _), (c, _) = people
    return refused(
        ("fraud.alert", a),
        ("fraud.alert", b),
        ("transaction.posted", c),
        api=linked_api,
        graph=graph,
    )


def staff(linked, sign_in, role):
    return sign_in(StaffMembershipFactory(bank=linked.bank, role=role).user)


def page_url(linked, **query):
    url = reverse("deliveries:dead_letters", kwargs={"bank": linked.bank.slug})
    if query:
        url += "?" + urlencode(query)
    return url


def shown_ids(response) -> list[int]:
    return [row["notification"].pk for row in response.context["rows"]]


def bulk(client, linked, **data):
    return client.post(
        reverse("deliveries:dead_letters_replay", kwargs={"bank": linked.bank.slug}), data
    )


# The list


def test_dead_letters_are_listed_newest_first_with_attempts_and_event(linked, sign_in, dead):
    Notification.objects.filter(pk=dead[0].pk).update(finished_at=timezone.now())
    client = staff(linked, sign_in, "operator")

    response = client.get(page_url(linked))

    body = response.content.decode()
    assert response.status_code == 200
    assert shown_ids(response) == [dead[0].pk, dead[2].pk, dead[1].pk]
    assert "3 dead-lettered notifications" in body
    assert dead[0].event.event_id in body
    assert "Messenger refused the message" in body
    assert "<td>Bad request</td><td>100</td>" in body
    assert "Messenger rejected the message as invalid." in body
    assert dead[0].text in body
    assert "fraud_alerts" in body
    assert linked.integration.page_access_token not in body


def test_the_list_filters_by_event_type_reason_and_date(linked, sign_in, dead):
    old = timezone.now() - dt.timedelta(days=10)
    Notification.objects.filter(pk=dead[1].pk).update(
        reason=Reason.BUDGET_EXHAUSTED, finished_at=old
    )
    client = staff(linked, sign_in, "operator")

    by_type = client.get(page_url(linked, event_type="transaction.posted"))
    by_reason = client.get(page_url(linked, reason="budget_exhausted"))
    by_date = client.get(page_url(linked, date_to=(old + dt.timedelta(days=1)).date().isoformat()))
    recent = client.get(page_url(linked, date_from=timezone.now().date().isoformat()))

    assert shown_ids(by_type) == [dead[2].pk]
    assert shown_ids(by_reason) == [dead[1].pk]
    assert shown_ids(by_date) == [dead[1].pk]
    assert sorted(shown_ids(recent)) == [dead[0].pk, dead[2].pk]


def test_a_bad_filter_is_a_400_with_the_reason(linked, sign_in, dead):
    client = staff(linked, sign_in, "operator")

    response = client.get(page_url(linked, date_from="2026-05-02", date_to="2026-05-01"))

    assert response.status_code == 400
    assert "The end date must not be before the start date." in response.content.decode()


def test_the_list_is_paginated(linked, linked_api, graph, sign_in):
    people = [linked.person() for _ in range(27)]
    refused(*[("fraud.alert", account) for account, _ in people], api=linked_api, graph=graph)
    client = staff(linked, sign_in, "operator")

    first = client.get(page_url(linked))
    second = client.get(page_url(linked, page=2))

    assert len(shown_ids(first)) == 25 and len(shown_ids(second)) == 2
    assert not set(shown_ids(first)) & set(shown_ids(second))
    assert "Page 1 of 2" in first.content.decode()


def test_another_banks_dead_letters_are_never_listed(linked, sign_in, dead):
    from portal.tests.factories import BankFactory

    other = BankFactory(slug="other")
    member = StaffMembershipFactory(bank=other, role="admin").user
    client = sign_in(member)

    response = client.get(reverse("deliveries:dead_letters", kwargs={"bank": "other"}))
    theirs = client.get(page_url(linked))

    assert response.status_code == 200 and shown_ids(response) == []
    assert theirs.status_code == 404


def test_auditors_read_dead_letters_but_get_no_replay_controls(linked, sign_in, dead):
    client = staff(linked, sign_in, "auditor")

    response = client.get(page_url(linked))
    attempt = client.post(
        reverse(
            "deliveries:dead_letter_replay", kwargs={"bank": linked.bank.slug, "notification": 1}
        )
    )

    assert response.status_code == 200 and len(shown_ids(response)) == 3
    body = response.content.decode()
    assert 'name="ids"' not in body and "formaction" not in body and "Replay all" not in body
    assert attempt.status_code == 403


def test_the_deliveries_panel_links_to_the_dead_letters(linked, sign_in, dead):
    client = staff(linked, sign_in, "operator")

    response = client.get(reverse("portal:dashboard", kwargs={"bank": linked.bank.slug}))

    assert page_url(linked) in response.content.decode()
    assert "Dead letters (3)" in response.content.decode()


# Replay, one at a time


def test_an_operator_replays_one_dead_letter_and_it_is_sent(linked, sign_in, dead, graph):
    client = staff(linked, sign_in, "operator")
    url = reverse(
        "deliveries:dead_letter_replay",
        kwargs={"bank": linked.bank.slug, "notification": dead[1].pk},
    )

    response = client.post(url, {"event_type": "fraud.alert"}, follow=True)
    services.deliveries_run(seconds=0)

    dead[1].refresh_from_db()
    assert response.redirect_chain[-1][0] == page_url(linked, event_type="fraud.alert")
    assert "1 notification queued again." in response.content.decode()
    assert dead[1].state == State.SENT
    assert set(Notification.objects.exclude(pk=dead[1].pk).values_list("state", flat=True)) == {
        State.DEAD
    }
    entry = AuditEvent.objects.get(action="notification.replayed")
    assert entry.target_id == str(dead[1].pk) and entry.actor_type == "staff"


def test_a_replay_whose_consent_was_revoked_is_refused_with_the_reason(linked, sign_in, dead):
    consent = dead[0].consent
    linking_services.consent_revoke(
        consent=consent, actor=Actor.system("test"), reason="Customer asked"
    )
    client = staff(linked, sign_in, "operator")
    before = AuditEvent.objects.filter(action__startswith="notification").count()

    response = client.post(
        reverse(
            "deliveries:dead_letter_replay",
            kwargs={"bank": linked.bank.slug, "notification": dead[0].pk},
        ),
        follow=True,
    )

    dead[0].refresh_from_db()
    assert dead[0].state == State.DEAD
    assert (
        f"Notification {dead[0].pk} was not replayed: The customer&#x27;s consent was revoked."
        in response.content.decode()
    )
    assert AuditEvent.objects.filter(action__startswith="notification").count() == before


def test_a_replay_whose_messenger_link_is_gone_is_refused(linked, dead):
    type(dead[2].consent).objects.filter(pk=dead[2].consent_id).update(psid="")

    report = services.dead_letters_replay(
        actor=Actor.system("test"), bank=linked.bank, notification_ids=[dead[2].pk]
    )

    assert report.count == 0
    assert report.refused == {
        dead[2].pk: "The Messenger link is gone: the customer unlinked, or linked again."
    }


def test_a_notification_that_is_not_dead_is_not_replayed(linked, sign_in, dead):
    Notification.objects.filter(pk=dead[0].pk).update(state=State.SENT)
    client = staff(linked, sign_in, "operator")

    response = client.post(
        reverse(
            "deliveries:dead_letter_replay",
            kwargs={"bank": linked.bank.slug, "notification": dead[0].pk},
        )
    )

    assert response.status_code == 404
    assert Notification.objects.get(pk=dead[0].pk).state == State.SENT


# Replay in bulk


def test_ticked_dead_letters_are_replayed_after_a_confirmation(linked, sign_in, dead):
    client = staff(linked, sign_in, "operator")
    ticked = [dead[0].pk, dead[2].pk]

    confirm = bulk(client, linked, ids=ticked, every_matching="")
    untouched = set(Notification.objects.values_list("state", flat=True))
    done = bulk(client, linked, ids=ticked, confirmed="on")

    assert confirm.status_code == 200
    assert "Replay 2 dead-lettered notifications?" in confirm.content.decode()
    assert untouched == {State.DEAD}
    assert done.status_code == 302
    states = dict(Notification.objects.values_list("pk", "state"))
    assert [states[n.pk] for n in dead] == [State.PENDING, State.DEAD, State.PENDING]
    (entry,) = AuditEvent.objects.filter(action="notifications.replayed")
    assert entry.details["count"] == 2 and sorted(entry.details["ids"]) == ticked
    assert entry.details["filters"] == {"scope": "selected"}


def test_every_dead_letter_matching_the_filter_is_replayed(linked, sign_in, dead):
    client = staff(linked, sign_in, "admin")

    confirm = bulk(client, linked, every_matching="on", event_type="fraud.alert")
    done = bulk(client, linked, every_matching="on", event_type="fraud.alert", confirmed="on")

    assert "Replay 2 dead-lettered notifications?" in confirm.content.decode()
    assert "2 \N{MULTIPLICATION SIGN} Fraud alert" in confirm.content.decode()
    assert done["Location"] == page_url(linked, event_type="fraud.alert")
    states = dict(Notification.objects.values_list("pk", "state"))
    assert [states[n.pk] for n in dead] == [State.PENDING, State.PENDING, State.DEAD]
    (entry,) = AuditEvent.objects.filter(action="notifications.replayed")
    assert entry.details["filters"] == {"scope": "every_matching", "event_type": "fraud.alert"}


def test_a_bulk_replay_names_the_ones_it_refused(linked, sign_in, dead):
    linking_services.consent_revoke(
        consent=dead[1].consent, actor=Actor.system("test"), reason="Customer asked"
    )
    client = staff(linked, sign_in, "operator")

    response = bulk(client, linked, every_matching="on", confirmed="on")
    page = client.get(response["Location"])

    body = page.content.decode()
    assert "2 notifications queued again." in body
    assert f"Notification {dead[1].pk} was not replayed" in body
    assert Notification.objects.get(pk=dead[1].pk).state == State.DEAD
    (entry,) = AuditEvent.objects.filter(action="notifications.replayed")
    assert entry.details["count"] == 2 and entry.details["refused"] == 1


def test_a_bulk_replay_with_nothing_ticked_changes_nothing(linked, sign_in, dead):
    client = staff(linked, sign_in, "operator")

    response = bulk(client, linked, every_matching="", confirmed="on")
    page = client.get(response["Location"])

    assert "Tick the notifications to replay, or replay them all." in page.content.decode()
    assert set(Notification.objects.values_list("state", flat=True)) == {State.DEAD}
    assert not AuditEvent.objects.filter(action__contains="replayed").exists()


def test_a_bulk_replay_ignores_another_banks_ids(linked, sign_in, dead):
    from portal.tests.factories import BankFactory

    other = BankFactory(slug="other")
    client = sign_in(StaffMembershipFactory(bank=other, role="admin").user)

    response = client.post(
        reverse("deliveries:dead_letters_replay", kwargs={"bank": "other"}),
        {"ids": [n.pk for n in dead], "confirmed": "on"},
    )

    assert response.status_code == 302
    assert set(Notification.objects.values_list("state", flat=True)) == {State.DEAD}
    assert not AuditEvent.objects.filter(action__contains="replayed").exists()


def test_bad_ids_are_refused_with_a_message(linked, sign_in, dead):
    client = staff(linked, sign_in, "operator")

    response = bulk(client, linked, ids=["1; DROP TABLE"], confirmed="on")
    page = client.get(response["Location"])

    assert "Notification ids are whole numbers." in page.content.decode()
    assert set(Notification.objects.values_list("state", flat=True)) == {State.DEAD}


# The command line shares the service


def test_the_command_names_the_dead_letters_it_refused(linked, dead):
    linking_services.consent_revoke(
        consent=dead[0].consent, actor=Actor.system("test"), reason="Customer asked"
    )
    out = StringIO()

    call_command("dead_letters", "--bank", "harbour", "--replay-all", stdout=out)

    assert f"{dead[0].pk}\tnot replayed: The customer's consent was revoked." in out.getvalue()
    assert "2 notification(s) queued again." in out.getvalue()
