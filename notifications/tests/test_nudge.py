"""Delivery nudges: posts share one pending nudge until a worker takes it."""

import time

import pytest
import redis
from django.conf import settings

from bankside.celery import app as celery_app
from notifications.services import deliveries_nudge, deliveries_nudge_taken, nudge
from notifications.tests.test_api_events import event_payload, post


@pytest.fixture
def broker_queue(db):
    """The nudges waiting on the broker's default queue, from an empty queue."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queue = celery_app.conf.task_default_queue
    celery_app.control.purge()
    deliveries_nudge_taken()
    yield lambda: client.llen(queue)
    celery_app.control.purge()
    deliveries_nudge_taken()
    client.close()


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
