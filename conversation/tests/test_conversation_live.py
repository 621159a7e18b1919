"""The conversation end to end: the sandbox stands in for Messenger over HTTP, a real Celery
worker answers, and a real HTTP server stands in for the bank's callback endpoint."""

import base64
import hashlib
import hmac
import json
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks import Webhook

from conversation import tasks
from conversation.models import BankCallback, Conversation, FraudAlertAnswer
from linking.models import Contact
from linking.tests.conftest import celery_worker
from linking.tests.factories import AccountFactory
from notifications.models import Notification
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery_live import Harbour, wait_for
from portal.models import StaffMembership
from portal.services.integration import signing_secret_new
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def harbour(live_server, settings):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    return Harbour(live_server)


def outbound(harbour, psid) -> list[dict]:
    thread = harbour.sandbox(f"/pages/{harbour.page}/users/{psid}/thread")
    return [m for m in thread["messages"] if m["direction"] == "out"]


def say(harbour, psid, text, payload=None):
    body = {"text": text}
    if payload:
        body["quick_reply_payload"] = payload
    harbour.sandbox(f"/pages/{harbour.page}/users/{psid}/messages", "POST", json=body)


def test_a_linked_user_asking_for_the_balance_gets_only_consented_accounts_masked(harbour):
    card, psid = harbour.linked_customer("Ana Souza")
    AccountFactory(customer=card.customer, name="Hidden savings", last4="7777", balance="50000.00")

    with celery_worker():
        say(harbour, psid, "How much do I have?")
        replies = wait_for(
            lambda: [
                m for m in outbound(harbour, psid) if "balance" in m["body"].get("text", "").lower()
            ]
        )

    (reply,) = replies
    text = reply["body"]["text"]
    assert "•••• 9012: €1,204.50" in text
    assert "7777" not in text and "50,000" not in text and "Hidden" not in text
    assert reply["messaging_type"] == "RESPONSE"
    calls = harbour.message_calls()
    index = next(i for i, c in enumerate(calls) if c["response"].get("message_id") == reply["mid"])
    before = [c["body"].get("sender_action") for c in calls[index - 2 : index]]
    assert before == ["mark_seen", "typing_on"]  # seen, typing, then the answer
    user = harbour.sandbox(f"/pages/{harbour.page}/users/{psid}/thread")["user"]
    assert user["page_seen_at"] and user["typing"] is False  # the answer ended the typing


def test_an_unlinked_user_gets_the_log_in_button(harbour):
    user = harbour.sandbox(f"/pages/{harbour.page}/users", "POST", json={"name": "Stranger"})
    psid = user["psid"]

    with celery_worker():
        say(harbour, psid, "what's my balance")
        replies = wait_for(lambda: outbound(harbour, psid))

    (reply,) = replies
    payload = reply["body"]["attachment"]["payload"]
    assert payload["buttons"] == [{"type": "account_link", "url": f"{harbour.url}/link/harbour/"}]
    assert "€" not in payload["text"] and "9012" not in payload["text"]


class BankReceiver:
    """The bank's callback endpoint: fails the first `failures` requests, then accepts,
    answering `answer` (JSON bytes) or nothing."""

    def __init__(self, failures: int, answer: bytes = b"") -> None:
        self.failures = failures
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                failed = len(receiver.requests) <= receiver.failures
                content = b"" if failed else answer
                self.send_response(500 if failed else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(content)))
                self.end_headers()
                self.wfile.write(content)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/messenger/callbacks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def verify_standard_webhook(secret: str, headers: dict, body: bytes) -> bool:
    """Standard Webhooks verification as the spec gives it, tolerance 5 minutes."""
    if abs(time.time() - int(headers["webhook-timestamp"])) > 300:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body.decode()}"
    expected = base64.b64encode(hmac.new(key, content.encode(), hashlib.sha256).digest()).decode()
    return any(
        version == "v1" and hmac.compare_digest(signature, expected)
        for version, _, signature in (
            s.partition(",") for s in headers["webhook-signature"].split()
        )
    )


