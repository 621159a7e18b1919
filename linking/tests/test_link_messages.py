"""The link confirmation and the expiry reminder: durable rows, found again by the sweeper,
sent at most once.

The platform is faked at the messenger client boundary and counts every call that
reaches it; the database is real.
"""

import json
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest
from django.utils import timezone

import messenger
from core.tests.threads import run_together
from linking import services, tasks
from linking.models import Consent, LinkMessage
from linking.tests.factories import AccountFactory, CustomerFactory, IntegrationFactory
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.tests.factories import BankFactory

PAGE_ID = "1029384756"
PSID = "24681357902468"
CUSTOMER = Actor("customer", "1", "customer cu-ada")
State = LinkMessage.State
Kind = LinkMessage.Kind
GRACE = services.link_messages.GRACE
ERRORS = {
    "transient": (500, {"message": "down", "type": "OAuthException", "code": 2}),
    "outside_window": (
        400,
        {"message": "window", "type": "OAuthException", "code": 10, "error_subcode": 2018278},
    ),
}


class Platform:
    """Messenger at the client boundary: answers every Send API call and records it.

    Each of `failures` ("transient", "outside_window", or "timeout": the connection lost
    after the request went out) answers one send before they succeed again; `delay` holds
    each send that long, as a slow platform would.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.delivered: list[str] = []
        self.failures: list[str] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        message = json.loads(request.content)["message"]
        text = message.get("text") or message["attachment"]["payload"]["text"]
        time.sleep(self.delay)
        with self._lock:
            self.calls.append(text)
            failure = self.failures.pop(0) if self.failures else None
            if failure is None:
                self.delivered.append(text)
        if failure == "timeout":
            raise httpx.ReadTimeout("no answer", request=request)
        if failure is not None:
            status, error = ERRORS[failure]
            return httpx.Response(status, json={"error": error})
        return httpx.Response(200, json={"recipient_id": PSID, "message_id": "m_1"})

    @property
    def confirmations(self) -> list[str]:
        return [text for text in self.delivered if "You're linked" in text]

    @property
    def reminders(self) -> list[str]:
        return [text for text in self.delivered if "stop on" in text]


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
    """The nudges enqueued after a commit, kept instead of sent: the test decides whether
    they run."""
    kept: list[tuple[str, int]] = []
    for task in (tasks.send_link_confirmation, tasks.send_expiry_reminder):
        monkeypatch.setattr(task, "delay", lambda pk, name=task.name: kept.append((name, pk)))
    return kept


def linked_consent() -> Consent:
    """A consent of a live bank's customer, linked through the real services."""
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
    return Consent.objects.get(pk=granted.consent.pk)


def ending_soon(consent: Consent) -> LinkMessage:
    """Bring the consent's end within the reminder's week and run the expiry scan: the
    reminder it owes."""
    Consent.objects.filter(pk=consent.pk).update(expires_at=timezone.now() + timedelta(days=5))
    assert services.consents_remind_expiring() == 1
    return LinkMessage.objects.filter(consent=consent, kind=Kind.EXPIRY_REMINDER).latest("pk")


def sweep_after(delay: timedelta) -> int:
    return services.link_messages_sweep(actor=services.MESSAGE_SENDER, now=timezone.now() + delay)


@pytest.mark.django_db
def test_binding_a_link_writes_its_confirmation_row_in_its_own_transaction(
    nudges, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        consent = linked_consent()

    message = LinkMessage.objects.get(consent=consent)
    assert (message.kind, message.state, message.attempts) == (Kind.CONFIRMATION, State.PENDING, 0)
    assert (message.bank_id, message.expires_at) == (consent.bank_id, consent.expires_at)
    assert message.next_attempt_at > timezone.now()  # the nudge's head start
    assert nudges == []
    for callback in callbacks:
        callback()
    assert nudges == [("linking.send_link_confirmation", consent.pk)]  # still only a nudge


@pytest.mark.django_db
def test_the_nudge_confirms_the_link(platform, nudges, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        consent = linked_consent()
    for _, consent_id in nudges:
        tasks.send_link_confirmation(consent_id)

    assert nudges == [("linking.send_link_confirmation", consent.pk)]
    assert len(platform.confirmations) == 1
    assert "•••• 1111" in platform.confirmations[0]
    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.attempts, message.last_error) == (State.SENT, 1, "")
    assert message.sent_at is not None


@pytest.mark.django_db
def test_a_lost_nudge_is_made_up_by_the_sweeper_exactly_once(platform, nudges):
    consent = linked_consent()
    # The worker died between the commit and the call: the nudge never runs.

    assert sweep_after(timedelta(0)) == 0  # within the grace period: left to the nudge
    assert platform.calls == []
    assert sweep_after(GRACE + timedelta(seconds=1)) == 1
    assert sweep_after(timedelta(days=1)) == 0
    tasks.send_link_confirmation(consent.pk)  # the nudge, redelivered late
    message = LinkMessage.objects.get(consent=consent)
    later = timezone.now() + timedelta(days=2)
    services.link_message_attempt(
        actor=services.MESSAGE_SENDER, message_id=message.pk, now=later
    )  # one that saw it pending

    assert len(platform.confirmations) == 1
    assert len(platform.calls) == 1
    assert LinkMessage.objects.get(consent=consent).state == State.SENT
    entry = AuditEvent.objects.get(action="link.message_sent")
    assert (entry.actor_type, entry.target_id) == ("system", str(consent.pk))
    assert entry.details == {"kind": "confirmation", "attempts": 1}


@pytest.mark.django_db
def test_a_failed_call_is_retried_later_and_sent_once(platform, nudges):
    consent = linked_consent()
    platform.failures = ["transient"]

    tasks.send_link_confirmation(consent.pk)

    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.attempts) == (State.PENDING, 1)
    assert message.last_error == "TransientError (#2, HTTP 500)"
    assert message.next_attempt_at > timezone.now()
    assert sweep_after(timedelta(0)) == 0  # not before its backoff is over
    tasks.send_link_confirmation(consent.pk)  # nor when the nudge is redelivered
    assert len(platform.calls) == 1

    assert sweep_after(services.unlinks.FIRST_RETRY + timedelta(seconds=1)) == 1
    assert sweep_after(timedelta(days=1)) == 0

    message.refresh_from_db()
    assert (message.state, message.attempts, message.last_error) == (State.SENT, 2, "")
    assert len(platform.calls) == 2
    assert len(platform.confirmations) == 1
    assert AuditEvent.objects.filter(action="link.message_sent").count() == 1


