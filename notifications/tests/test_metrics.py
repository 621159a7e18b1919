"""Prometheus metrics at /metrics: restricted to the metrics token, counted across workers."""

import uuid

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from notifications import metrics, services
from notifications.models import Notification
from notifications.selectors import deliveries_panel
from notifications.tests.conftest import DELIVERY_REDIS, graph_error
from notifications.tests.factories import event_payload

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(autouse=True)
def _own_counters(settings):
    """Counters of this test only, in the delivery engine's test Redis."""
    settings.NOTIFICATIONS_METRICS_KEY = f"test:metrics:{uuid.uuid4().hex}"
    settings.METRICS_TOKEN = TOKEN
    metrics._waits.update(count=0, seconds=0.0)  # waits counted by earlier tests
    yield
    redis.Redis.from_url(DELIVERY_REDIS).delete(settings.NOTIFICATIONS_METRICS_KEY)


def scrape(client, token=TOKEN):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.get("/metrics", headers=headers)


def samples(response) -> dict[tuple[str, tuple], float]:
    text = response.content.decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found, name, **labels) -> float:
    return found[(name, tuple(sorted(labels.items())))]


# Who may scrape


def test_without_a_configured_token_metrics_are_not_served(client, settings):
    settings.METRICS_TOKEN = ""

    response = scrape(client, token="")

    assert response.status_code == 404
    assert "set METRICS_TOKEN" in response.content.decode()


def test_a_scrape_without_the_token_is_refused(client):
    response = scrape(client, token=None)

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"bankside_" not in response.content


def test_a_scrape_with_a_wrong_token_is_refused(client):
    response = scrape(client, token=TOKEN[:-1] + "X")

    assert response.status_code == 401
    assert b"bankside_" not in response.content


def test_a_scrape_with_the_token_gets_the_metrics(client, db):
    response = scrape(client)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert response["Cache-Control"].startswith("max-age=0")
    found = samples(response)
    assert value(found, "bankside_outbox_notifications", state="pending") == 0
    assert value(found, "bankside_notification_send_latency_seconds_count") == 0
    assert value(found, "bankside_page_rate_limit_waits_total") == 0


def test_metrics_answer_only_get(client):
    response = client.post("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


# What they say after a delivery run


def test_a_delivery_run_is_counted_by_outcome_depth_and_latency(client, linked, linked_api, graph):
    people = [linked.person() for _ in range(3)]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=a) for a, _ in people]},
        format="json",
    )
    graph.answers = [None, graph_error(2, status=500), graph_error(100)]

    services.deliveries_run(seconds=0)
    found = samples(scrape(client))

    assert value(found, "bankside_notification_sends_total", outcome="sent") == 1
    assert value(found, "bankside_notification_sends_total", outcome="transient") == 1
    assert value(found, "bankside_notification_sends_total", outcome="bad_request") == 1
    assert value(found, "bankside_outbox_notifications", state="pending") == 1
    assert value(found, "bankside_outbox_notifications", state="dead") == 1
    assert value(found, "bankside_outbox_notifications", state="in_flight") == 0
    assert value(found, "bankside_notification_send_latency_seconds_count") == 1
    assert value(found, "bankside_notification_send_latency_seconds_bucket", le="+Inf") == 1
    assert value(found, "bankside_notification_send_latency_seconds_sum") > 0


def test_counters_add_up_across_runs_as_they_would_across_workers(
    client, linked, linked_api, graph
):
    for _ in range(2):
        linked_api.post(
            "/api/v1/events", event_payload("fraud.alert", account=linked.card), format="json"
        )
        services.deliveries_run(seconds=0)

    found = samples(scrape(client))

    assert value(found, "bankside_notification_sends_total", outcome="sent") == 2
    assert value(found, "bankside_notification_send_latency_seconds_count") == 2


