import pytest

from portal.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_every_response_carries_a_generated_request_id(client):
    first = client.get("/health/live")
    second = client.get("/health/live")

    assert len(first["X-Request-ID"]) == 32
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_a_well_formed_incoming_request_id_is_kept(client):
    response = client.get("/health/live", headers={"X-Request-ID": "lb-7f3a9c21-0001"})

    assert response["X-Request-ID"] == "lb-7f3a9c21-0001"


@pytest.mark.parametrize(
    "bad", ["short", "has spaces in it", "x" * 65, "<script>alert(1)</script>"]
)
def test_a_malformed_incoming_request_id_is_replaced(client, bad):
    response = client.get("/health/live", headers={"X-Request-ID": bad})

    assert response["X-Request-ID"] != bad
    assert len(response["X-Request-ID"]) == 32


def test_audit_entries_written_during_a_request_carry_its_id_and_address(client, settings):
    from django.urls import path

    from portal.audit import Actor
    from portal.services import audit_record

    def touch(request):
        from django.http import HttpResponse

        audit_record(actor=Actor.system("test"), action="probe.touched", bank=None)
        return HttpResponse("ok")

    urlconf = type("urls", (), {"urlpatterns": [path("touch", touch)]})
    settings.ROOT_URLCONF = urlconf
    settings.TRUSTED_PROXY_COUNT = 1

    response = client.get(
        "/touch",
        headers={"X-Request-ID": "edge-0000abcd", "X-Forwarded-For": "198.51.100.7"},
    )

    event = AuditEvent.objects.get(action="probe.touched")
    assert response["X-Request-ID"] == event.request_id == "edge-0000abcd"
    assert event.source_ip == "198.51.100.7"


def test_forwarded_addresses_are_ignored_without_a_trusted_proxy(rf, settings):
    from core.middleware import client_ip

    settings.TRUSTED_PROXY_COUNT = 0
    request = rf.get("/", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="203.0.113.66")

    assert client_ip(request) == "192.0.2.10"
