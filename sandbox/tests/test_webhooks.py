"""Webhooks from the sandbox: signed like Meta, retried like Meta, and account linking."""

import json
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from messenger import (
    AccountLinkingEvent,
    DeliveryEvent,
    EchoEvent,
    MessageEvent,
    PostbackEvent,
    ReferralEvent,
    parse_envelope,
    verify_signature,
)
from sandbox import webhooks
from sandbox.models import PAGE_INBOX_APP_ID, Page, WebhookDelivery
from sandbox.tests import bank_stub
from sandbox.tests.conftest import PAGE_ID, SECRET, wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def received_events():
    return [event for hook in bank_stub.received for event in parse_envelope(hook["body"])]


def test_the_subscription_handshake_echoes_the_challenge(live, control, sandbox_page, settings):
    from django.http import HttpResponse
    from django.urls import path

    from messenger import verify_handshake
    from sandbox.tests.urls import urlpatterns

    def handshake(request):
        challenge = verify_handshake(request.GET, "verify-me")
        return HttpResponse(challenge or "", status=200 if challenge else 403)

    settings.ROOT_URLCONF = type(
        "urls", (), {"urlpatterns": [path("test-bank/webhook", handshake), *urlpatterns]}
    )

    assert control.post(f"/pages/{PAGE_ID}/verify-webhook").json()["verified"] is True


def test_a_user_message_arrives_signed_over_the_escaped_bytes(control, customer):
    psid = customer["psid"]
    control.post(f"/pages/{PAGE_ID}/users/{psid}/messages", json={"text": "Grüße, ça va? €"})

    assert wait_for(lambda: len(bank_stub.received) >= 2)
    hook = bank_stub.received[-1]
    raw = hook["body"]
    assert raw.isascii() and b"\\u00fc" in raw  # Meta escapes non-ASCII characters
    assert verify_signature(raw, hook["headers"]["X-Hub-Signature-256"], SECRET)
    assert not verify_signature(
        json.dumps(json.loads(raw), ensure_ascii=False).encode(),
        hook["headers"]["X-Hub-Signature-256"],
        SECRET,
    )
    [event] = [e for e in parse_envelope(raw) if isinstance(e, MessageEvent)]
    assert (event.sender_id, event.text) == (psid, "Grüße, ça va? €")


def test_failed_deliveries_are_retried_until_answered(control, sandbox_page):
    bank_stub.answers.extend([500, 503])
    user = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Li Wei"}).json()
    control.post(f"/pages/{PAGE_ID}/users/{user['psid']}/messages", json={"text": "hello"})

    delivered = wait_for(
        lambda: WebhookDelivery.objects.filter(status="delivered").first(), timeout=15
    )
    assert delivered.attempts == 3
    assert len(bank_stub.received) == 3
    assert len({hook["body"] for hook in bank_stub.received}) == 1  # the same event again


def test_an_hour_of_failure_unsubscribes_the_page(live, sandbox_page):
    page = Page.objects.get(page_id=PAGE_ID)
    Page.objects.filter(pk=page.pk).update(
        webhook_url=f"{live.url}/nowhere",
        webhook_failing_since=timezone.now() - timedelta(minutes=61),
    )
    page.refresh_from_db()
    delivery = WebhookDelivery.objects.create(page=page, field="messages", body="{}")

    webhooks.deliver_due()

    page.refresh_from_db()
    delivery.refresh_from_db()
    assert page.webhook_disabled_at is not None and page.webhook_alerted_at is not None
    assert delivery.status == WebhookDelivery.Status.ABANDONED
    assert webhooks.enqueue(page, "messages", {"object": "page", "entry": []}) is None


