"""Telling Messenger that a link ended: a durable row, found again by the sweeper, made once.

The platform is faked at the messenger client boundary and counts every call that
reaches it; the database is real.
"""

import json
import threading
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

import messenger
from core.tests.threads import run_together
from linking import services, tasks
from linking.models import Consent, PlatformUnlink
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.tests.factories import BankFactory

PAGE_ID = "1029384756"
PSID = "24681357902468"
STAFF = Actor("staff", "3", "olga")
State = PlatformUnlink.State


class Platform:
    """Messenger at the client boundary: answers every call and records it.

    `failures` unlink calls are answered with a transient error first; `delay` holds each
    unlink call that long, as a slow platform would.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.failures = 0
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        with self._lock:
            self.calls.append((request.url.path, body))
        if request.url.path.endswith("/me/unlink_accounts"):
            time.sleep(self.delay)
            with self._lock:
                failing, self.failures = self.failures > 0, max(self.failures - 1, 0)
            if failing:
                error = {"message": "down", "type": "OAuthException", "code": 2, "fbtrace_id": "t"}
                return httpx.Response(500, json={"error": error})
            return httpx.Response(200, json={"result": "unlink account success"})
        return httpx.Response(200, json={"recipient_id": PSID, "message_id": "m_1"})

    @property
    def unlinks(self) -> list[dict]:
        return [body for path, body in self.calls if path.endswith("/me/unlink_accounts")]

    @property
    def goodbyes(self) -> list[str]:
        return [
            body["message"]["text"]
            for path, body in self.calls
            if path.endswith("/messages") and "unlinked" in body["message"].get("text", "")
        ]


@pytest.fixture
def platform(monkeypatch):
    fake = Platform()
    client = messenger.GraphClient(
        "https://graph.test", "v23.0", transport=httpx.MockTransport(fake)
    )
    monkeypatch.setattr(messenger, "get_client", lambda: client)
    yield fake
    client.close()


@pytest.fixture
def nudges(monkeypatch):
    """The unlink nudges enqueued after a commit, kept instead of sent: the test decides
    whether they run."""
    kept: list[int] = []
    monkeypatch.setattr(tasks.unlink_in_messenger, "delay", kept.append)
    return kept


@pytest.fixture
def prompt_worker(monkeypatch):
    """A worker that runs each unlink nudge the moment it is enqueued, after the commit."""
    monkeypatch.setattr(tasks.unlink_in_messenger, "delay", tasks.unlink_in_messenger)


def linked_customer():
    """A customer of a live bank, linked through the real services."""
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    IntegrationFactory(bank=bank, page_id=PAGE_ID)
    customer = CustomerFactory(bank=bank, external_id="cu-ada", name="Ada Lovelace")
    account = AccountFactory(customer=customer, external_id="ada-cur", last4="1111")
    granted = services.consent_authorise(
        customer=customer,
        accounts=[account],
        scopes=["balances"],
        duration_days=90,
        purpose="Account updates in Messenger",
        page_id=PAGE_ID,
        account_linking_token="linking-token",
    )
    services.link_bind(
        bank=bank, page_id=PAGE_ID, psid=PSID, authorization_code=granted.authorization_code
    )
    return customer, Consent.objects.get(pk=granted.consent.pk)


def sweep_after(grace: timedelta) -> int:
    return services.platform_unlinks_sweep(actor=services.UNLINKER, now=timezone.now() + grace)


@pytest.mark.django_db
def test_a_revocation_writes_its_unlink_row_in_its_own_transaction(
    django_capture_on_commit_callbacks,
):
    _, consent = linked_customer()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")

    unlink = PlatformUnlink.objects.get(consent=consent)
    assert (unlink.state, unlink.attempts, unlink.bank_id) == (State.PENDING, 0, consent.bank_id)
    assert unlink.next_attempt_at > timezone.now()  # the nudge's head start
    assert len(callbacks) == 1  # the nudge, still only a nudge


@pytest.mark.django_db
def test_an_unlink_in_messenger_leaves_nothing_to_tell(platform):
    _, consent = linked_customer()

    services.link_unlinked_by_platform(bank=consent.bank, page_id=PAGE_ID, psid=PSID)

    assert not PlatformUnlink.objects.exists()
    assert sweep_after(timedelta(days=1)) == 0
    assert platform.unlinks == []


@pytest.mark.django_db
def test_a_lost_nudge_is_made_up_by_the_sweeper_exactly_once(platform, nudges):
    _, consent = linked_customer()
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")
    # The worker died between the commit and the call: the nudge never runs.

    assert sweep_after(timedelta(0)) == 0  # within the grace period: left to the nudge
    assert platform.unlinks == []
    assert sweep_after(services.unlinks.GRACE + timedelta(seconds=1)) == 1
    assert sweep_after(timedelta(days=1)) == 0
    tasks.unlink_in_messenger(consent.pk)  # the nudge, redelivered late

    assert platform.unlinks == [{"psid": PSID}]
    assert len(platform.goodbyes) == 1
    consent.refresh_from_db()
    assert consent.platform_unlinked_at is not None
    assert PlatformUnlink.objects.get(consent=consent).state == State.DONE
    entry = AuditEvent.objects.get(action="link.platform_unlinked")
    assert (entry.actor_type, entry.target_id) == ("system", str(consent.pk))


@pytest.mark.django_db
def test_expiry_tells_messenger_through_the_sweeper_too(
    platform, django_capture_on_commit_callbacks
):
    _, consent = linked_customer()
    Consent.objects.filter(pk=consent.pk).update(expires_at=timezone.now())

    with django_capture_on_commit_callbacks(execute=False):
        assert services.consents_expire_due() == 1
    sweep_after(services.unlinks.GRACE + timedelta(seconds=1))

    assert platform.unlinks == [{"psid": PSID}]


@pytest.mark.django_db
def test_a_failed_call_is_retried_later_without_a_second_goodbye(platform, nudges):
    _, consent = linked_customer()
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")
    platform.failures = 1

    tasks.unlink_in_messenger(consent.pk)

    unlink = PlatformUnlink.objects.get(consent=consent)
    assert (unlink.state, unlink.attempts) == (State.PENDING, 1)
    assert unlink.last_error == "TransientError (#2, HTTP 500)"
    assert unlink.next_attempt_at > timezone.now()
    assert sweep_after(timedelta(0)) == 0  # not before its backoff is over
    assert len(platform.unlinks) == 1

    assert sweep_after(services.unlinks.FIRST_RETRY + timedelta(seconds=1)) == 1

    unlink.refresh_from_db()
    assert (unlink.state, unlink.attempts, unlink.last_error) == (State.DONE, 2, "")
    assert platform.unlinks == [{"psid": PSID}, {"psid": PSID}]
    assert len(platform.goodbyes) == 1


@pytest.mark.django_db
def test_the_sweeper_gives_up_after_its_last_attempt(platform, nudges):
    _, consent = linked_customer()
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")
    PlatformUnlink.objects.filter(consent=consent).update(
        attempts=services.unlinks.MAX_ATTEMPTS - 1
    )
    platform.failures = 1

    sweep_after(timedelta(days=1))

    assert PlatformUnlink.objects.get(consent=consent).state == State.FAILED
    assert sweep_after(timedelta(days=2)) == 0


@pytest.mark.django_db
def test_a_bank_without_a_running_integration_is_not_told(platform, nudges):
    _, consent = linked_customer()
    MessengerIntegration.objects.filter(bank=consent.bank).update(status="paused")
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")

    tasks.unlink_in_messenger(consent.pk)

    unlink = PlatformUnlink.objects.get(consent=consent)
    assert (unlink.state, unlink.last_error) == (State.SKIPPED, "no running integration")
    assert platform.calls == []


def test_the_sweeper_is_scheduled_on_beat(settings):
    tasks_scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "linking.sweep_platform_unlinks" in tasks_scheduled


@pytest.mark.django_db(transaction=True)
def test_the_nudge_and_the_sweeper_at_once_unlink_once(platform, nudges):
    _, consent = linked_customer()
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")
    platform.delay = 0.3

    errors = run_together(
        lambda run: run(),
        [
            lambda: tasks.unlink_in_messenger(consent.pk),
            lambda: sweep_after(services.unlinks.GRACE + timedelta(seconds=1)),
            lambda: sweep_after(services.unlinks.GRACE + timedelta(seconds=1)),
        ],
        timeout=30,
    )

    assert errors == []
    assert platform.unlinks == [{"psid": PSID}]
    assert len(platform.goodbyes) == 1


# Erasure


@pytest.mark.django_db(transaction=True)
def test_an_erasure_whose_nudge_ran_first_unlinks_once(platform, prompt_worker):
    customer, consent = linked_customer()

    erasure = services.subject_erase(customer=customer, actor=STAFF, reason="Request 5")
    tasks.unlink_in_messenger(consent.pk)  # and once more, redelivered
    sweep_after(timedelta(days=1))

    assert platform.unlinks == [{"psid": PSID}]
    assert len(platform.goodbyes) == 1
    assert erasure.messenger_told == []  # the worker had told Messenger already
    assert Consent.objects.get(pk=consent.pk).platform_unlinked_at is not None


@pytest.mark.django_db
def test_an_erasure_whose_nudge_comes_late_unlinks_once(
    platform, nudges, django_capture_on_commit_callbacks
):
    customer, consent = linked_customer()

    with django_capture_on_commit_callbacks(execute=True):
        erasure = services.subject_erase(customer=customer, actor=STAFF, reason="Request 6")
    for consent_id in nudges:
        tasks.unlink_in_messenger(consent_id)
    sweep_after(timedelta(days=1))

    assert nudges == [consent.pk]
    assert platform.unlinks == [{"psid": PSID}]
    assert erasure.messenger_told == [consent.pk]
    assert Consent.objects.get(pk=consent.pk).psid == ""


@pytest.mark.django_db(transaction=True)
def test_an_erasure_while_the_nudged_worker_is_unlinking_unlinks_once(platform, nudges):
    customer, consent = linked_customer()
    services.consent_revoke(consent=consent, actor=STAFF, reason="Customer called")
    platform.delay = 0.5
    erased = []

    def erase() -> None:
        time.sleep(0.1)  # the worker has the row
        erased.append(services.subject_erase(customer=customer, actor=STAFF, reason="Req 7"))

    errors = run_together(
        lambda run: run(), [lambda: tasks.unlink_in_messenger(consent.pk), erase], timeout=30
    )

    assert errors == []
    assert platform.unlinks == [{"psid": PSID}]
    assert len(platform.goodbyes) == 1
    assert erased[0].messenger_told == [consent.pk]
    assert Consent.objects.get(pk=consent.pk).psid == ""


@pytest.mark.django_db
def test_an_erasure_that_cannot_tell_messenger_erases_nothing_and_is_retried(platform, nudges):
    customer, consent = linked_customer()
    platform.failures = 1

    with pytest.raises(services.ErasureBlockedError):
        services.subject_erase(customer=customer, actor=STAFF, reason="Request 8")

    unlink = PlatformUnlink.objects.get(consent=consent)
    assert (unlink.state, unlink.attempts) == (State.PENDING, 1)
    assert Consent.objects.get(pk=consent.pk).psid == PSID
    services.subject_erase(customer=customer, actor=STAFF, reason="Request 8")
    assert platform.unlinks == [{"psid": PSID}, {"psid": PSID}]
    assert len(platform.goodbyes) == 1
