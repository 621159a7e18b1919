"""`docs/openapi.yaml` as a bank's integrator reads it: a valid OpenAPI document (by an
independent validator) that says what the API does, so a client generated from it has a
type for every answer, errors included."""

import copy
import re
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from linking.api.tests.test_customers import account as customer_account
from linking.api.validators import is_external_id
from notifications.api.schemas import EXAMPLE_EVENTS

DOCUMENT = Path(settings.BASE_DIR) / "docs" / "openapi.yaml"
METHODS = {"get", "put", "post", "patch", "delete"}
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


def operations(document):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", operation


def request_schema(document, name: str) -> OAS30Validator:
    """A validator of component `name`, its references resolved within the document."""
    return OAS30Validator({"$ref": f"#/components/schemas/{name}", **document})


def test_an_independent_validator_finds_the_document_valid(document):
    validate(document)


def test_the_validator_names_what_is_wrong_in_a_broken_document(document):
    broken = copy.deepcopy(document)
    del broken["paths"]["/api/v1/events"]["post"]["responses"]

    with pytest.raises(OpenAPIValidationError, match="responses"):
        validate(broken)


def test_every_4xx_answer_is_a_problem_document(document):
    for label, operation in operations(document):
        refusals = {code: r for code, r in operation["responses"].items() if code[0] == "4"}
        assert refusals, label
        for code, response in refusals.items():
            assert response.get("content") == PROBLEM, f"{label} {code}"
            assert response["description"], f"{label} {code}"


def test_the_problem_schema_is_rfc_9457_with_the_apis_extensions(document):
    problem = document["components"]["schemas"]["Problem"]

    assert set(problem["required"]) == {"type", "title", "status", "detail", "instance"}
    assert problem["properties"]["status"]["type"] == "integer"
    assert set(problem["properties"]) >= {"code", "errors"}
    error = document["components"]["schemas"]["ProblemError"]
    assert set(error["required"]) == {"path", "reason"}


def test_every_operation_documents_the_refusals_any_request_can_meet(document):
    for label, operation in operations(document):
        responses = operation["responses"]
        assert {"401", "406", "413", "429"} <= set(responses), label
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"], label
        retry_after = responses["429"]["headers"]["Retry-After"]
        assert retry_after["required"] and retry_after["schema"]["type"] == "integer", label
        if "requestBody" in operation:
            assert {"400", "415", "422"} <= set(responses), label


@pytest.mark.parametrize(
    ("path", "name"),
    [("/api/v1/customers/{customer_id}", "customer_id"), ("/api/v1/events/{event_id}", "event_id")],
)
def test_a_path_id_has_the_pattern_the_api_enforces(document, path, name):
    (operation,) = (op for method, op in document["paths"][path].items() if method in METHODS)
    (parameter,) = (p for p in operation["parameters"] if p["name"] == name)
    pattern = parameter["schema"]["pattern"]

    for candidate in ["cu-ana", "a.b:c_d-1", "x" * 64, "x" * 65, "", "cu/ana", "cu ana", "é"]:
        assert (re.search(pattern, candidate) is not None) == is_external_id(candidate), candidate


def test_the_cursor_may_not_be_empty(document):
    (parameter,) = (
        p
        for p in document["paths"]["/api/v1/outcomes"]["get"]["parameters"]
        if p["name"] == "cursor"
    )

    assert parameter["schema"]["minLength"] == 1


def test_every_request_object_refuses_fields_it_does_not_know(document):
    schemas = document["components"]["schemas"]
    inputs = {
        name: schema
        for name, schema in schemas.items()
        if name.endswith("Request") and schema.get("type") == "object"
    }

    assert {"CustomerInputRequest", "EventBatchRequest", "ReceiptItemRequest"} <= set(inputs)
    for name, schema in inputs.items():
        assert schema.get("additionalProperties") is False, name


def test_the_events_body_is_one_event_or_a_batch_and_nothing_else(document):
    events = request_schema(document, "EventsRequestRequest")
    event = EXAMPLE_EVENTS["transaction.posted"]

    assert events.is_valid(event)
    assert events.is_valid({"events": [event, EXAMPLE_EVENTS["fraud.alert"]]})
    assert not events.is_valid({})
    assert not events.is_valid({"events": []})
    assert not events.is_valid({**event, "events": [event]})
    assert not events.is_valid({**event, "note": "hello"})
    assert not events.is_valid({"events": [event], "note": "hello"})


def test_a_customer_body_with_an_unknown_field_is_not_valid(document):
    customer = request_schema(document, "CustomerInputRequest")
    account = customer_account()

    assert customer.is_valid({"name": "Ana", "accounts": [account]})
    assert not customer.is_valid({"name": "Ana", "accounts": [account], "nickname": "A"})
    assert not customer.is_valid({"name": "Ana", "accounts": [{**account, "iban": "PT50"}]})