def test_fifteen_minutes_of_failure_alerts_but_keeps_trying(live, sandbox_page):
    page = Page.objects.get(page_id=PAGE_ID)
    Page.objects.filter(pk=page.pk).update(
        webhook_url=f"{live.url}/nowhere",
        webhook_failing_since=timezone.now() - timedelta(minutes=16),
    )
    delivery = WebhookDelivery.objects.create(page=page, field="messages", body="{}")

    webhooks.deliver_due()

    page.refresh_from_db()
    delivery.refresh_from_db()
    assert page.webhook_alerted_at is not None and page.webhook_disabled_at is None
    assert delivery.status == WebhookDelivery.Status.PENDING and delivery.attempts == 1


def test_delivery_and_read_receipts_follow_a_sent_message(graph, creds, customer, control):
    from messenger import DeliveryEvent, ReadEvent, builders

    sent = graph.send(creds, builders.text_message(customer["psid"], "Balance: €10.00"))
    control.post(f"/pages/{PAGE_ID}/users/{customer['psid']}/read")

    events = wait_for(
        lambda: (lambda evs: evs if any(isinstance(e, ReadEvent) for e in evs) else None)(
            received_events()
        )
    )
    deliveries = [e for e in events if isinstance(e, DeliveryEvent)]
    assert sent.message_id in deliveries[0].mids


def test_linking_round_trip_through_the_bank_page(live, control, graph, creds, customer):
    started = control.post(
        f"/pages/{PAGE_ID}/users/{customer['psid']}/link",
        json={"url": f"{live.url}/test-bank/login?bank=harbour"},
    ).json()
    token = started["account_linking_token"]
    assert graph.psid_for_linking_token(creds, token) == customer["psid"]

    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(started["location"])

    assert page.status_code == 200 and "Account linked" in page.text
    assert str(page.url).startswith(f"{live.url}/sandbox/link/done")
    linked = wait_for(lambda: [e for e in received_events() if isinstance(e, AccountLinkingEvent)])
    assert (linked[0].status, linked[0].authorization_code) == ("linked", f"code-for-{token[:8]}")
    assert linked[0].sender_id == customer["psid"]


def test_an_m_me_link_into_an_existing_thread_is_a_signed_referral(control, customer):
    psid = customer["psid"]

    response = control.post(f"/pages/{PAGE_ID}/users/{psid}/referrals", json={"ref": "link_abc"})

    assert response.status_code == 201, response.text
    referrals = wait_for(lambda: [e for e in received_events() if isinstance(e, ReferralEvent)])
    assert (referrals[0].sender_id, referrals[0].referral.ref) == (psid, "link_abc")
    assert referrals[0].referral.type == "OPEN_THREAD"
    hook = next(h for h in bank_stub.received if b'"referral"' in h["body"])
    assert verify_signature(hook["body"], hook["headers"]["X-Hub-Signature-256"], SECRET)
    assert b'"postback"' not in hook["body"]


def test_an_m_me_link_into_a_new_thread_is_get_started_with_the_referral(control, sandbox_page):
    user = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Bea"}).json()

    control.post(f"/pages/{PAGE_ID}/users/{user['psid']}/referrals", json={"ref": "link_abc"})

    postbacks = wait_for(lambda: [e for e in received_events() if isinstance(e, PostbackEvent)])
    assert (postbacks[0].title, postbacks[0].payload) == ("Get Started", "GET_STARTED")
    assert postbacks[0].referral.ref == "link_abc"
    assert not [e for e in received_events() if isinstance(e, ReferralEvent)]


def test_an_m_me_ref_of_the_wrong_shape_is_refused(control, customer):
    psid = customer["psid"]

    response = control.post(f"/pages/{PAGE_ID}/users/{psid}/referrals", json={"ref": "a b<"})

    assert response.status_code == 400


def test_the_linking_token_is_single_use(live, control, customer):
    started = control.post(
        f"/pages/{PAGE_ID}/users/{customer['psid']}/link",
        json={"url": f"{live.url}/test-bank/login"},
    ).json()
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        browser.get(started["location"])
        again = browser.get(started["location"])

    assert again.status_code == 400 and "already used" in again.text


