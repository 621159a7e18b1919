import pytest
from rest_framework.test import APIClient

from notifications.models import Event


@pytest.mark.django_db
def test_the_openapi_schema_documents_every_event_type_with_an_example():
    schema = APIClient().get("/api/v1/schema/", {"format": "json"}).json()

    request = schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]
    mapping = schema["components"]["schemas"]["EventRequest"]["discriminator"]["mapping"]
    examples = [e["value"] for e in request["application/json"]["examples"].values()]
    assert set(mapping) == set(Event.Type.values)
    assert {e["type"] for e in examples if "type" in e} == set(Event.Type.values)
    assert list(request) == ["application/json"]