@pytest.mark.django_db
def test_the_sweeper_gives_up_after_its_last_attempt(platform, nudges):
    consent = linked_consent()
    LinkMessage.objects.filter(consent=consent).update(
        attempts=services.link_messages.MAX_ATTEMPTS - 1
    )
    platform.failures = ["transient"]

    sweep_after(timedelta(days=1))

    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.sent_at) == (State.FAILED, None)
    assert sweep_after(timedelta(days=2)) == 0
    assert platform.delivered == []


@pytest.mark.django_db
def test_a_send_that_may_have_gone_out_is_never_sent_again(platform, nudges):
    consent = linked_consent()
    platform.failures = ["timeout"]

    tasks.send_link_confirmation(consent.pk)
    sweep_after(timedelta(days=1))
    tasks.send_link_confirmation(consent.pk)

    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.attempts, message.sent_at) == (State.UNCERTAIN, 1, None)
    assert message.last_error == "TransientError"
    assert len(platform.calls) == 1
    entry = AuditEvent.objects.get(action="link.message_uncertain")
    assert entry.details == {"kind": "confirmation", "attempts": 1}


@pytest.mark.django_db
def test_outside_the_24_hour_window_the_message_is_skipped_not_retried(platform, nudges):
    consent = linked_consent()
    ending_soon(consent)
    platform.failures = ["outside_window"]

    tasks.send_expiry_reminder(consent.pk)
    sweep_after(timedelta(days=1))

    reminder = LinkMessage.objects.get(consent=consent, kind=Kind.EXPIRY_REMINDER)
    assert (reminder.state, reminder.sent_at) == (State.SKIPPED, None)
    assert reminder.last_error == "OutsideWindowError (#10, HTTP 400)"
    assert platform.reminders == []
    assert len([text for text in platform.calls if "stop on" in text]) == 1
    assert not AuditEvent.objects.filter(
        action="link.message_sent", details__kind="expiry_reminder"
    ).exists()


@pytest.mark.django_db
def test_a_consent_revoked_before_the_sweep_is_sent_nothing(platform, nudges):
    consent = linked_consent()
    services.consent_revoke(consent=consent, actor=CUSTOMER, reason="Changed my mind")

    sweep_after(GRACE + timedelta(seconds=1))

    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.last_error, message.attempts) == (
        State.SKIPPED,
        "consent revoked",
        0,
    )
    assert platform.confirmations == []
    assert not AuditEvent.objects.filter(action="link.message_sent").exists()


@pytest.mark.django_db
def test_a_bank_whose_integration_is_paused_sends_nothing(platform, nudges):
    consent = linked_consent()
    MessengerIntegration.objects.filter(bank=consent.bank).update(status="paused")

    tasks.send_link_confirmation(consent.pk)
    MessengerIntegration.objects.filter(bank=consent.bank).update(status="live")
    sweep_after(timedelta(days=1))

    message = LinkMessage.objects.get(consent=consent)
    assert (message.state, message.last_error) == (State.SKIPPED, "no running integration")
    assert platform.calls == []


def test_the_sweeper_is_scheduled_on_beat(settings):
    beat = settings.CELERY_BEAT_SCHEDULE.values()
    scheduled = {entry["task"]: entry["schedule"] for entry in beat}
    assert scheduled["linking.sweep_link_messages"] == 30.0


