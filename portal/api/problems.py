"""Errors of `/api/v1/` as `application/problem+json` (RFC 9457)."""

from http import HTTPStatus

from rest_framework.response import Response
from rest_framework.views import exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"


def problem_exception_handler(exc, context):
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
