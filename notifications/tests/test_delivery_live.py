"""Delivery end to end: the real API over HTTP, a real Celery worker on the test Redis,
and the sandbox standing in for Meta over HTTP."""

import datetime as dt
import time

import httpx
import pytest
from django.utils import timezone

from core.tests.threads import run_together
from linking.models import Contact
from linking.tests.conftest import celery_worker
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from notifications import services, tasks
from notifications.models import Notification
from notifications.tests.factories import event_payload, link_for
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db(transaction=True)

State = Notification.State


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


class Sandbox:
    def __init__(self, base: str) -> None:
        self.base = f"{base}/sandbox/api"

    def __call__(self, path: str, method: str = "GET", **kwargs):
        response = httpx.request(method, f"{self.base}{path}", timeout=10, **kwargs)
        assert response.status_code < 400, response.text
        return response.json()


class Harbour:
    """Harbour Bank live on a sandbox Page, with linked customers who wrote to it lately."""

    def __init__(self, live_server, *, rate_limit: int = 300) -> None:
        self.url = live_server.url
        self.sandbox = Sandbox(live_server.url)
        self.bank = BankFactory(name="Harbour Bank", slug="harbour", notification_defaults=True)
        self.integration = IntegrationFactory(bank=self.bank, page_id="2233445566")
        self.page = self.integration.page_id
        self.sandbox(
            "/pages",
            "POST",
            json={
                "page_id": self.page,
                "name": "Harbour Bank",
                "access_token": self.integration.page_access_token,
                "app_secret": self.integration.app_secret,
                "webhook_url": f"{live_server.url}/webhooks/messenger/harbour/",
                "verify_token": self.integration.verify_token,
                "rate_limit_per_second": rate_limit,
            },
        )
        self.sandbox("/calls", "DELETE")
        self.api_key = api_key_for(self.bank).secret

    def linked_customer(self, name: str = "Ana Souza"):
        """A customer linked on Messenger whose 24-hour window is open: (card, psid)."""
        user = self.sandbox(f"/pages/{self.page}/users", "POST", json={"name": name})
        psid = user["psid"]
        self.sandbox(f"/pages/{self.page}/users/{psid}/messages", "POST", json={"text": "hi"})
        customer = CustomerFactory(bank=self.bank, name=name, locale="en")
        card = AccountFactory(customer=customer, kind="credit_card", last4="9012")
        link_for(
            customer,
            [card],
            scopes=["transactions", "fraud_alerts", "balances", "receipts_shipping"],
            page_id=self.page,
            psid=psid,
        )
        Contact.objects.update_or_create(
            page_id=self.page,
            psid=psid,
            defaults={"bank": self.bank, "last_inbound_at": timezone.now()},
        )
        return card, psid

    def post_events(self, *events):
        response = httpx.post(
            f"{self.url}/api/v1/events",
            json={"events": list(events)},
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        return response.json()

    def thread_texts(self, psid: str) -> list[str]:
        thread = self.sandbox(f"/pages/{self.page}/users/{psid}/thread")
        return [m["body"].get("text", "") for m in thread["messages"] if m["direction"] == "out"]

    def message_calls(self) -> list[dict]:
        calls = self.sandbox(f"/calls?page_id={self.page}")["calls"]
        return [c for c in calls if c["method"] == "POST" and c["path"].endswith("/messages")]

    def notification_calls(self) -> list[dict]:
        """The Page's notification sends: not the chat's replies (RESPONSE) or sender actions."""
        return [
            c
            for c in self.message_calls()
            if "sender_action" not in (c["body"] or {})
            and (c["body"] or {}).get("messaging_type") != "RESPONSE"
        ]


@pytest.fixture
def harbour(live_server, settings):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    return Harbour(live_server)


def test_an_event_posted_for_a_linked_customer_reaches_their_messenger_thread(harbour):
    card, psid = harbour.linked_customer()
    payload = event_payload("fraud.alert", account=card)

    with celery_worker():
        harbour.post_events(payload)
        texts = wait_for(lambda: [t for t in harbour.thread_texts(psid) if "Security alert" in t])
        delivered = wait_for(lambda: Notification.objects.filter(state=State.DELIVERED).first())

    assert texts and "ELECTRO-WORLD ONLINE" in texts[0] and "•••• 9012" in texts[0]
    assert delivered is not None and delivered.message_id
    (call,) = harbour.notification_calls()
    assert call["body"]["messaging_type"] == "UPDATE" and call["status"] == 200


def test_the_sweeper_delivers_what_a_flushed_broker_lost(harbour):
    card, psid = harbour.linked_customer()
    harbour.post_events(event_payload("fraud.alert", account=card))  # nudged, no worker yet

    with celery_worker():  # starting purges the queue: the nudge is lost
        time.sleep(1.0)
        still_pending = Notification.objects.get().state == State.PENDING
        tasks.sweep_outbox.delay()  # what beat does every few seconds
        sent = wait_for(lambda: Notification.objects.filter(state__in=State_SENT).exists())

    assert still_pending and sent
    assert len([t for t in harbour.thread_texts(psid) if "Security alert" in t]) == 1


State_SENT = [State.SENT, State.DELIVERED, State.READ]


def test_several_workers_share_one_pages_rate_limit(live_server, settings):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    harbour = Harbour(live_server, rate_limit=20)
    settings.NOTIFICATIONS_PAGE_RATE_LIMITS = {harbour.page: 20}
    cards = [harbour.linked_customer(f"Customer {n}")[0] for n in range(60)]
    harbour.post_events(*[event_payload("fraud.alert", account=card) for card in cards])

    def claimer(_):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            services.deliveries_run(seconds=1, batch_size=8)
            if not Notification.objects.filter(state__in=[State.PENDING, State.IN_FLIGHT]).exists():
                return

    assert run_together(claimer, range(3), timeout=60) == []
    assert Notification.objects.filter(state__in=State_SENT).count() == 60
    calls = harbour.message_calls()
    assert len(calls) == 60 and all(c["status"] == 200 for c in calls)
    moments = sorted(
        dt.datetime.fromisoformat(c["created_at"].replace("Z", "+00:00")) for c in calls
    )
    busiest = max(
        sum(1 for other in moments if start <= other < start + dt.timedelta(seconds=1))
        for start in moments
    )
    assert busiest <= 20


def test_a_call_whose_answer_is_lost_is_settled_by_the_sandboxs_echo(harbour, monkeypatch):
    """Meta takes the message, but its answer comes after the client gave up: the message
    is neither resent nor dead-lettered; the sandbox's echo, like Meta's, settles it."""
    import messenger
    from notifications.models import MessageEcho

    card, psid = harbour.linked_customer()
    impatient = messenger.GraphClient(
        f"{harbour.url}/sandbox/graph", "v23.0", timeout_connect=0.5, timeout_total=0.5
    )
    monkeypatch.setattr(messenger, "get_client", lambda: impatient)
    harbour.sandbox(f"/pages/{harbour.page}/faults", "PUT", json={"latency_ms": 1500})
    harbour.post_events(event_payload("fraud.alert", account=card))

    services.deliveries_run(seconds=0)
    waiting = Notification.objects.get()
    assert waiting.reason == Notification.Reason.AWAITING_ECHO and waiting.uncertain
    settled = wait_for(
        lambda: Notification.objects.filter(state__in=State_SENT, message_id__gt="").first()
    )
    services.deliveries_run(seconds=0)
    impatient.close()

    assert settled is not None
    (echo,) = MessageEcho.objects.all()
    assert (echo.outcome, echo.notification_id) == ("settled", settled.pk)
    assert settled.message_id == echo.mid
    assert len([t for t in harbour.thread_texts(psid) if "Security alert" in t]) == 1
    assert len(harbour.notification_calls()) == 1  # never resent