def test_a_refused_login_links_nothing(live, control, customer):
    started = control.post(
        f"/pages/{PAGE_ID}/users/{customer['psid']}/link",
        json={"url": f"{live.url}/test-bank/login?deny=1"},
    ).json()
    with httpx.Client(follow_redirects=True, timeout=10) as browser:
        page = browser.get(started["location"])

    assert "Linking cancelled" in page.text
    user = control.get(f"/pages/{PAGE_ID}/users/{customer['psid']}/thread").json()["user"]
    assert user["linked"] is False
    assert not [e for e in received_events() if isinstance(e, AccountLinkingEvent)]


def test_log_out_tells_the_bank_the_account_is_unlinked(control, customer):
    control.post(f"/pages/{PAGE_ID}/users/{customer['psid']}/logout")

    events = wait_for(lambda: [e for e in received_events() if isinstance(e, AccountLinkingEvent)])
    assert events[0].status == "unlinked" and events[0].authorization_code is None


def test_control_api_refuses_bad_input(control, sandbox_page):
    assert (
        control.post(
            "/pages", content=b"{nope", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )
    assert control.post(
        "/pages", json={"page_id": "abc", "name": "x", "access_token": "t", "app_secret": "s"}
    ).json()["error"] == ("'page_id' must be all digits.")
    assert control.post(f"/pages/{PAGE_ID}/users", json={"name": ""}).status_code == 400
    assert control.get("/calls", params={"after": "x"}).status_code == 400


def echoes_received():
    return [e for e in received_events() if isinstance(e, EchoEvent)]


def test_a_sent_message_comes_back_as_an_echo_with_its_metadata(graph, creds, customer):
    from messenger import builders

    sent = graph.send(
        creds,
        builders.text_message(customer["psid"], "Balance: €10.00", metadata="bankside:n:41"),
    )

    (echo,) = wait_for(echoes_received)
    assert (echo.mid, echo.metadata, echo.text) == (
        sent.message_id,
        "bankside:n:41",
        "Balance: €10.00",
    )
    assert (echo.sender_id, echo.recipient_id) == (PAGE_ID, customer["psid"])
    assert echo.app_id == Page.objects.get(page_id=PAGE_ID).app_id
    assert wait_for(lambda: [e for e in received_events() if isinstance(e, DeliveryEvent)])


def test_the_page_can_be_told_to_drop_or_delay_echoes(graph, creds, customer, control):
    from messenger import builders

    assert control.put(f"/pages/{PAGE_ID}/faults", json={"echo_drop_rate": 1}).status_code == 200
    dropped = graph.send(creds, builders.text_message(customer["psid"], "one", metadata="m1"))
    control.put(f"/pages/{PAGE_ID}/faults", json={"echo_delay_seconds": 30})
    late = graph.send(creds, builders.text_message(customer["psid"], "two", metadata="m2"))

    deliveries = wait_for(
        lambda: len([e for e in received_events() if isinstance(e, DeliveryEvent)]) >= 2
    )
    assert deliveries and echoes_received() == []  # the first dropped, the second not yet
    (held,) = WebhookDelivery.objects.filter(field="message_echoes")
    assert late.message_id in held.body and dropped.message_id not in held.body
    assert held.next_attempt_at > timezone.now() + timedelta(seconds=20)
    bad = control.put(f"/pages/{PAGE_ID}/faults", json={"echo_drop_rate": 2})
    assert bad.status_code == 400


def test_a_reply_from_the_page_inbox_echoes_from_the_page_inbox_app(control, customer):
    response = control.post(
        f"/pages/{PAGE_ID}/users/{customer['psid']}/page-inbox", json={"text": "Marta here"}
    )

    assert response.status_code == 201
    (echo,) = wait_for(echoes_received)
    assert (echo.app_id, echo.text, echo.metadata) == (PAGE_INBOX_APP_ID, "Marta here", None)
