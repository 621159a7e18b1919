"""Auditing, erasing and purging what notifications holds: the link page's section, the
data-subject erasure (nothing personal left in any table), the retention purge and pausing.

The Send API is faked at the messenger client boundary; the database and Redis are real.
"""

import json
from datetime import timedelta

import httpx
import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

import messenger
from linking.models import Consent, Customer
from notifications import services
from notifications.models import Event, Notification
from notifications.tests.conftest import graph_error
from notifications.tests.factories import event_payload
from portal import services as portal_services
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration, StaffMembership
from portal.pseudonyms import pseudonym
from portal.selectors import audit_chains_verify
from portal.services import retention_purge
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
State = Notification.State
Role = StaffMembership.Role

NAME = "Zebedee Quartermaine"
MERCHANT = "QUARTERMAINE ORCHID EMPORIUM"
DESCRIPTION = "Velvet orchid bulbs for Zebedee"


def post(api, *events):
    response = api.post(EVENTS, {"events": list(events)}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def deliver():
    return services.deliveries_run(seconds=0)


def unlink_ok(body):
    """The Graph API's answer to `me/unlink_accounts`; other calls get the default."""
    if "psid" in body and "recipient" not in body:
        return httpx.Response(200, json={"result": "unlink account success"})
    return None


@pytest.fixture
def admin(linked, sign_in):
    return sign_in(StaffMembershipFactory(bank=linked.bank, role=Role.ADMIN).user)


@pytest.fixture
def auditor(linked, sign_in):
    return sign_in(StaffMembershipFactory(bank=linked.bank, role=Role.AUDITOR).user)


def link_page(linked):
    return reverse(
        "linking:link_detail", kwargs={"bank": linked.bank.slug, "consent": linked.consent.pk}
    )


# The link's page


def test_the_link_page_lists_every_notification_with_its_data_and_delivery(
    linked, linked_api, graph, auditor
):
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    post(linked_api, event_payload("balance.updated", account=linked.checking))
    graph.answers = [None, graph_error(100, message="(#100) Invalid parameter")]
    deliver()
    deliver()

    html = auditor.get(link_page(linked)).content.decode()

    section = html[html.index('id="section-notifications-sent"') :]
    section = section[: section.index("</section>")]
    assert "Fraud alert" in section and "Balance" in section
    assert "Fraud alerts" in section and "Balances" in section  # the data categories shared
    assert "Sent" in section and "Dead-lettered" in section
    sent = Notification.objects.get(event_type="fraud.alert")
    assert f"{sent.sent_at:%-d %b %Y}<br>{sent.sent_at:%H:%M:%S}" in section
    assert section.count("<tr>") == 1 + 2  # the header row and one per notification


def test_a_link_without_notifications_says_so(linked, auditor):
    html = auditor.get(link_page(linked)).content.decode()

    assert "Nothing was sent under this link." in html


# Erasure


def text_columns():
    """Every text, varchar and JSON column of every table, found by introspection."""
    kinds = {"CharField", "TextField", "JSONField"}
    types = connection.introspection.data_types_reverse
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            for column in connection.introspection.get_table_description(cursor, table):
                if types.get(column.type_code) in kinds:
                    yield table, column.name


def tables_holding(value: str) -> list[str]:
    found = []
    with connection.cursor() as cursor:
        for table, column in text_columns():
            cursor.execute(
                f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE %s',
                [f"%{value}%"],
            )
            if cursor.fetchone()[0]:
                found.append(f"{table}.{column}")
    return found


@pytest.fixture
def recognisable(linked, linked_api, graph):
    """Ana renamed to a name found nowhere else, with messages about a unique merchant."""
    renamed = linked_api.put(
        f"/api/v1/customers/{linked.customer.external_id}",
        {
            "name": NAME,
            "locale": "en",
            "accounts": [
                {"id": "chk-001", "kind": "checking", "name": "Everyday", "last4": "4821",
                 "currency": "EUR", "balance": "10.00"},
                {"id": "visa-001", "kind": "credit_card", "name": "Visa", "last4": "9012",
                 "currency": "EUR", "balance": "0.00"},
            ],
        },
        format="json",
        HTTP_IDEMPOTENCY_KEY="rename-1",
    )  # fmt: skip
    assert renamed.status_code == 200, renamed.content
    post(
        linked_api,
        event_payload(
            "transaction.posted",
            account=linked.card,
            data={"merchant": MERCHANT, "description": DESCRIPTION},
        ),
        event_payload("fraud.alert", account=linked.card, data={"merchant": MERCHANT}),
    )
    deliver()
    deliver()
    assert {n.state for n in Notification.objects.all()} == {State.SENT}
    assert any(MERCHANT.lower() in (n.text or "").lower() for n in Notification.objects.all())
    psid = linked.consent.psid
    for value in (NAME, psid, MERCHANT, DESCRIPTION):
        assert tables_holding(value), f"the seed did not store {value!r}"
    assert "notifications_idempotencyrecord.body" in tables_holding(NAME)
    return psid


def test_erasure_leaves_no_personal_data_in_any_table_and_the_chain_verifies(
    linked, graph, admin, recognisable
):
    psid = recognisable
    graph.answers = [unlink_ok] * 4

    response = admin.post(
        reverse(
            "linking:subject_erase",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        ),
        {"confirm": linked.customer.external_id, "reason": f"Request 77 from {NAME}"},
    )

    assert response.status_code == 302
    searched = {f"{table}.{column}" for table, column in text_columns()}
    assert {
        "portal_auditevent.details",
        "portal_auditevent.actor_label",
        "notifications_notification.text",
        "notifications_event.data",
        "linking_customer.name",
    } <= searched
    for value in (NAME, "Quartermaine", psid, MERCHANT, DESCRIPTION):
        assert tables_holding(value) == [], value
    assert all(report.intact for report in audit_chains_verify(bank=linked.bank))
    call_command("verify_audit_chain", "--bank", linked.bank.slug)  # exits 0
    consent = Consent.objects.get(pk=linked.consent.pk)
    assert consent.status == Consent.Status.REVOKED and consent.psid == ""
    assert consent.platform_unlinked_at is not None
    assert {"psid": psid} in graph.sent  # Messenger was told before the PSID went
    erased = AuditEvent.objects.get(action="subject_data.erased")
    assert erased.details["reason"] == "Request 77 from [customer]"
    assert erased.details["links_revoked"] == [linked.consent.pk]
    assert Customer.objects.get(pk=linked.customer.pk).erased_at is not None
    # Audit entries about the person keep their pseudonymous reference.
    sent = AuditEvent.objects.filter(action="notification.sent")
    assert {e.details["psid_ref"] for e in sent} == {pseudonym(psid)}


def test_erasure_keeps_delivery_outcomes_and_cancels_what_was_pending(
    linked, linked_api, graph, admin, recognisable
):
    MessengerIntegration.objects.filter(bank=linked.bank).update(status="paused")
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()
    assert Notification.objects.filter(state=State.PENDING).count() == 1

    admin.post(
        reverse(
            "linking:subject_erase",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        ),
        {"confirm": linked.customer.external_id, "reason": "Request 78"},
    )

    states = sorted(Notification.objects.values_list("state", flat=True))
    assert states == [State.CANCELLED, State.SENT, State.SENT]
    assert set(Notification.objects.values_list("text", "psid")) == {("", "")}
    assert [e.data for e in Event.objects.all()] == [{}, {}, {}]


def test_an_erasure_with_the_wrong_confirmation_changes_nothing(linked, admin, recognisable):
    response = admin.post(
        reverse(
            "linking:subject_erase",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        ),
        {"confirm": "someone-else", "reason": "Request 79"},
    )

    assert response.status_code == 400
    assert "not the customer" in response.content.decode()
    assert Customer.objects.get(pk=linked.customer.pk).name == NAME
    assert Consent.objects.get(pk=linked.consent.pk).status == Consent.Status.AUTHORISED
    assert not AuditEvent.objects.filter(action="subject_data.erased").exists()


def test_the_download_holds_the_messages_sent_and_their_delivery(linked, auditor, recognisable):
    response = auditor.get(
        reverse(
            "linking:subject_export",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        )
    )

    document = json.loads(b"".join(response.streaming_content))
    part = document["parts"]["notifications.messages"]
    assert {e["data"].get("merchant") for e in part["events"]} == {MERCHANT}
    assert len(part["notifications"]) == 2
    first = part["notifications"][0]
    assert first["state"] == "sent" and first["sent_to"]["psid"] == recognisable
    assert first["delivery_attempts"][0]["outcome"] == "sent"
    assert MERCHANT.lower() in " ".join(n["text"].lower() for n in part["notifications"])
    assert {o["type"] for o in part["outcomes_reported_to_the_bank"]} >= {"notification.sent"}


# Retention


def test_the_purge_blanks_old_bodies_keeps_recent_ones_and_the_chain(linked, linked_api, graph):
    post(
        linked_api,
        event_payload("transaction.posted", account=linked.card, data={"merchant": MERCHANT}),
    )
    deliver()
    old = timezone.now() - timedelta(days=500)
    Notification.objects.update(created_at=old)
    Event.objects.update(received_at=old)
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()

    counts = retention_purge(bank=linked.bank, actor=Actor.system("test"))

    old_one = Notification.objects.get(event_type="transaction.posted")
    recent = Notification.objects.get(event_type="fraud.alert")
    assert old_one.text == "" and old_one.state == State.SENT and old_one.sent_at is not None
    assert recent.text != ""
    assert Event.objects.get(pk=old_one.event_id).data == {}
    assert Event.objects.get(pk=recent.event_id).data != {}
    assert counts["notifications.messages"] == 2
    entry = AuditEvent.objects.get(action="retention.purged")
    assert entry.details["rows_changed"]["notifications.messages"] == 2
    assert all(report.intact for report in audit_chains_verify(bank=linked.bank))


def test_the_purge_never_blanks_what_is_still_to_be_sent(linked, linked_api, graph):
    MessengerIntegration.objects.filter(bank=linked.bank).update(status="paused")
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()
    Notification.objects.update(created_at=timezone.now() - timedelta(days=500))
    Event.objects.update(received_at=timezone.now() - timedelta(days=500))

    retention_purge(bank=linked.bank, actor=Actor.system("test"))

    pending = Notification.objects.get()
    assert pending.state == State.PENDING and pending.text != ""
    assert Event.objects.get().data != {}


# Pausing a bank


def test_a_paused_bank_sends_nothing_until_resumed(linked, linked_api, graph, admin):
    response = admin.post(
        reverse("portal:bank_pause", kwargs={"bank": linked.bank.slug}),
        {"reason": "Incident 1432"},
    )
    post(linked_api, event_payload("fraud.alert", account=linked.card))
    deliver()

    assert response.status_code == 302
    integration = MessengerIntegration.objects.get(bank=linked.bank)
    assert (integration.status, integration.status_reason) == ("paused", "Incident 1432")
    assert graph.sent == []
    assert Notification.objects.get().state == State.PENDING
    entry = AuditEvent.objects.get(action="integration.paused")
    assert entry.details["reason"] == "Incident 1432"

    page = linked.integration.page_id

    def graph_api(request):  # the Page look-up, then the webhook subscription of a live Page
        if request.url.path.endswith("/subscribed_apps"):
            return httpx.Response(200, json={"success": True})
        return httpx.Response(200, json={"id": page})

    check = messenger.GraphClient(
        "https://graph.test", "v27.0", transport=httpx.MockTransport(graph_api)
    )
    resumed = portal_services.integration_resume(
        actor=Actor.system("test"), integration=integration, client=check
    )
    deliver()

    assert resumed.ok and resumed.integration.status == "live"

    assert len(graph.sent) == 1 and Notification.objects.get().state == State.SENT


def test_an_erasure_waits_while_messenger_cannot_be_told(linked, graph, admin, recognisable):
    graph.answers = [graph_error(2, status=503, message="Service temporarily unavailable")] * 4

    response = admin.post(
        reverse(
            "linking:subject_erase",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        ),
        {"confirm": linked.customer.external_id, "reason": "Request 80"},
        follow=True,
    )

    assert "Messenger could not be told" in response.content.decode()
    consent = Consent.objects.get(pk=linked.consent.pk)
    assert consent.status == Consent.Status.REVOKED  # nothing more is sent to them
    assert consent.psid == recognisable  # but nothing is erased until Messenger knows
    assert Customer.objects.get(pk=linked.customer.pk).erased_at is None
    assert tables_holding(MERCHANT)
    assert not AuditEvent.objects.filter(action="subject_data.erased").exists()

    graph.answers = [unlink_ok] * 4
    admin.post(
        reverse(
            "linking:subject_erase",
            kwargs={"bank": linked.bank.slug, "customer": linked.customer.pk},
        ),
        {"confirm": linked.customer.external_id, "reason": "Request 80"},
    )

    assert Customer.objects.get(pk=linked.customer.pk).erased_at is not None
    assert tables_holding(recognisable) == []
