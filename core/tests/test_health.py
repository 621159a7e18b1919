import pytest

pytestmark = pytest.mark.django_db


def test_ready_reports_database_and_broker_ok(client):
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_ready_is_503_and_names_the_broker_when_redis_is_down(client, settings):
    from bankside.celery import app

    app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/health/ready")
    finally:
        app.conf.broker_url = settings.CELERY_BROKER_URL

    assert response.status_code == 503
    assert response.json()["checks"] == {"database": "ok", "broker": "failing"}


def test_home_page_shows_the_worker_status(client):
    from portal.services import worker_heartbeat_record

    assert "no heartbeat yet" in client.get("/").content.decode()

    worker_heartbeat_record(hostname="celery@test")

    assert "running" in client.get("/").content.decode()