@pytest.mark.django_db(transaction=True)
def test_the_nudge_and_the_sweeper_at_once_send_one_message(platform, nudges):
    consent = linked_consent()
    platform.delay = 0.3

    errors = run_together(
        lambda run: run(),
        [
            lambda: tasks.send_link_confirmation(consent.pk),
            lambda: sweep_after(GRACE + timedelta(seconds=1)),
            lambda: sweep_after(GRACE + timedelta(seconds=1)),
        ],
        timeout=30,
    )

    assert errors == []
    assert len(platform.calls) == 1
    assert len(platform.confirmations) == 1
    assert LinkMessage.objects.get(consent=consent).state == State.SENT
    assert AuditEvent.objects.filter(action="link.message_sent").count() == 1


# The expiry reminder


@pytest.mark.django_db
def test_the_expiry_scan_owes_a_reminder_in_its_own_transaction(
    platform, django_capture_on_commit_callbacks
):
    consent = linked_consent()
    Consent.objects.filter(pk=consent.pk).update(expires_at=timezone.now() + timedelta(days=5))

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.consents_remind_expiring()
        services.consents_remind_expiring()

    reminder = LinkMessage.objects.get(consent=consent, kind=Kind.EXPIRY_REMINDER)
    consent.refresh_from_db()
    assert (reminder.state, reminder.expires_at) == (State.PENDING, consent.expires_at)
    assert reminder.next_attempt_at > timezone.now()
    assert len(callbacks) == 1


@pytest.mark.django_db
def test_the_reminder_is_recorded_as_sent_only_once_it_was_sent(platform, nudges):
    consent = linked_consent()
    sweep_after(GRACE * 2)  # the confirmation
    reminder = ending_soon(consent)
    platform.failures = ["transient"]

    tasks.send_expiry_reminder(consent.pk)

    reminder.refresh_from_db()
    assert (reminder.state, reminder.sent_at) == (State.PENDING, None)
    assert not AuditEvent.objects.filter(details__kind="expiry_reminder").exists()
    assert platform.reminders == []

    sweep_after(timedelta(hours=1))

    reminder.refresh_from_db()
    assert (reminder.state, reminder.attempts) == (State.SENT, 2)
    assert reminder.sent_at is not None
    assert len(platform.reminders) == 1
    consent.refresh_from_db()
    until = consent.expires_at
    assert f"{until:%B} {until.day}, {until.year}" in platform.reminders[0]  # in English
    entry = AuditEvent.objects.get(action="link.message_sent", details__kind="expiry_reminder")
    assert entry.target_id == str(consent.pk)


@pytest.mark.django_db
def test_a_lost_reminder_nudge_is_made_up_by_the_sweeper(platform, nudges):
    consent = linked_consent()
    ending_soon(consent)

    assert sweep_after(GRACE + timedelta(seconds=1)) == 2  # the confirmation and the reminder
    sweep_after(timedelta(days=1))
    tasks.send_expiry_reminder(consent.pk)

    assert len(platform.reminders) == 1
    assert len(platform.confirmations) == 1
    assert LinkMessage.objects.filter(state=State.SENT).count() == 2


@pytest.mark.django_db
def test_a_consent_renewed_before_its_reminder_is_not_reminded_of_the_old_date(platform, nudges):
    consent = linked_consent()
    reminder = ending_soon(consent)
    services.consent_renew(consent=consent, actor=CUSTOMER, authenticated_at=timezone.now())

    tasks.send_expiry_reminder(consent.pk)

    reminder.refresh_from_db()
    assert (reminder.state, reminder.last_error) == (State.SKIPPED, "consent renewed")
    assert platform.reminders == []


@pytest.mark.django_db
def test_a_renewed_consent_is_reminded_again_of_its_new_end_date(platform, nudges):
    consent = linked_consent()
    ending_soon(consent)
    tasks.send_expiry_reminder(consent.pk)
    services.consent_renew(consent=consent, actor=CUSTOMER, authenticated_at=timezone.now())

    ending_soon(Consent.objects.get(pk=consent.pk))
    tasks.send_expiry_reminder(consent.pk)

    reminders = LinkMessage.objects.filter(consent=consent, kind=Kind.EXPIRY_REMINDER)
    assert [r.state for r in reminders.order_by("pk")] == [State.SENT, State.SENT]
    assert len(platform.reminders) == 2


@pytest.mark.django_db
def test_the_echo_of_a_send_that_may_have_gone_out_records_it_sent(platform, nudges):
    from notifications.tests.test_echoes import echo, post_signed

    consent = linked_consent()
    platform.failures = ["timeout"]
    tasks.send_link_confirmation(consent.pk)
    message = LinkMessage.objects.get(consent=consent)
    integration = MessengerIntegration.objects.get(bank=consent.bank)
    meta = SimpleNamespace(integration=integration, bank=consent.bank, consent=consent)

    response = post_signed(meta, echo(meta, metadata=f"bankside:l:{message.pk}", text=None))

    assert response.status_code == 200
    message.refresh_from_db()
    assert message.state == State.SENT and message.sent_at is not None
    assert len(platform.calls) == 1  # never sent again
    entry = AuditEvent.objects.get(action="link.message_sent")
    assert entry.details["settled_by"] == "echo"
