"""Each queue's workers do that queue's work only, through the real broker: a worker of
the urgent queue sends the fraud alert at once and leaves the routine update posted beside
it to the routine queue's worker."""

import contextlib
import time

import pytest
import redis
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.conf import settings
from django.db import connections

from bankside.celery import app as celery_app
from notifications.models import Notification
from notifications.services import deliveries_nudge_taken
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import post

pytestmark = pytest.mark.django_db(transaction=True)


@contextlib.contextmanager
def worker_of(*queues: str):
    """A real Celery worker consuming only `queues`, in a thread of this process."""

    def close_connections(**kwargs):
        connections.close_all()  # the worker thread's own, before the test database goes

    task_postrun.connect(close_connections, weak=False)
    try:
        with start_worker(
            celery_app,
            pool="solo",
            perform_ping_check=False,
            shutdown_timeout=10,
            queues=list(queues),
        ):
            yield
    finally:
        task_postrun.disconnect(close_connections)
        # `start_worker(queues=…)` narrowed the app's queues for the whole process: the
        # workers later tests start in this process consume every queue again.
        celery_app.amqp.__dict__.pop("queues", None)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout  # a bound, not a measure
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.1)
    return predicate()


def state_of(event_type: str) -> str:
    return Notification.objects.get(event_type=event_type).state


def test_the_urgent_queues_worker_sends_the_alert_and_the_routine_one_the_rest(
    linked, linked_api, graph
):
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    celery_app.control.purge()
    deliveries_nudge_taken()
    someone_else = linked.person()[0]
    post(linked_api, event_payload("transaction.posted", account=someone_else))
    post(linked_api, event_payload("fraud.alert", account=linked.card))

    with worker_of("bankside.urgent"):
        assert wait_for(lambda: state_of("fraud.alert") == "sent")
    # The worker has stopped, its tasks done: the routine update waits for its own workers.
    assert state_of("transaction.posted") == "pending"
    assert broker.llen("bankside.routine") == 1  # the routine nudge, for routine workers

    with worker_of("bankside.routine"):
        assert wait_for(lambda: state_of("transaction.posted") == "sent")

    assert ["Security alert" in text for text in graph.texts()] == [True, False]
    celery_app.control.purge()
    broker.close()
