"""Delivery nudges: posts share one pending nudge until a worker takes it; an urgent
update nudges the urgent queue, whose workers hold no routine backlog."""

import json
import time

import pytest
import redis
from django.conf import settings

from bankside.celery import app as celery_app
from notifications.models import Notification
from notifications.services import deliveries_nudge, deliveries_nudge_taken, nudge
from notifications.tests.test_api_events import event_payload, post


@pytest.fixture
def broker_queues(db):
    """The tasks waiting on each of the broker's queues, from empty queues."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    celery_app.control.purge()
    deliveries_nudge_taken()

    def waiting() -> dict[str, list[str]]:
        found = {}
        for queue in celery_app.amqp.queues:
            tasks = [json.loads(m)["headers"]["task"] for m in client.lrange(queue, 0, -1)]
            if tasks:
                found[queue] = tasks
        return found

    yield waiting
    celery_app.control.purge()
    deliveries_nudge_taken()
    client.close()


@pytest.fixture
def broker_queue(broker_queues):
    """The nudges waiting on the routine queue, where `deliver_due` goes."""
    return lambda: len(broker_queues().get("bankside.routine", []))


def nudge_now(capture) -> None:
    with capture(execute=True):
        deliveries_nudge()


def test_posts_while_a_nudge_waits_send_none_of_their_own(
    linked, linked_api, broker_queue, django_capture_on_commit_callbacks
):
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = post(linked_api, event_payload(account=linked.card))
        assert response.json()["accepted"] == 1

    assert broker_queue() == 1


def test_a_worker_taking_the_nudge_lets_the_next_commit_nudge_again(
    broker_queue, django_capture_on_commit_callbacks
):
    nudge_now(django_capture_on_commit_callbacks)
    deliveries_nudge_taken()  # what deliver_due does before its first claim
    nudge_now(django_capture_on_commit_callbacks)
    nudge_now(django_capture_on_commit_callbacks)

    assert broker_queue() == 2


def test_a_lost_nudge_holds_later_ones_back_only_until_its_flag_expires(
    broker_queue, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(nudge, "PENDING_MS", 50)
    nudge_now(django_capture_on_commit_callbacks)
    celery_app.control.purge()  # the broker lost it; no worker will clear the flag
    time.sleep(0.1)

    nudge_now(django_capture_on_commit_callbacks)

    assert broker_queue() == 1


def test_the_deliver_due_task_clears_the_flag_before_it_claims(
    broker_queue, django_capture_on_commit_callbacks
):
    from notifications.tasks import deliver_due

    nudge_now(django_capture_on_commit_callbacks)
    celery_app.control.purge()
    deliver_due.apply()  # runs here, as a worker would

    nudge_now(django_capture_on_commit_callbacks)

    assert broker_queue() == 1


def test_without_redis_every_commit_nudges(
    broker_queue, django_capture_on_commit_callbacks, settings
):
    settings.REDIS_URL = ""  # the demo's embedded mode (the broker stays the test's)

    nudge_now(django_capture_on_commit_callbacks)
    nudge_now(django_capture_on_commit_callbacks)

    assert broker_queue() == 2


def test_an_unreachable_flag_store_nudges_anyway(
    broker_queue, django_capture_on_commit_callbacks, settings
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there; the broker stays

    nudge_now(django_capture_on_commit_callbacks)
    nudge_now(django_capture_on_commit_callbacks)

    assert broker_queue() == 2


# The urgent queue


def test_a_fraud_alert_nudges_the_urgent_queue_only(
    linked, linked_api, broker_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(linked_api, event_payload("fraud.alert", account=linked.card))

    assert broker_queues() == {"bankside.urgent": ["notifications.deliver_urgent"]}


def test_a_routine_update_nudges_the_routine_queue_only(
    linked, linked_api, broker_queues, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        post(linked_api, event_payload("transaction.posted", account=linked.card))

    assert broker_queues() == {"bankside.routine": ["notifications.deliver_due"]}


def test_a_post_with_both_classes_nudges_both_queues(
    linked, linked_api, broker_queues, django_capture_on_commit_callbacks
):
    events = [
        event_payload("transaction.posted", account=linked.card),
        event_payload("fraud.alert", account=linked.card),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = linked_api.post("/api/v1/events", {"events": events}, format="json")
    assert response.json()["accepted"] == 2

    assert broker_queues() == {
        "bankside.urgent": ["notifications.deliver_urgent"],
        "bankside.routine": ["notifications.deliver_due"],
    }


def test_each_queue_coalesces_its_own_nudges(
    linked, linked_api, broker_queues, django_capture_on_commit_callbacks
):
    """A routine nudge waiting does not hold back the urgent one, nor the other way round."""
    for kind in ["transaction.posted", "fraud.alert", "transaction.posted", "fraud.alert"]:
        with django_capture_on_commit_callbacks(execute=True):
            post(linked_api, event_payload(kind, account=linked.card))

    assert broker_queues() == {
        "bankside.urgent": ["notifications.deliver_urgent"],
        "bankside.routine": ["notifications.deliver_due"],
    }


def test_the_urgent_task_sends_urgent_updates_only_and_clears_only_its_queues_flag(
    linked, linked_api, broker_queues, django_capture_on_commit_callbacks, graph
):
    from notifications.tasks import deliver_urgent

    for kind in ["transaction.posted", "fraud.alert"]:
        with django_capture_on_commit_callbacks(execute=True):
            post(linked_api, event_payload(kind, account=linked.card))
    celery_app.control.purge()
    another = linked.person()[0]  # someone without a message in flight
    with django_capture_on_commit_callbacks(execute=True):
        post(linked_api, event_payload("transaction.posted", account=another))
    celery_app.control.purge()
    deliver_urgent.apply()  # runs here, as an urgent worker would

    assert ["Security alert" in text for text in graph.texts()] == [True]
    assert Notification.objects.filter(state="pending").count() == 2  # the routine ones

    for kind in ["transaction.posted", "fraud.alert"]:
        with django_capture_on_commit_callbacks(execute=True):
            post(linked_api, event_payload(kind, account=linked.card))

    # The routine flag still stands for the nudge the broker lost; the urgent one was taken.
    assert broker_queues() == {"bankside.urgent": ["notifications.deliver_urgent"]}


def test_the_sweeper_nudges_the_urgent_queue_while_urgent_updates_are_due(
    linked, linked_api, broker_queues
):
    from notifications.tasks import sweep_outbox

    post(linked_api, event_payload("fraud.alert", account=linked.card))  # its nudge lost
    celery_app.control.purge()

    sweep_outbox.apply()

    assert broker_queues() == {
        "bankside.urgent": ["notifications.deliver_urgent"],
        "bankside.routine": ["notifications.deliver_due"],
    }
