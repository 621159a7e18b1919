"""What Messenger cannot carry is handed back to the bank, as the bank's server sees it.

Each reason of `notification.undeliverable` is produced the way it happens (the platform's
answer at the Send API boundary, a revoked consent, a paused integration), and the bank's
endpoint checks the callback with the Standard Webhooks reference library. Urgent updates
go back at once, routine ones after the bank's grace period; once handed back an update
is never sent on Messenger, even when the window opens.
"""

import json
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from conversation import callbacks
from conversation.models import BankCallback
from conversation.tests.test_fraud_callback import Receiver
from linking import services as linking_services
from linking.tests.factories import IntegrationFactory
from notifications import services
from notifications.models import Notification, Outcome
from notifications.services.hand_back import hand_backs_run
from notifications.tests.conftest import graph_error
from notifications.tests.factories import contact_for, event_payload
from notifications.tests.test_window_events import (  # noqa: F401  (a fixture)
    alert_sent,
    own_metrics,
    scraped,
    webhook,
)
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration, NotificationSettings
from portal.services import integration_pause
from portal.services.integration import signing_secret_new
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

State, Reason = Notification.State, Notification.Reason
CALLBACK_URL = "https://core.harbour.example/messenger/callbacks"


@pytest.fixture
def callback(linked):
    """The bank's callback URL and signing secret; returns the secret."""
    linked.integration.callback_url = CALLBACK_URL
    linked.integration.callback_signing_secret = signing_secret_new()
    linked.integration.save()
    return linked.integration.callback_signing_secret


def post(api, *events):
    response = api.post("/api/v1/events", {"events": list(events)}, format="json")
    assert response.status_code == 202, response.content
    return response


def deliver():
    services.deliveries_run(seconds=0)


def undeliverable() -> list[dict]:
    return [
        json.loads(c.body)
        for c in BankCallback.objects.filter(type="notification.undeliverable").order_by("id")
    ]


def the_bank_receives(secret: str) -> list[dict]:
    """Deliver every hand-back callback to the bank's endpoint, which verifies each with
    the Standard Webhooks reference library; returns the payloads it accepted."""
    receiver = Receiver([])
    for row in BankCallback.objects.filter(type="notification.undeliverable").order_by("id"):
        state = callbacks.callback_deliver(callback_id=row.pk, transport=receiver.transport)
        assert state == "delivered"
    return [Webhook(secret).verify(r.content, dict(r.headers)) for r in receiver.requests]


def held_outside_window(linked, linked_api, event_type="fraud.alert") -> Notification:
    contact_for(linked.consent, hours_ago=30)
    post(linked_api, event_payload(event_type, account=linked.card))
    deliver()
    notification = Notification.objects.get(event_type=event_type)
    assert (notification.state, notification.reason) == (State.HELD, Reason.NO_ALLOWED_FORM)
    return notification


# Each reason, as it happens


def test_an_urgent_alert_outside_the_window_goes_back_at_once_signed_for_the_bank(
    linked, linked_api, graph, callback
):
    notification = held_outside_window(linked, linked_api)

    report = hand_backs_run()

    assert report.handed_back == {"outside_window_no_template": 1}
    notification.refresh_from_db()
    assert notification.state == State.HANDED_BACK
    assert notification.hand_back_reason == "outside_window_no_template"
    assert notification.reason == Reason.NO_ALLOWED_FORM  # why it was held stays readable
    (payload,) = the_bank_receives(callback)
    assert payload["type"] == "notification.undeliverable"
    assert payload["data"] == {
        "notification_id": str(notification.pk),
        "event_id": notification.event.event_id,
        "event_type": "fraud.alert",
        "customer_id": "cu-ana",
        "account_id": "visa-001",
        "reason": "outside_window_no_template",
        "urgency": "urgent",
        "occurred_at": payload["data"]["occurred_at"],
        "may_have_reached_customer": False,
    }
    assert graph.sent == []


