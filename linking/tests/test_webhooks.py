"""Messenger's webhook for a bank: handshake, signatures, and what events change."""

import datetime as dt
import hashlib
import hmac
import json

import pytest

from linking import signals
from linking.models import Contact
from linking.tests.factories import IntegrationFactory
from portal.audit import Actor

pytestmark = pytest.mark.django_db


@pytest.fixture
def integration():
    return IntegrationFactory(bank__slug="harbour")


def post(client, integration, body, *, secret=None):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    signature = hmac.new((secret or integration.app_secret).encode(), raw, hashlib.sha256)
    return client.post(
        "/webhooks/messenger/harbour/",
        data=raw,
        content_type="application/json",
        headers={"X-Hub-Signature-256": "sha256=" + signature.hexdigest()},
    )


def envelope(integration, *items):
    return {
        "object": "page",
        "entry": [
            {
                "id": integration.page_id,
                "time": 1,
                "messaging": [
                    {
                        "sender": {"id": psid},
                        "recipient": {"id": integration.page_id},
                        "timestamp": ts,
                        **c,
                    }
                    for psid, ts, c in items
                ],
            }
        ],
    }


def test_the_handshake_answers_the_challenge_only_for_the_right_token(client, integration):
    ok = client.get(
        "/webhooks/messenger/harbour/",
        {"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"},
    )
    wrong = client.get(
        "/webhooks/messenger/harbour/",
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1158201444"},
    )

    assert (ok.status_code, ok.content) == (200, b"1158201444")
    assert wrong.status_code == 403


def test_a_bad_signature_is_refused_and_changes_nothing(client, integration):
    body = envelope(
        integration, ("555", 1_767_225_600_000, {"message": {"mid": "m1", "text": "hi"}})
    )

    response = post(client, integration, body, secret="not-the-app-secret")

    assert response.status_code == 403
    assert not Contact.objects.exists()


def test_a_malformed_envelope_is_a_400(client, integration):
    assert post(client, integration, b"{not json").status_code == 400


def test_messages_open_the_window_and_the_newest_time_wins(client, integration):
    newer, older = 1_767_225_660_000, 1_767_225_600_000
    body = envelope(
        integration,
        ("555", newer, {"message": {"mid": "m2", "text": "second"}}),
        ("555", older, {"message": {"mid": "m1", "text": "first"}}),
    )

    assert post(client, integration, body).status_code == 200
    post(
        client,
        integration,
        envelope(integration, ("555", older, {"postback": {"title": "Balance", "payload": "BAL"}})),
    )

    contact = Contact.objects.get(psid="555", page_id=integration.page_id)
    assert contact.last_inbound_at == dt.datetime.fromtimestamp(newer / 1000, tz=dt.UTC)


@pytest.mark.parametrize(
    "content",
    [
        {"reaction": {"mid": "m1", "action": "react", "reaction": "like"}},
        {"referral": {"ref": "r1", "source": "SHORTLINK", "type": "OPEN_THREAD"}},
        {"postback": {"title": "Get Started", "payload": "GET_STARTED"}},
        {"optin": {"type": "notification_messages", "payload": "p"}},
    ],
    ids=["reaction", "referral", "postback", "optin"],
)
def test_what_meta_counts_as_acting_opens_the_window(client, integration, content):
    at = 1_767_225_600_000

    post(client, integration, envelope(integration, ("555", at, content)))

    contact = Contact.objects.get(psid="555", page_id=integration.page_id)
    assert contact.last_inbound_at == dt.datetime.fromtimestamp(at / 1000, tz=dt.UTC)


def test_reads_and_deliveries_do_not_open_the_window(client, integration):
    body = envelope(integration, ("555", 1_767_225_600_000, {"read": {"watermark": 1}}))

    post(client, integration, body)

    assert not Contact.objects.exists()


def test_other_events_are_handed_on_including_unknown_kinds(client, integration):
    received = []

    def listen(sender, **kwargs):
        received.append(kwargs)

    signals.messenger_event.connect(listen)
    try:
        post(
            client,
            integration,
            envelope(
                integration,
                ("555", 1, {"message": {"mid": "m1", "text": "balance"}}),
                ("555", 2, {"reaction": {"mid": "m1", "action": "react", "emoji": "👍"}}),
                ("555", 3, {"message_edit": {"mid": "m1", "text": "balance?"}}),
            ),
        )
    finally:
        signals.messenger_event.disconnect(listen)

    kinds = [type(k["event"]).__name__ for k in received]
    assert kinds == ["MessageEvent", "ReactionEvent", "UnknownEvent"]
    assert {k["bank_id"] for k in received} == {integration.bank_id}


def test_events_naming_another_page_are_ignored(client, integration):
    body = envelope(integration, ("555", 1, {"message": {"mid": "m1", "text": "hi"}}))
    body["entry"][0]["id"] = "999999999"
    for item in body["entry"][0]["messaging"]:
        item["recipient"]["id"] = "999999999"

    assert post(client, integration, body).status_code == 200
    assert not Contact.objects.exists()


def test_an_unknown_bank_is_a_404(client, integration):
    assert (
        client.post(
            "/webhooks/messenger/nobody/", data=b"{}", content_type="application/json"
        ).status_code
        == 404
    )