def test_waits_for_a_pages_rate_limit_are_counted(client, linked, linked_api, graph, settings):
    settings.NOTIFICATIONS_PAGE_RATE_LIMIT = 20  # routine calls: 20 a second, one at a time
    people = [linked.person() for _ in range(4)]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("transaction.posted", account=a) for a, _ in people]},
        format="json",
    )

    services.deliveries_run(seconds=0)
    found = samples(scrape(client))

    assert len(graph.sent) == 4
    assert value(found, "bankside_page_rate_limit_waits_total") >= 1
    assert value(found, "bankside_page_rate_limit_wait_seconds_total") > 0


def test_the_dashboard_panel_shows_the_same_outbox_depth(client, linked, linked_api, graph):
    people = [linked.person() for _ in range(3)]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload("fraud.alert", account=a) for a, _ in people]},
        format="json",
    )
    graph.answers = [None, graph_error(2, status=500), graph_error(100)]
    services.deliveries_run(seconds=0)

    found = samples(scrape(client))
    caption = deliveries_panel(linked.bank).caption

    dead = int(value(found, "bankside_outbox_notifications", state="dead"))
    on_their_way = int(value(found, "bankside_outbox_notifications", state="pending"))
    assert f"{dead} dead-lettered in all; {on_their_way} on their way, 0 held" in caption


def test_a_redis_failure_loses_counts_but_never_a_delivery(linked, linked_api, graph, monkeypatch):
    class Down:
        def add(self, counts, amounts):
            raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(metrics, "counters", Down)
    linked_api.post(
        "/api/v1/events", event_payload("fraud.alert", account=linked.card), format="json"
    )

    report = services.deliveries_run(seconds=0)

    assert report.count(Notification.State.SENT) == 1
    assert Notification.objects.get().state == Notification.State.SENT


def test_production_refuses_a_metrics_token_that_could_be_guessed():
    from cryptography.fernet import Fernet

    from bankside.tests.test_settings import PRODUCTION_ENV, manage

    env = {
        **PRODUCTION_ENV,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "METRICS_TOKEN": "short-token",
    }

    result = manage("check", env_overrides=env)

    assert result.returncode != 0
    assert "METRICS_TOKEN must be at least 32 random characters." in result.stderr


def test_a_scrape_while_redis_is_down_is_a_clear_503(client, monkeypatch):
    class Down:
        def read(self):
            raise redis.ConnectionError("Redis is down")

    monkeypatch.setattr(metrics, "counters", Down)

    response = scrape(client)

    assert response.status_code == 503
    assert "unavailable" in response.content.decode()


def test_the_queue_of_each_class_shows_its_depth_and_oldest_due_age(
    client, linked, linked_api, graph
):
    import datetime as dt

    from django.utils import timezone

    people = [linked.person() for _ in range(2)]
    linked_api.post(
        "/api/v1/events",
        {
            "events": [
                *[event_payload("transaction.posted", account=a) for a, _ in people for _ in "ab"],
                event_payload("fraud.alert", account=linked.card),
            ]
        },
        format="json",
    )
    Notification.objects.filter(event_type="transaction.posted").update(
        next_attempt_at=timezone.now() - dt.timedelta(minutes=5)
    )

    found = samples(scrape(client))
    caption = deliveries_panel(linked.bank).caption

    assert value(found, "bankside_outbox_queue_notifications", urgency="urgent") == 1
    assert value(found, "bankside_outbox_queue_notifications", urgency="routine") == 4
    urgent_age = value(found, "bankside_outbox_oldest_due_seconds", urgency="urgent")
    routine_age = value(found, "bankside_outbox_oldest_due_seconds", urgency="routine")
    assert 0 <= urgent_age < 60 and 300 <= routine_age < 400
    assert "urgent: 1 waiting, oldest due " in caption
    assert "routine: 4 waiting, oldest due 5 min" in caption

    services.deliveries_run(seconds=5)
    found = samples(scrape(client))

    assert value(found, "bankside_outbox_queue_notifications", urgency="urgent") == 0
    assert value(found, "bankside_outbox_oldest_due_seconds", urgency="routine") == 0
    assert "urgent: 0 waiting; routine: 0 waiting" in deliveries_panel(linked.bank).caption
