"""OpenAPI descriptions drf-spectacular cannot infer on its own."""

from typing import Any

from drf_spectacular.openapi import AutoSchema

from core.api.problems import API_PREFIX, PROBLEM, PROBLEM_CONTENT_TYPE
from core.api.scopes import ANY_KEY, required_scope


class ApiAutoSchema(AutoSchema):
    """drf-spectacular's schema, where an input serializer that refuses unknown fields
    (`refuses_unknown_fields`) says so with `additionalProperties: false`, and each
    operation names the API-key scope it needs (`x-required-scope`, and in words)."""

    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> Any:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        scope = required_scope(self.view, method)
        if operation is None or scope is None:
            return operation
        said = (
            f"Needs an API key with the `{scope}` scope."
            if scope != ANY_KEY
            else "Any valid API key may call this, whatever its scopes."
        )
        operation["description"] = f"{operation.get('description', '')}\n\n{said}".strip()
        operation["x-required-scope"] = scope or None
        return operation

    def _map_basic_serializer(self, serializer: Any, direction: str) -> Any:
        schema = super()._map_basic_serializer(serializer, direction)  # type: ignore[no-untyped-call]  # unannotated upstream
        if direction == "request" and getattr(serializer, "refuses_unknown_fields", False):
            schema["additionalProperties"] = False
        return schema


PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# What each refusal means, for operations whose view says nothing more precise.
REFUSALS = {
    400: "The request is not valid: `errors` lists every problem, with where and why.",
    401: "No API key, an unknown, expired or revoked one, or a missing or bad request "
    "signature where the bank requires signed requests.",
    403: "The API key lacks the scope this operation needs (`insufficient_scope`), or the "
    "request came from an address outside the key's allow-list (`address_not_allowed`).",
    404: "Nothing here has this id.",
    406: "`Accept` names no type this API answers with: it answers JSON "
    "(`application/json`, and `application/problem+json` for problems).",
    413: "The request body is larger than this API accepts.",
    415: "The request body is not `application/json`.",
    422: "This `Idempotency-Key` was first used with a different request body.",
    429: "This API key's rate limit is reached: retry after `Retry-After` seconds.",
}
# Refusals any request can meet: its key (unknown, expired, revoked; its scopes and allowed
# addresses), its `Accept`, its size (a signed request's body is read to check the
# signature, whatever the method) and its rate.
EVERY_REQUEST = (401, 403, 406, 413, 429)
WITH_A_BODY = (400, 415)
WITH_AN_IDEMPOTENCY_KEY = (400, 422)
HEADERS = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "required": True,
            "description": 'The scheme to authenticate with: `Bearer realm="bankside"`.',
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "required": True,
            "description": "Seconds to wait before this key may call again.",
        }
    },
}


def problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Every 4xx answer of `/api/v1/` is a problem document, and documented as one.

    Each operation lists the refusals any request can meet, and those of a body or an
    `Idempotency-Key` where it takes one, besides its own (a 404 for an unknown id), each
    with the `Problem` schema as `application/problem+json`; a 401 and a 429 with the
    headers that come with them. A generated client then has a type for every error.
    """
    if "Problem" not in result.get("components", {}).get("schemas", {}):
        raise RuntimeError("No view of /api/v1/ names the Problem schema: use PROBLEM.")
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(API_PREFIX):
            continue
        for operation in operations.values():
            statuses = set(EVERY_REQUEST)
            if "requestBody" in operation:
                statuses.update(WITH_A_BODY)
            if any(p.get("name") == "Idempotency-Key" for p in operation.get("parameters", [])):
                statuses.update(WITH_AN_IDEMPOTENCY_KEY)
            responses = operation.setdefault("responses", {})
            statuses.update(int(code) for code in responses if code.startswith("4"))
            for status in statuses:
                declared = responses.get(str(status), {})
                description = declared.get("description")
                if not description or description == PROBLEM.description:
                    description = REFUSALS[status]
                response = {
                    "description": description,
                    "content": {PROBLEM_CONTENT_TYPE: {"schema": PROBLEM_REF}},
                }
                if status in HEADERS:
                    response["headers"] = HEADERS[status]
                responses[str(status)] = response
            operation["responses"] = dict(sorted(responses.items()))
    return result