GOOD = ("555", 1_767_225_600_000, {"message": {"mid": "m_good", "text": "balance"}})
BAD_EVENTS = {
    "timestamp far in the future": ("777", 10**30, {"message": {"mid": "m_bad", "text": "hi"}}),
    "timestamp far in the past": ("777", -(10**30), {"message": {"mid": "m_bad", "text": "hi"}}),
    "sender id of 33 digits": ("7" * 33, 1, {"message": {"mid": "m_bad", "text": "hi"}}),
    "sender id with a NUL": ("77\x007", 1, {"message": {"mid": "m_bad", "text": "hi"}}),
    "sender id not digits": ("PSID-777", 1, {"message": {"mid": "m_bad", "text": "hi"}}),
    "text with a NUL": ("777", 1, {"message": {"mid": "m_bad", "text": "hi\x00"}}),
    "mid with a NUL": ("777", 1, {"message": {"mid": "m_bad\x00", "text": "hi"}}),
    "watermark out of range": ("777", 1, {"read": {"watermark": 10**30}}),
}


def stored():
    from conversation.models import ConversationMessage

    return (
        sorted(Contact.objects.values_list("psid", flat=True)),
        sorted(ConversationMessage.objects.values_list("mid", flat=True)),
    )


@pytest.mark.parametrize("bad", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_signed_event_out_of_shape_is_skipped_and_writes_nothing(client, integration, bad):
    response = post(client, integration, envelope(integration, bad))

    assert (response.status_code, response.content) == (200, b"EVENT_RECEIVED")
    assert stored() == ([], [])


@pytest.mark.parametrize("bad", BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_a_bad_event_in_a_batch_leaves_the_good_one_applied(client, integration, bad):
    response = post(client, integration, envelope(integration, bad, GOOD))

    assert response.status_code == 200
    assert stored() == (["555"], ["m_good"])


def test_a_timestamp_written_as_a_huge_float_is_skipped(client, integration):
    raw = json.dumps(envelope(integration, GOOD)).replace(
        '"entry": [{',
        '"entry": [{"messaging": [{"sender": {"id": "777"}, "recipient": '
        f'{{"id": "{integration.page_id}"}}, "timestamp": 1e30, "message": {{"mid": "m_bad"}}}}], '
        '"id": "0"}, {',
        1,
    )

    response = post(client, integration, raw.encode())

    assert response.status_code == 200
    assert stored() == (["555"], ["m_good"])


def test_an_entry_without_a_usable_page_id_is_skipped_and_the_others_applied(client, integration):
    body = envelope(integration, GOOD)
    body["entry"].insert(0, {**envelope(integration, BAD_EVENTS["text with a NUL"])["entry"][0]})
    body["entry"][0]["id"] = "9" * 40

    response = post(client, integration, body)

    assert response.status_code == 200
    assert stored() == (["555"], ["m_good"])


def test_a_failure_while_applying_one_event_undoes_that_event_only(
    client, integration, monkeypatch
):
    from conversation import services as conversation

    record = conversation.inbound_record

    def fail_for_777(*, event, **kwargs):
        if event.sender_id == "777":
            raise RuntimeError("storage failed")
        return record(event=event, **kwargs)

    monkeypatch.setattr(conversation, "inbound_record", fail_for_777)
    failing = ("777", 1_767_225_600_001, {"message": {"mid": "m_bad", "text": "hi"}})

    response = post(client, integration, envelope(integration, failing, GOOD))

    assert response.status_code == 200
    assert stored() == (["555"], ["m_good"])  # no Contact for 777: its window was not opened


def test_a_database_outage_while_applying_an_event_is_a_500_and_meta_s_retry_applies_it(
    client, integration, monkeypatch
):
    from django.db import OperationalError

    from conversation import services as conversation

    record = conversation.inbound_record

    def database_restarting(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(conversation, "inbound_record", database_restarting)
    client.raise_request_exception = False

    refused = post(client, integration, envelope(integration, GOOD))

    assert refused.status_code == 500  # Meta delivers the batch again
    assert stored() == ([], [])
    monkeypatch.setattr(conversation, "inbound_record", record)

    retried = post(client, integration, envelope(integration, GOOD))

    assert retried.status_code == 200
    assert stored() == (["555"], ["m_good"])


@pytest.mark.parametrize(
    "field", ["message_template_status_update", "messenger_template_status_update"]
)
def test_a_template_review_is_recorded_under_either_field_name(client, integration, field):
    from notifications.tests.factories import approved_utility_template
    from portal.models import AuditEvent, UtilityTemplate
    from portal.services import notification_defaults_create

    notification_defaults_create(actor=Actor.system("test"), bank=integration.bank)
    utility = approved_utility_template(integration.bank, "fraud.alert")
    UtilityTemplate.objects.filter(pk=utility.pk).update(
        platform_template_id="778899", status="PENDING"
    )
    change = {
        "field": field,
        "value": {
            "event": "REJECTED",
            "message_template_id": 778899,
            "message_template_name": utility.name,
            "message_template_language": "en",
            "reason": "PROMOTIONAL",
        },
    }
    body = {
        "object": "page",
        "entry": [{"id": integration.page_id, "time": 1767225600, "changes": [change]}],
    }

    assert post(client, integration, body).status_code == 200

    utility = UtilityTemplate.objects.get(pk=utility.pk)
    assert (utility.status, utility.rejected_reason) == ("REJECTED", "PROMOTIONAL")
    assert AuditEvent.objects.filter(action="utility_template.status_changed").count() == 1