def test_the_outcome_feed_and_the_audit_chain_say_handed_back(linked, linked_api, graph, callback):
    notification = held_outside_window(linked, linked_api)

    hand_backs_run()

    outcomes = linked_api.get("/api/v1/outcomes").json()["outcomes"]
    (handed,) = [o for o in outcomes if o["type"] == "notification.handed_back"]
    assert handed["notification_id"] == str(notification.pk)
    assert handed["hand_back_reason"] == "outside_window_no_template"
    assert handed["notification_reason"] == "no_allowed_form"
    assert handed["notification_urgency"] == "urgent"
    (entry,) = AuditEvent.objects.filter(action="notification.handed_back")
    (row,) = BankCallback.objects.filter(type="notification.undeliverable")
    assert entry.details["webhook_id"] == row.webhook_id
    assert entry.details["reason"] == "outside_window_no_template"


def test_a_person_messenger_cannot_reach_is_handed_back(linked, linked_api, graph, callback):
    graph.answers = [graph_error(551, 1545041, message="This person isn't available")]
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()
    assert Notification.objects.get().state == State.FAILED

    hand_backs_run()

    (payload,) = the_bank_receives(callback)
    assert payload["data"]["reason"] == "person_unreachable"


def test_an_update_whose_consent_ended_while_it_waited_is_handed_back(
    linked, linked_api, graph, callback
):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    linking_services.consent_revoke(
        consent=linked.consent, actor=Actor.system("test"), reason="Customer stopped sharing"
    )
    deliver()
    assert Notification.objects.get().state == State.CANCELLED

    hand_backs_run()

    (payload,) = the_bank_receives(callback)
    assert payload["data"]["reason"] == "consent_ended"
    assert graph.sent == []


def test_a_dead_lettered_update_is_handed_back(linked, linked_api, graph, callback):
    graph.answers = [graph_error(100, message="(#100) Invalid parameter")]
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()
    assert Notification.objects.get().state == State.DEAD

    hand_backs_run()

    (payload,) = the_bank_receives(callback)
    assert payload["data"]["reason"] == "dead_lettered"
    # Staff cannot replay it on Messenger: the bank's channels have it now.
    report = services.dead_letters_replay(
        actor=Actor.system("test"),
        bank=linked.bank,
        notification_ids=[Notification.objects.get().pk],
    )
    assert report.replayed == []
    assert Notification.objects.get().state == State.HANDED_BACK


def test_updates_waiting_on_a_paused_integration_are_handed_back(
    linked, linked_api, graph, callback
):
    integration_pause(actor=Actor.system("test"), integration=linked.integration, reason="test")
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
    )
    deliver()
    assert graph.sent == []

    report = hand_backs_run()

    assert report.handed_back == {"integration_paused": 1}  # the routine one waits its grace
    (payload,) = the_bank_receives(callback)
    assert payload["data"]["reason"] == "integration_paused"
    assert payload["data"]["event_type"] == "fraud.alert"
    routine = Notification.objects.get(event_type="transaction.posted")
    assert routine.state == State.PENDING


def test_a_pending_update_of_a_live_integration_is_not_handed_back(
    linked, linked_api, graph, callback
):
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    report = hand_backs_run()

    assert report.total == 0 and undeliverable() == []
    deliver()
    assert Notification.objects.get().state == State.SENT


# Urgent at once, routine after the grace period


def test_a_routine_update_waits_for_the_grace_period_then_goes_back(
    linked, linked_api, graph, callback
):
    notification = held_outside_window(linked, linked_api, "transaction.posted")

    assert hand_backs_run().total == 0
    assert hand_backs_run(now=timezone.now() + timedelta(minutes=59)).total == 0
    assert hand_backs_run(now=timezone.now() + timedelta(minutes=61)).total == 1

    notification.refresh_from_db()
    assert notification.state == State.HANDED_BACK
    (payload,) = undeliverable()
    assert payload["data"]["urgency"] == "routine"


def test_a_bank_with_no_grace_gets_routine_updates_back_at_once(
    linked, linked_api, graph, callback
):
    NotificationSettings.objects.update_or_create(
        bank=linked.bank, defaults={"hand_back_grace_minutes": 0}
    )
    held_outside_window(linked, linked_api, "transaction.posted")

    assert hand_backs_run().handed_back == {"outside_window_no_template": 1}


