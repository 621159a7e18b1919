import difflib
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
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


def test_the_committed_schema_is_the_one_the_code_describes(tmp_path):
    committed = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"
    generated = tmp_path / "openapi.yaml"

    call_command("spectacular", "--validate", "--file", str(generated))

    diff = "".join(
        difflib.unified_diff(
            committed.read_text().splitlines(keepends=True),
            generated.read_text().splitlines(keepends=True),
            "docs/openapi.yaml (committed)",
            "docs/openapi.yaml (from the code)",
        )
    )
    assert not diff, f"The API's schema changed; regenerate it with `make schema`.\n{diff}"
