"""A post's transaction as it commits on PostgreSQL: two round trips, all or nothing.

These tests commit for real (a transactional database), as production does: the
notifications, the audit entry and the outcomes of a post go with its COMMIT, and the
database appends the audit entry to the bank's chain itself.
"""

import pytest
from django.db import IntegrityError, connection
from rest_framework.test import APIClient

from core.context import RequestContext
from core.tests.round_trips import round_trips
from core.tests.threads import run_together
from linking.tests.factories import AccountFactory, CustomerFactory
from notifications.models import Event, Notification, Outcome
from notifications.services import Post, event_ingest, events_ingest_posts
from notifications.tests.factories import event_payload
from portal import selectors
from portal.audit import Actor
from portal.models import AuditChain, AuditEvent
from portal.services import audit_record
from portal.tests.factories import BankFactory, api_key_for

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "/api/v1/events"


def post(api, body, **extra):
    return api.post(EVENTS, body, format="json", **extra)


def ingest_entries(bank) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(bank=bank, action="events.ingested").order_by("seq"))


def test_a_post_writes_in_two_round_trips_between_begin_and_commit(linked, linked_api):
    post(linked_api, event_payload(account=linked.card))  # the bank's rules are kept now

    with round_trips() as recorded:
        response = post(linked_api, event_payload(account=linked.card))
        sent = list(recorded)

    assert response.status_code == 202
    assert response.json()["accepted"] == 1
    (begin,) = [n for n, text in enumerate(sent) if text.startswith("BEGIN")]
    assert "INSERT INTO" in sent[begin] and "notifications_event" in sent[begin]
    assert sent[begin + 1 :] == [sent[-1]]  # the transaction's other round trip: its end
    last = sent[-1]
    assert last.endswith("COMMIT")
    for table in ("notifications_notification", "portal_auditevent", "notifications_outcome"):
        assert table in last
    assert Notification.objects.filter(event__event_id=response.json()["results"][0]["id"])


def test_the_entry_the_database_appends_continues_the_chain(linked, linked_api):
    audit_record(actor=Actor.system("test"), action="test.before", bank=linked.bank)

    first = post(linked_api, event_payload(account=linked.card), HTTP_X_REQUEST_ID="req-core-0001")
    second = post(
        linked_api,
        {"events": [event_payload(account=linked.card), {"id": "bad"}]},
        HTTP_X_REQUEST_ID="req-core-0002",
    )

    assert first.status_code == second.status_code == 202
    chain = AuditChain.objects.get(bank=linked.bank, lane=0)
    report = selectors.audit_chain_verify(chain.scope)
    assert report.intact, report.reason
    assert chain.head_seq == report.entries == AuditEvent.objects.filter(chain=chain).count()
    one, two = ingest_entries(linked.bank)
    assert (one.seq, two.seq) == (chain.head_seq - 1, chain.head_seq)
    assert two.prev_hash == one.hash and chain.head_hash == two.hash
    assert one.actor_type == "api_key" and one.actor_label
    assert (one.request_id, two.request_id) == ("req-core-0001", "req-core-0002")
    assert one.source_ip == "127.0.0.1"
    assert two.details == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "accepted_types": {"transaction.posted": 1},
    }


def test_the_first_entry_of_a_bank_starts_its_chain():
    bank = BankFactory()
    account = AccountFactory(customer=CustomerFactory(bank=bank))
    assert not AuditChain.objects.filter(bank=bank).exists()

    report = event_ingest(
        actor=Actor.system("test"), bank=bank, events=[event_payload(account=account)]
    )

    assert report.count("accepted") == 1
    chain = AuditChain.objects.get(bank=bank, lane=0)
    assert chain.key == f"bank:{bank.pk}"
    (entry,) = ingest_entries(bank)
    assert entry.seq == chain.head_seq == 1
    assert selectors.audit_chain_verify(chain.scope).intact


def test_posts_stored_together_are_answered_and_audited_each_as_its_own(linked):
    core, branch = Actor("api_key", "1", "Core banking"), Actor("api_key", "2", "Branch")
    shared = event_payload(account=linked.card)
    posts = [
        Post(core, [shared, {"id": "bad"}], RequestContext("req-core-0001", "10.0.0.1")),
        Post(branch, [event_payload(account=linked.checking), shared], RequestContext("req-2")),
    ]

    with round_trips() as recorded:
        first, second = events_ingest_posts(bank=linked.bank, posts=posts)
        sent = list(recorded)

    assert [(r.index, r.status) for r in first.results] == [(0, "accepted"), (1, "rejected")]
    assert [(r.index, r.status) for r in second.results] == [(0, "accepted"), (1, "duplicate")]
    assert second.results[1].id == shared["id"]
    assert len([text for text in sent if text.startswith("BEGIN")]) == 1  # one transaction
    one, two = ingest_entries(linked.bank)
    assert (one.actor_label, one.request_id, one.source_ip) == (
        "Core banking",
        "req-core-0001",
        "10.0.0.1",
    )
    assert (two.actor_label, two.request_id, two.source_ip) == ("Branch", "req-2", None)
    assert one.details == {
        "accepted": 1,
        "duplicates": 0,
        "rejected": 1,
        "accepted_types": {"transaction.posted": 1},
    }
    assert two.details["accepted"] == 1 and two.details["duplicates"] == 1
    assert two.prev_hash == one.hash
    assert selectors.audit_chain_verify(AuditChain.scope_for(linked.bank)).intact
    assert Event.objects.filter(bank=linked.bank).count() == 2
    assert Notification.objects.filter(bank=linked.bank).count() == 2
    assert Outcome.objects.filter(bank=linked.bank).count() == 3  # 2 accepted, 1 rejected


def test_concurrent_posts_of_one_bank_keep_one_unbroken_chain(linked):
    secret = api_key_for(linked.bank).secret
    statuses = []

    def poster(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
        for _ in range(5):
            body = event_payload("balance.updated", account=linked.checking)
            statuses.append(post(client, body).status_code)

    assert run_together(poster, range(4)) == []
    assert statuses == [202] * 20
    chain = AuditChain.objects.get(bank=linked.bank, lane=0)
    assert selectors.audit_chain_verify(chain.scope).intact
    assert len(ingest_entries(linked.bank)) == 20
    assert Event.objects.filter(bank=linked.bank).count() == 20
    assert Outcome.objects.filter(bank=linked.bank, type="event.accepted").count() == 20


def test_a_post_that_fails_at_commit_leaves_nothing_behind(linked, linked_api):
    post(linked_api, event_payload(account=linked.card))
    before = (
        Event.objects.count(),
        Notification.objects.count(),
        Outcome.objects.count(),
        AuditEvent.objects.count(),
    )
    head = AuditChain.objects.get(bank=linked.bank, lane=0).head_seq
    with connection.cursor() as cursor:
        # Outcomes refused: the last statement sent with the COMMIT fails.
        cursor.execute(
            "ALTER TABLE notifications_outcome ADD CONSTRAINT refuse CHECK (false) NOT VALID"
        )
    try:
        with pytest.raises(IntegrityError, match="refuse"):
            post(linked_api, event_payload(account=linked.card))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE notifications_outcome DROP CONSTRAINT refuse")

    assert (
        Event.objects.count(),
        Notification.objects.count(),
        Outcome.objects.count(),
        AuditEvent.objects.count(),
    ) == before
    assert AuditChain.objects.get(bank=linked.bank, lane=0).head_seq == head
    assert post(linked_api, event_payload(account=linked.card)).status_code == 202
    assert selectors.audit_chain_verify(AuditChain.scope_for(linked.bank)).intact
