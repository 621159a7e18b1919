import json
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from bankside.celery import app
from core.tests.threads import run_together
from notifications.models import Event
from notifications.tests.factories import event_payload
from notifications.tests.problems import assert_problem
from portal.models import AuditEvent, IdempotencyRecord
from portal.tasks import purge_expired_api_records

EVENTS = "/api/v1/events"


def post(api, body, key="key-1", **extra):
    return api.post(EVENTS, body, format="json", HTTP_IDEMPOTENCY_KEY=key, **extra)


def batches_audited() -> int:
    return AuditEvent.objects.filter(action="events.ingested").count()


@pytest.mark.django_db
def test_a_retry_with_the_same_key_replays_the_first_response(api, card):
    body = {"events": [event_payload(account=card), event_payload(account=card)]}
    first = post(api, body)

    again = post(api, body)

    assert again.status_code == first.status_code == 202
    assert again.json() == first.json()
    assert [r["status"] for r in again.json()["results"]] == ["accepted", "accepted"]
    assert again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert batches_audited() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_is_a_422_problem(api, card):
    post(api, event_payload(account=card))

    response = post(api, event_payload(account=card))

    body = assert_problem(response, 422)
    assert body["code"] == "idempotency_key_reused"
    assert Event.objects.count() == 1


@pytest.mark.django_db
def test_key_order_and_spacing_do_not_change_the_fingerprint(api, card):
    payload = event_payload(account=card)
    post(api, payload)
    reordered = dict(reversed(list(payload.items())))

    response = api.post(
        EVENTS,
        json.dumps(reordered, indent=2),
        content_type="application/json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )

    assert response.status_code == 202
    assert response["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_a_key_is_per_endpoint_and_per_bank(api, card):
    post(api, event_payload(account=card))

    response = api.put(
        "/api/v1/customers/cu-new",
        {"name": "New", "accounts": []},
        format="json",
        HTTP_IDEMPOTENCY_KEY="key-1",
    )

    assert response.status_code == 201


@pytest.mark.django_db
def test_a_refused_request_is_replayed_too(api, card):
    first = post(api, {"events": []})

    again = post(api, {"events": []})

    assert_problem(first, 400)
    assert again.content == first.content
    assert again["Idempotent-Replayed"] == "true"


@pytest.mark.django_db
def test_an_unauthenticated_answer_is_not_kept(api, issued, card):
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer bsk_{issued.api_key.prefix}_wrong")
    assert_problem(post(stranger, event_payload(account=card)), 401)

    assert not IdempotencyRecord.objects.exists()


@pytest.mark.django_db
def test_an_invalid_key_is_a_400_problem(api, card):
    body = assert_problem(post(api, event_payload(account=card), key="x" * 256), 400)

    assert body["errors"][0]["path"] == "Idempotency-Key"
    assert not Event.objects.exists()


@pytest.mark.django_db
def test_an_expired_key_runs_the_request_again(api, card):
    payload = event_payload(account=card)
    post(api, payload)
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    again = post(api, payload)

    assert again.json()["results"][0]["status"] == "duplicate"
    assert "Idempotent-Replayed" not in again


@pytest.mark.django_db
def test_the_beat_task_purges_expired_records(api, card):
    post(api, event_payload(account=card), key="old")
    post(api, event_payload(account=card), key="fresh")
    IdempotencyRecord.objects.filter(key="old").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    purge_expired_api_records()

    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["fresh"]


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_write_once(issued, card):
    body = {"events": [event_payload(account=card) for _ in range(300)]}
    responses = []

    def call(_):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
        responses.append(post(client, body, key="same"))

    assert run_together(call, range(3)) == []
    assert [r.status_code for r in responses] == [202, 202, 202]
    assert all(r.json() == responses[0].json() for r in responses)
    assert sum("Idempotent-Replayed" in r for r in responses) == 2
    assert {r["status"] for r in responses[0].json()["results"]} == {"accepted"}
    assert Event.objects.count() == 300
    assert batches_audited() == 1


def test_the_purge_is_scheduled_on_beat(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["purge-expired-api-records"]

    assert entry["task"] == purge_expired_api_records.name
    assert entry["task"] in app.tasks