def test_a_routine_update_released_by_the_window_within_the_grace_is_sent_not_handed_back(
    client, linked, linked_api, graph, callback
):
    notification = held_outside_window(linked, linked_api, "transaction.posted")

    webhook(client, linked, {"message": {"mid": "m_hello", "text": "hello"}})
    deliver()
    hand_backs_run(now=timezone.now() + timedelta(minutes=61))

    notification.refresh_from_db()
    assert notification.state == State.SENT
    assert undeliverable() == []


# Once, and final


def test_an_update_is_handed_back_once(linked, linked_api, graph, callback):
    held_outside_window(linked, linked_api)

    hand_backs_run()
    hand_backs_run()

    assert len(undeliverable()) == 1
    assert Outcome.objects.filter(type="notification.handed_back").count() == 1


def test_after_hand_back_the_window_opening_sends_nothing_on_messenger(
    client, linked, linked_api, graph, callback
):
    held_outside_window(linked, linked_api)
    hand_backs_run()

    webhook(client, linked, {"message": {"mid": "m_hello", "text": "hello"}})
    deliver()

    assert alert_sent(graph) == []
    assert Notification.objects.get().state == State.HANDED_BACK


# Signed, retried, resendable


def test_the_hand_back_callback_is_retried_until_the_bank_takes_it(
    linked, linked_api, graph, callback
):
    held_outside_window(linked, linked_api)
    hand_backs_run()
    (row,) = BankCallback.objects.filter(type="notification.undeliverable")
    receiver = Receiver([503, 204])

    first = callbacks.callback_deliver(callback_id=row.pk, transport=receiver.transport)
    row.refresh_from_db()
    second = callbacks.callback_deliver(
        callback_id=row.pk, now=row.next_attempt_at, transport=receiver.transport
    )

    assert (first, second) == ("pending", "delivered")
    assert [r.headers["webhook-id"] for r in receiver.requests] == [row.webhook_id] * 2
    for request in receiver.requests:
        assert Webhook(callback).verify(request.content, dict(request.headers))


def test_staff_see_the_hand_back_in_the_callback_log_and_can_send_a_dead_one_again(
    sign_in, client, linked, linked_api, graph, callback, settings
):
    settings.NOTIFICATIONS_CALLBACK_MAX_ATTEMPTS = 1
    notification = held_outside_window(linked, linked_api)
    hand_backs_run()
    (row,) = BankCallback.objects.filter(type="notification.undeliverable")
    callbacks.callback_deliver(callback_id=row.pk, transport=Receiver([500]).transport)
    row.refresh_from_db()
    assert row.state == "dead"
    staff = StaffMembershipFactory(bank=linked.bank, role="operator")
    sign_in(staff.user)

    page = client.get(reverse("conversation:fraud_answers", args=[linked.bank.slug]))
    text = page.content.decode()
    assert "notification.undeliverable" in text
    assert notification.event.event_id in text and "outside_window_no_template" in text
    response = client.post(
        reverse("conversation:callback_retry", args=[linked.bank.slug, row.pk]), follow=True
    )

    assert response.status_code == 200
    row.refresh_from_db()
    assert row.state == "pending" and row.attempts == 0


# A bank with nowhere to receive them


def test_without_a_callback_url_nothing_is_handed_back_and_the_dashboard_warns(
    sign_in, client, linked, linked_api, graph
):
    notification = held_outside_window(linked, linked_api)

    report = hand_backs_run()

    assert report.total == 0 and report.banks_without_callback == [linked.bank.pk]
    notification.refresh_from_db()
    assert notification.state == State.HELD
    assert BankCallback.objects.count() == 0
    staff = StaffMembershipFactory(bank=linked.bank, role="operator")
    sign_in(staff.user)
    page = client.get(reverse("portal:dashboard", args=[linked.bank.slug])).content.decode()
    panel = page[page.index('id="panel-notifications-hand-back"') :][:2500]
    assert 'role="alert"' in panel and "no callback URL is set" in panel

    linked.integration.callback_url = CALLBACK_URL
    linked.integration.callback_signing_secret = signing_secret_new()
    linked.integration.save()
    assert hand_backs_run().total == 1