def test_a_no_to_a_fraud_alert_reaches_the_bank_signed_after_two_failures(harbour, settings):
    settings.NOTIFICATIONS_CALLBACK_RETRY_BASE_SECONDS = 0.2
    settings.OUTBOUND_ALLOW_PRIVATE_HOSTS = True  # the bank's receiver listens on loopback
    card, psid = harbour.linked_customer("Ana Souza")
    secret = signing_secret_new()

    confirmed = json.dumps({"action_taken": True}).encode()
    with BankReceiver(failures=2, answer=confirmed) as bank, celery_worker():
        harbour.integration.callback_url = bank.url
        harbour.integration.callback_signing_secret = secret
        harbour.integration.save()
        harbour.post_events(event_payload("fraud.alert", account=card))
        alert = wait_for(
            lambda: [
                q
                for m in outbound(harbour, psid)
                for q in m["body"].get("quick_replies") or []
                if q["payload"].startswith("FRAUD_NO:")
            ]
        )
        (no,) = alert
        assert no["title"] == "No, it wasn't me"
        say(harbour, psid, no["title"], payload=no["payload"])

        def delivered():
            tasks.sweep_conversations.delay()  # what beat does every few seconds
            time.sleep(0.3)
            return BankCallback.objects.filter(state="delivered").first()

        callback = wait_for(delivered, timeout=40)
        next_steps = wait_for(
            lambda: [
                m
                for m in outbound(harbour, psid)
                if "has acted on your answer" in m["body"].get("text", "")
            ]
        )
        told = [
            m["body"].get("text", "")
            for m in outbound(harbour, psid)
            if "fraud team" in m["body"].get("text", "")
        ]

    assert callback is not None and len(bank.requests) == 3
    assert [t.status_code for t in callback.tries.all()] == [500, 500, 200]
    ids = {headers["webhook-id"] for headers, _ in bank.requests}
    assert ids == {callback.webhook_id}
    for headers, body in bank.requests:
        assert verify_standard_webhook(secret, headers, body)
        assert Webhook(secret).verify(body, headers)["type"] == "fraud_alert.answered"
    data = json.loads(bank.requests[-1][1])["data"]
    assert data["answer"] == "denied"
    assert data["event_id"] == Notification.objects.get().event.event_id
    assert FraudAlertAnswer.objects.get().answer == "denied" and next_steps
    # The first failure gave Ana the neutral text; the bank's confirmation, its next steps.
    assert len(told) == 2 and "passed your answer" in told[0]


def test_an_agents_reply_goes_out_with_human_agent_and_is_refused_after_seven_days(
    harbour, sign_in
):
    _, psid = harbour.linked_customer("Ana Souza")
    operator = StaffMembershipFactory(bank=harbour.bank, role=StaffMembership.Role.OPERATOR).user
    client = sign_in(operator)

    with celery_worker():
        say(harbour, psid, "I'd like to speak to a person")
        conversation = wait_for(lambda: Conversation.objects.filter(needs_person=True).first())
        reply_url = f"/staff/banks/harbour/inbox/{conversation.pk}/reply"
        response = client.post(reply_url, {"text": "Hi Ana, this is Marta from Harbour Bank."})
        tagged = wait_for(lambda: [m for m in outbound(harbour, psid) if m["tag"] == "HUMAN_AGENT"])

        harbour.sandbox(f"/pages/{harbour.page}/users/{psid}/age", "POST", json={"hours": 8 * 24})
        eight_days_ago = timezone.now() - timedelta(days=8)
        Contact.objects.filter(psid=psid).update(last_inbound_at=eight_days_ago)
        Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=eight_days_ago)
        refused = client.post(reply_url, {"text": "Are you still there?"})
        time.sleep(1.0)

    assert response.status_code == 302
    (message,) = tagged
    assert message["messaging_type"] == "MESSAGE_TAG"
    assert message["body"]["text"] == "Hi Ana, this is Marta from Harbour Bank."
    assert refused.status_code == 400
    assert "more than 7 days ago" in refused.content.decode()
    assert not [m for m in outbound(harbour, psid) if "still there" in m["body"].get("text", "")]
