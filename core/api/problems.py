"""Errors of `/api/v1/` as `application/problem+json` (RFC 9457)."""

from http import HTTPStatus
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
API_PREFIX = "/api/v1/"


class ProblemErrorSerializer(serializers.Serializer[Any]):
    path = serializers.CharField(
        allow_blank=True,
        help_text="Where: a field such as `accounts[0].kind`, a parameter such as `cursor`, "
        "or empty for the body as a whole.",
    )
    reason = serializers.CharField(help_text="What is wrong there; never repeats the value.")


class ProblemSerializer(serializers.Serializer[Any]):
    """The body of every 4xx answer of `/api/v1/`: an RFC 9457 problem document."""

    type = serializers.CharField(
        help_text="`about:blank`: the status alone says what kind of problem this is."
    )
    title = serializers.CharField(help_text="The HTTP status phrase, e.g. `Bad Request`.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong with this request, in words.")
    instance = serializers.CharField(
        help_text="This occurrence: `urn:bankside:request:` and the request's id, also sent "
        "as `X-Request-ID`. Quote it when asking about the request."
    )
    code = serializers.CharField(
        required=False, help_text="The problem's name for programs, e.g. `not_authenticated`."
    )
    errors = ProblemErrorSerializer(  # type: ignore[assignment]  # a field, not Serializer.errors
        many=True,
        required=False,
        help_text="With `code` `invalid`: every problem found in the request, at once.",
    )


PROBLEM = OpenApiResponse(
    response=ProblemSerializer,
    description="A problem document (RFC 9457), `application/problem+json`.",
)


def problem(description: str) -> OpenApiResponse:
    """A refusal documented with what it means for this operation."""
    return OpenApiResponse(response=ProblemSerializer, description=description)


def invalid(errors: list[dict[str, str]]) -> exceptions.ValidationError:
    """A 400 problem whose `errors` are `[{path, reason}]`; raise it."""
    return exceptions.ValidationError([{"path": e["path"], "reason": e["reason"]} for e in errors])


def problem_instance(request: HttpRequest | Request) -> str:
    return f"urn:bankside:request:{getattr(request, 'request_id', '')}"


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handling (status, headers such as WWW-Authenticate), reshaped as a problem.

    `type` is `about:blank`, so `title` is the HTTP status phrase; `code` names the
    error for programs and `errors` carries field errors of invalid input.
    """
    response = exception_handler(exc, context)
    if response is None:
        return None
    status = response.status_code
    data = response.data
    problem = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": "",
        "instance": problem_instance(context["request"]),
    }
    codes = exc.get_codes() if hasattr(exc, "get_codes") else None
    if isinstance(data, dict) and set(data) == {"detail"}:
        problem["detail"] = str(data["detail"])
        if isinstance(codes, dict):
            codes = codes.get("detail")
        if isinstance(codes, str):
            problem["code"] = codes
    else:
        problem["detail"] = "The request is not valid: see `errors`."
        problem["code"] = "invalid"
        problem["errors"] = data
    return Response(
        problem,
        status=status,
        headers={k: v for k, v in response.items() if k.lower() != "content-type"},
        content_type=PROBLEM_CONTENT_TYPE,
    )


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's 404 page, except under `/api/v1/`, where a path that names nothing is a
    problem document like every other refusal of the API."""
    if not request.path.startswith(API_PREFIX):
        return defaults.page_not_found(request, exception)
    return JsonResponse(
        {
            "type": "about:blank",
            "title": HTTPStatus.NOT_FOUND.phrase,
            "status": 404,
            "detail": "There is no such resource in this API: see /api/v1/schema/.",
            "instance": problem_instance(request),
            "code": "not_found",
        },
        status=404,
        content_type=PROBLEM_CONTENT_TYPE,
    )
