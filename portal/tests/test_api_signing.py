import json
import time
import uuid
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from standardwebhooks import Webhook

from core.api.signing import signature_for
from notifications.models import Event
from notifications.tests.factories import event_payload
from notifications.tests.problems import assert_problem
from portal.audit import Actor
from portal.models import ApiSigning, AuditEvent, SignedRequestId
from portal.services.api_records import api_records_purge
from portal.services.api_settings import api_signing_enable, api_signing_rotate

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
ADMIN = Actor.system("test")


@pytest.fixture
def secret(bank):
    return api_signing_enable(actor=ADMIN, bank=bank)


def signed_post(api, payload, secret, *, webhook_id=None, timestamp=None, signature=None):
    body = json.dumps(payload).encode()
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = signature or signature_for(
        secret=secret, webhook_id=webhook_id, timestamp=timestamp, body=body
    )
    return api.post(
        EVENTS,
        body,
        content_type="application/json",
        HTTP_WEBHOOK_ID=webhook_id,
        HTTP_WEBHOOK_TIMESTAMP=timestamp,
        HTTP_WEBHOOK_SIGNATURE=signature,
    )


def test_a_correctly_signed_request_is_accepted(api, card, secret):
    response = signed_post(api, event_payload(account=card), secret)

    assert response.status_code == 202
    assert Event.objects.count() == 1


def test_a_request_signed_by_the_standard_webhooks_reference_library_is_accepted(api, card, secret):
    payload = event_payload(account=card)
    body = json.dumps(payload, ensure_ascii=False).encode()
    webhook_id = f"msg_{uuid.uuid4().hex}"
    sent_at = timezone.now()
    signature = Webhook(secret).sign(webhook_id, sent_at, body)

    response = signed_post(
        api,
        payload,
        secret,
        webhook_id=webhook_id,
        timestamp=int(sent_at.timestamp()),
        signature=signature,
    )

    assert response.status_code == 202
    assert Event.objects.filter(event_id=payload["id"]).exists()


def test_an_unsigned_request_is_refused_when_signing_is_required(api, card, secret):
    response = api.post(EVENTS, event_payload(account=card), format="json")

    body = assert_problem(response, 401)
    assert body["code"] == "invalid_signature"
    assert "requires signed requests" in body["detail"]
    assert not Event.objects.exists()


def test_a_stale_timestamp_is_refused(api, card, secret):
    response = signed_post(
        api, event_payload(account=card), secret, timestamp=int(time.time()) - 301
    )

    assert "5 minutes" in assert_problem(response, 401)["detail"]


def test_a_signature_of_another_body_is_refused(api, card, secret):
    other = signature_for(secret=secret, webhook_id="msg_1", timestamp="1", body=b"{}")

    response = signed_post(
        api, event_payload(account=card), secret, webhook_id="msg_1", signature=other
    )

    assert "does not match" in assert_problem(response, 401)["detail"]


def test_a_replayed_webhook_id_is_refused(api, card, secret):
    payload = event_payload(account=card)
    assert signed_post(api, payload, secret, webhook_id="msg_once").status_code == 202

    response = signed_post(api, payload, secret, webhook_id="msg_once")

    assert "already used" in assert_problem(response, 401)["detail"]


def test_one_of_several_signatures_may_match_during_rotation(api, card, secret):
    payload = event_payload(account=card)
    body, timestamp = json.dumps(payload).encode(), str(int(time.time()))
    old = signature_for(secret=secret, webhook_id="msg_r", timestamp=timestamp, body=body)
    new_secret = api_signing_rotate(actor=ADMIN, bank=card.bank)
    new = signature_for(secret=new_secret, webhook_id="msg_r", timestamp=timestamp, body=body)

    response = signed_post(
        api, payload, secret, webhook_id="msg_r", timestamp=timestamp, signature=f"{old} {new}"
    )

    assert response.status_code == 202


def test_a_rotated_secret_no_longer_verifies(api, card, secret):
    api_signing_rotate(actor=ADMIN, bank=card.bank)

    assert_problem(signed_post(api, event_payload(account=card), secret), 401)


def test_unsigned_requests_pass_while_signing_is_optional(api, card, secret):
    call_command("api_signing", "--bank", card.bank.slug, "--disable")

    response = api.post(EVENTS, event_payload(account=card), format="json")

    assert response.status_code == 202


def test_a_signature_without_a_secret_set_up_is_refused(api, card):
    response = signed_post(api, event_payload(account=card), "whsec_" + "A" * 44)

    assert "not set up" in assert_problem(response, 401)["detail"]


def test_signing_applies_to_customer_writes_too(api, bank, secret):
    response = api.put("/api/v1/customers/cu-1", {"name": "A", "accounts": []}, format="json")

    assert_problem(response, 401)


def test_the_command_prints_a_new_secret_once_and_stores_it_encrypted(bank, capsys):
    call_command("api_signing", "--bank", bank.slug, "--enable")
    printed = capsys.readouterr().out
    secret = next(line for line in printed.splitlines() if line.startswith("whsec_"))
    call_command("api_signing", "--bank", bank.slug, "--enable")
    again = capsys.readouterr().out

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM notifications_apisigning")
        (stored,) = cursor.fetchone()
    assert ApiSigning.objects.get(bank=bank).secret == secret
    assert ApiSigning.objects.get(bank=bank).required
    assert secret not in stored
    assert "whsec_" not in again
    assert secret not in repr(list(AuditEvent.objects.values_list("details", flat=True)))


def test_the_command_rotates_the_secret(bank, secret, capsys):
    call_command("api_signing", "--bank", bank.slug, "--rotate")

    printed = capsys.readouterr().out
    assert "whsec_" in printed
    assert secret not in printed
    assert ApiSigning.objects.get(bank=bank).secret in printed


def test_webhook_ids_are_forgotten_once_past_any_replay_window(api, card, secret):
    signed_post(api, event_payload(account=card), secret, webhook_id="msg_old")
    signed_post(api, event_payload(account=card), secret, webhook_id="msg_new")
    SignedRequestId.objects.filter(webhook_id="msg_old").update(
        received_at=timezone.now() - timedelta(minutes=11)
    )

    api_records_purge()

    assert list(SignedRequestId.objects.values_list("webhook_id", flat=True)) == ["msg_new"]


@pytest.mark.parametrize(
    ("webhook_id", "timestamp", "named"),
    [
        (None, "9" * 400, "webhook-timestamp"),
        (None, "-" + "9" * 400, "webhook-timestamp"),
        (None, "1e30", "webhook-timestamp"),
        (None, "１７６７２２５６００", "webhook-timestamp"),  # noqa: RUF001 - full-width digits
        (None, "1_767_225_600", "webhook-timestamp"),
        ("msg\x001", None, "webhook-id"),
        ("m" * 256, None, "webhook-id"),
    ],
)
def test_a_signature_header_out_of_shape_is_a_400_problem(
    api, card, secret, webhook_id, timestamp, named
):
    response = signed_post(
        api, event_payload(account=card), secret, webhook_id=webhook_id, timestamp=timestamp
    )

    body = assert_problem(response, 400)
    assert body["code"] == "malformed_signature"
    assert named in body["detail"]
    assert not Event.objects.exists()
    assert not SignedRequestId.objects.exists()