def test_the_dashboard_counts_what_was_handed_back_by_reason(
    sign_in, client, linked, linked_api, graph, callback
):
    held_outside_window(linked, linked_api)
    hand_backs_run()
    staff = StaffMembershipFactory(bank=linked.bank, role="auditor")
    sign_in(staff.user)

    page = client.get(reverse("portal:dashboard", args=[linked.bank.slug])).content.decode()

    panel = page[page.index('id="panel-notifications-hand-back"') :][:2500]
    assert "Outside the 24-hour window, with no approved utility template" in panel
    assert 'role="alert"' not in panel


# The grace period: admins set it, audited


def test_an_admin_sets_the_grace_period_and_it_is_audited(sign_in, client, linked):
    admin = StaffMembershipFactory(bank=linked.bank, role="admin")
    sign_in(admin.user)
    url = reverse("portal:hand_back_edit", args=[linked.bank.slug])

    response = client.post(url, {"hand_back_grace_minutes": "15"})

    assert response.status_code == 302
    assert NotificationSettings.objects.get(bank=linked.bank).hand_back_grace_minutes == 15
    (entry,) = AuditEvent.objects.filter(action="notification_settings.updated")
    assert entry.details["changed"] == {"hand_back_grace_minutes": [60, 15]}
    policies = client.get(reverse("portal:notification_policies", args=[linked.bank.slug]))
    assert "15 minutes" in policies.content.decode()


@pytest.mark.parametrize("value", ["-1", "1441", "soon", ""])
def test_a_bad_grace_period_is_refused_and_nothing_changes(sign_in, client, linked, value):
    admin = StaffMembershipFactory(bank=linked.bank, role="admin")
    sign_in(admin.user)

    response = client.post(
        reverse("portal:hand_back_edit", args=[linked.bank.slug]),
        {"hand_back_grace_minutes": value},
    )

    assert response.status_code == 200  # the form again, with the error
    assert "has-error" in response.content.decode()
    settings_row = NotificationSettings.objects.filter(bank=linked.bank).first()
    assert settings_row is None or settings_row.hand_back_grace_minutes == 60
    assert not AuditEvent.objects.filter(action="notification_settings.updated").exists()


def test_an_operator_cannot_change_the_grace_period(sign_in, client, linked):
    operator = StaffMembershipFactory(bank=linked.bank, role="operator")
    sign_in(operator.user)

    response = client.post(
        reverse("portal:hand_back_edit", args=[linked.bank.slug]),
        {"hand_back_grace_minutes": "0"},
    )

    assert response.status_code == 403
    assert not AuditEvent.objects.filter(action="notification_settings.updated").exists()


def test_another_banks_admin_cannot_change_the_grace_period(sign_in, client, linked):
    other = StaffMembershipFactory(bank=BankFactory(slug="rival"), role="admin")
    sign_in(other.user)

    response = client.post(
        reverse("portal:hand_back_edit", args=[linked.bank.slug]),
        {"hand_back_grace_minutes": "0"},
    )

    assert response.status_code in (403, 404)
    assert not NotificationSettings.objects.filter(
        bank=linked.bank, hand_back_grace_minutes=0
    ).exists()


def test_two_banks_each_get_only_their_own_updates_back(linked, linked_api, graph, callback):
    rival = BankFactory(slug="rival", notification_defaults=True)
    IntegrationFactory(
        bank=rival,
        page_id="9988776655",
        callback_url="https://core.rival.example/callbacks",
        callback_signing_secret=signing_secret_new(),
    )
    held_outside_window(linked, linked_api)

    hand_backs_run()

    (row,) = BankCallback.objects.filter(type="notification.undeliverable")
    assert row.bank_id == linked.bank.pk and row.url == CALLBACK_URL
    assert not BankCallback.objects.filter(bank=rival).exists()
    assert MessengerIntegration.objects.count() == 2


@pytest.mark.usefixtures("own_metrics")
def test_operators_count_hand_backs_by_reason_in_metrics(
    client, linked, linked_api, graph, callback
):
    held_outside_window(linked, linked_api)

    hand_backs_run()

    key = ("bankside_notifications_handed_back_total", (("reason", "outside_window_no_template"),))
    assert scraped(client)[key] == 1
