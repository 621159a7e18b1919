"""Rotating the callback signing secret with an overlap: while it lasts every callback
carries a signature with each secret, and the Standard Webhooks reference library accepts
it whichever of the two the bank's receiver holds."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from conversation import callbacks
from conversation.models import BankCallback
from conversation.tests.test_conversation import write
from conversation.tests.test_fraud_callback import CALLBACK_URL, Receiver
from notifications import services as delivery_services
from notifications.fraud_replies import fraud_payload
from notifications.models import Notification
from notifications.tests.factories import event_payload
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration, StaffMembership
from portal.services import integration_signing_secret_rotate
from portal.services.integration import signing_secret_new
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


@pytest.fixture
def alert(linked, linked_api, graph):
    """A fraud alert delivered to Ana, and the bank's callback configured (as in
    test_fraud_callback)."""
    linked.integration.callback_url = CALLBACK_URL
    linked.integration.callback_signing_secret = signing_secret_new()
    linked.integration.save()
    response = linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=linked.card)]},
        format="json",
    )
    assert response.status_code == 202
    delivery_services.deliveries_run(seconds=0)
    graph.sent.clear()
    return Notification.objects.get()


def answered_callback(linked, alert) -> BankCallback:
    write(linked, "No", payload=fraud_payload("FRAUD_NO", alert.pk))
    return BankCallback.objects.get()


def delivered(callback) -> tuple[bytes, dict]:
    receiver = Receiver([204])
    callbacks.callback_deliver(callback_id=callback.pk, transport=receiver.transport)
    (request,) = receiver.requests
    return request.content, dict(request.headers)


def accepted_by(secret: str, body: bytes, headers: dict) -> bool:
    try:
        Webhook(secret).verify(body, headers)
    except WebhookVerificationError:
        return False
    return True


def test_during_the_overlap_a_receiver_with_either_secret_accepts_the_callback(
    linked, alert, graph
):
    old = linked.integration.callback_signing_secret
    change = integration_signing_secret_rotate(
        actor=Actor.system("test"), integration=linked.integration, overlap=timedelta(hours=24)
    )
    new = change.signing_secret

    body, headers = delivered(answered_callback(linked, alert))

    assert len(headers["webhook-signature"].split(" ")) == 2
    assert accepted_by(old, body, headers)
    assert accepted_by(new, body, headers)
    assert Webhook(new).verify(body, headers)["type"] == "fraud_alert.answered"


def test_after_the_overlap_only_the_new_secret_signs(linked, alert, graph):
    old = linked.integration.callback_signing_secret
    new = integration_signing_secret_rotate(
        actor=Actor.system("test"), integration=linked.integration, overlap=timedelta(hours=1)
    ).signing_secret
    MessengerIntegration.objects.filter(pk=linked.integration.pk).update(
        callback_signing_secret_previous_until=timezone.now() - timedelta(seconds=1)
    )

    body, headers = delivered(answered_callback(linked, alert))

    assert len(headers["webhook-signature"].split(" ")) == 1
    assert not accepted_by(old, body, headers)
    assert accepted_by(new, body, headers)


def test_without_an_overlap_the_old_secret_stops_at_once(linked, alert, graph):
    old = linked.integration.callback_signing_secret
    new = integration_signing_secret_rotate(
        actor=Actor.system("test"), integration=linked.integration
    ).signing_secret

    body, headers = delivered(answered_callback(linked, alert))

    assert not accepted_by(old, body, headers)
    assert accepted_by(new, body, headers)


def test_a_second_rotation_leaves_only_the_last_two_secrets_signing(linked, alert, graph):
    first = linked.integration.callback_signing_secret
    system = Actor.system("test")
    second = integration_signing_secret_rotate(
        actor=system, integration=linked.integration, overlap=timedelta(days=3)
    ).signing_secret
    third = integration_signing_secret_rotate(
        actor=system, integration=linked.integration, overlap=timedelta(days=3)
    ).signing_secret

    body, headers = delivered(answered_callback(linked, alert))

    assert [accepted_by(s, body, headers) for s in (first, second, third)] == [False, True, True]


def test_an_admin_rotates_with_an_overlap_and_it_is_audited(linked, alert, graph, sign_in):
    admin = StaffMembershipFactory(bank=linked.bank, role=Role.ADMIN)
    client = sign_in(admin.user)
    url = reverse("portal:signing_secret_rotate", kwargs={"bank": linked.bank.slug})

    page = client.post(url, {"overlap": "3d"}, follow=True).content.decode()

    integration = MessengerIntegration.objects.get(pk=linked.integration.pk)
    shown = page.split('id="reveal-value">')[1].split("<")[0]
    assert shown == integration.callback_signing_secret
    assert "callbacks carry two signatures" in page
    assert "still signs too, until" in page
    left = integration.callback_signing_secret_previous_until - timezone.now()
    assert timedelta(days=3) - timedelta(minutes=1) < left <= timedelta(days=3)
    entry = AuditEvent.objects.filter(action="integration.signing_secret_rotated").latest("pk")
    assert entry.actor_label == admin.user.username
    assert entry.details["overlap_seconds"] == 3 * 24 * 3600
    assert shown not in str(entry.details)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_operators_and_auditors_cannot_rotate_the_secret(linked, sign_in, role):
    member = StaffMembershipFactory(bank=linked.bank, role=role)
    before = linked.integration.callback_signing_secret
    url = reverse("portal:signing_secret_rotate", kwargs={"bank": linked.bank.slug})

    response = sign_in(member.user).post(url, {"overlap": "1h"})

    assert response.status_code == 403
    after = MessengerIntegration.objects.get(pk=linked.integration.pk)
    assert after.callback_signing_secret == before
    assert after.callback_signing_secret_previous == ""


def test_an_unknown_overlap_is_refused_and_the_secret_is_kept(linked, sign_in):
    admin = StaffMembershipFactory(bank=linked.bank, role=Role.ADMIN)
    before = linked.integration.callback_signing_secret
    url = reverse("portal:signing_secret_rotate", kwargs={"bank": linked.bank.slug})

    page = sign_in(admin.user).post(url, {"overlap": "90d"}, follow=True).content.decode()

    assert "none to 7 days" in page
    assert (
        MessengerIntegration.objects.get(pk=linked.integration.pk).callback_signing_secret == before
    )
