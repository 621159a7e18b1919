"""Posts of one bank arriving together are stored in one transaction, each answered and
audited as its own; a failed group is stored again post by post."""

import threading
import time

import pytest
from django.db import connections, transaction

from core import context
from core.context import RequestContext
from core.tests.threads import run_together
from notifications.models import Event
from notifications.services import ingest_groups as groups_module
from notifications.services.ingest_groups import IngestGroups
from notifications.tests.factories import event_payload
from portal import selectors
from portal.audit import Actor
from portal.models import AuditChain, AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def stored(monkeypatch):
    """The groups stored, as lists of request ids; the first group is held back until
    every other post has arrived, so they all wait behind it."""
    groups: list[list[str]] = []
    release = threading.Event()
    store = groups_module.events_ingest_posts

    def recording(*, bank, posts):
        groups.append([post.context.request_id for post in posts])
        if len(groups) == 1:
            release.wait(5)
        return store(bank=bank, posts=posts)

    monkeypatch.setattr(groups_module, "events_ingest_posts", recording)
    return groups, release


def post_all(linked, count: int, release: threading.Event):
    """`count` posts of the bank at once, one per thread, each in a request of its own;
    the reports by request id, and what any thread raised. `release` is set once all but
    the first are waiting (or after 5 s)."""
    groups = IngestGroups()
    reports, errors = {}, {}

    def post(n):
        token = context.bind(RequestContext(f"req-{n}", "10.0.0.9"))
        try:
            reports[f"req-{n}"] = groups.ingest(
                actor=Actor("api_key", str(n), f"Key {n}"),
                bank=linked.bank,
                events=[event_payload(account=linked.card)],
            )
        except Exception as exc:  # noqa: BLE001 - reported to the test
            errors[f"req-{n}"] = exc
        finally:
            context.reset(token)

    def release_later():
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if len(groups._waiting.get(linked.bank.pk, ())) >= count - 1:
                break
            time.sleep(0.005)
        release.set()

    threading.Thread(target=release_later).start()
    assert run_together(post, range(count), timeout=20) == []
    return reports, errors


def entries(bank) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(bank=bank, action="events.ingested").order_by("seq"))


def test_posts_arriving_during_a_transaction_are_stored_together_after_it(linked, stored):
    groups, release = stored

    reports, errors = post_all(linked, 4, release)

    assert errors == {}
    assert len(groups) == 2 and len(groups[0]) == 1 and len(groups[1]) == 3
    assert sorted(groups[0] + groups[1]) == [f"req-{n}" for n in range(4)]
    for report in reports.values():
        assert [(r.index, r.status) for r in report.results] == [(0, "accepted")]
    assert len({report.results[0].id for report in reports.values()}) == 4
    audited = entries(linked.bank)
    assert sorted(e.request_id for e in audited) == sorted(reports)
    assert {(e.request_id, e.actor_id) for e in audited} == {(f"req-{n}", str(n)) for n in range(4)}
    assert all(e.details["accepted"] == 1 for e in audited)
    assert selectors.audit_chain_verify(AuditChain.scope_for(linked.bank)).intact
    assert Event.objects.filter(bank=linked.bank).count() == 4


def test_a_group_holds_at_most_a_batch_of_events(linked, stored, monkeypatch):
    groups, release = stored
    monkeypatch.setattr(groups_module, "MAX_BATCH", 2)

    _, errors = post_all(linked, 4, release)

    assert errors == {}
    assert [len(group) for group in groups] == [1, 2, 1]
    assert Event.objects.filter(bank=linked.bank).count() == 4


def test_a_failed_group_is_stored_again_post_by_post(linked, stored, monkeypatch):
    groups, release = stored  # the groups that reached the database
    store, failed = groups_module.events_ingest_posts, []

    def failing_together(*, bank, posts):
        if len(posts) > 1:
            failed.append(len(posts))
            raise RuntimeError("the group's transaction failed")
        return store(bank=bank, posts=posts)

    monkeypatch.setattr(groups_module, "events_ingest_posts", failing_together)

    reports, errors = post_all(linked, 4, release)

    assert errors == {}
    assert failed == [3]
    assert [len(group) for group in groups] == [1, 1, 1, 1]
    assert all(report.results[0].status == "accepted" for report in reports.values())
    assert Event.objects.filter(bank=linked.bank).count() == 4
    assert len(entries(linked.bank)) == 4
    assert selectors.audit_chain_verify(AuditChain.scope_for(linked.bank)).intact


def test_an_error_in_one_post_alone_reaches_only_that_post(linked, stored, monkeypatch):
    _, release = stored
    store = groups_module.events_ingest_posts

    def refusing_req_2(*, bank, posts):
        if any(post.context.request_id == "req-2" for post in posts):
            raise RuntimeError("req-2 cannot be stored")
        return store(bank=bank, posts=posts)

    monkeypatch.setattr(groups_module, "events_ingest_posts", refusing_req_2)

    reports, errors = post_all(linked, 4, release)

    assert list(errors) == ["req-2"]
    assert sorted(reports) == ["req-0", "req-1", "req-3"]
    assert Event.objects.filter(bank=linked.bank).count() == 3
    assert sorted(e.request_id for e in entries(linked.bank)) == ["req-0", "req-1", "req-3"]


def test_a_large_batch_is_stored_at_once_beside_a_group_in_progress(linked, stored):
    groups, release = stored
    ingest = IngestGroups()

    def post_one():
        token = context.bind(RequestContext("req-small"))
        try:
            ingest.ingest(
                actor=Actor.system("test"),
                bank=linked.bank,
                events=[event_payload(account=linked.card)],
            )
        finally:
            context.reset(token)
            connections.close_all()

    small = threading.Thread(target=post_one)
    small.start()
    try:
        deadline = time.monotonic() + 5
        while not groups and time.monotonic() < deadline:  # its group is being stored
            time.sleep(0.005)
        size = groups_module.GROUPED_POST_MAX + 1
        batch = [event_payload(account=linked.card) for _ in range(size)]
        report = ingest.ingest(actor=Actor.system("test"), bank=linked.bank, events=batch)
        held = not release.is_set()
    finally:
        release.set()
        small.join(10)

    assert groups == [["req-small"]]
    assert held  # the batch was stored while the group was still held back
    assert report.count("accepted") == size
    assert Event.objects.filter(bank=linked.bank).count() == size + 1


def test_a_post_inside_an_open_transaction_is_stored_alone_in_it(linked, stored):
    groups, _ = stored

    with transaction.atomic():
        report = IngestGroups().ingest(
            actor=Actor.system("test"),
            bank=linked.bank,
            events=[event_payload(account=linked.card)],
        )

    assert report.results[0].status == "accepted"
    assert groups == []  # event_ingest, not a group
    assert Event.objects.filter(bank=linked.bank).count() == 1
