"""`Idempotency-Key` for the writes of `/api/v1/`: a retry replays the first response.

A view opts in by listing methods in `idempotent_methods`; it needs no import from here.
The records are kept by the owner of the API keys (`core.api.keys`).
"""

import hashlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from rest_framework import exceptions
from rest_framework.request import Request

from core.api.keys import IdempotencyKeyReusedError, api_keys
from core.api.parsers import raw_body
from core.api.problems import invalid

if TYPE_CHECKING:
    from rest_framework.views import APIView

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")
# Answers that depend on the moment rather than on the request are not kept: a retry of a
# request refused for its credentials or its rate deserves a fresh look.
_NOT_KEPT = {401, 403, 409, 429}


class IdempotencyKeyReused(exceptions.APIException):
    status_code = 422
    default_detail = (
        "This Idempotency-Key was first used with a different request body; use a new key "
        "for a new request."
    )
    default_code = "idempotency_key_reused"


def fingerprint(body: bytes) -> str:
    """SHA-256 of the body, of its canonical JSON when it is JSON (key order, spacing)."""
    try:
        canonical = json.dumps(
            json.loads(body), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, UnicodeDecodeError, RecursionError):
        canonical = body
    return hashlib.sha256(canonical).hexdigest()


class IdempotencyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self,
        request: HttpRequest,
        view_func: Callable[..., Any],
        view_args: tuple[Any, ...],
        view_kwargs: dict[str, Any],
    ) -> HttpResponseBase | None:
        view_class = getattr(view_func, "cls", None)
        key = request.headers.get(HEADER)
        if key is None or request.method not in getattr(view_class, "idempotent_methods", ()):
            return None
        # A view that lists idempotent methods is a class-based one.
        view = view_class(**getattr(view_func, "initkwargs", {}))  # type: ignore[misc]
        view.setup(request, *view_args, **view_kwargs)
        return _dispatch(view, request, key, view_args, view_kwargs)


def _dispatch(
    view: "APIView",
    http_request: HttpRequest,
    key: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> HttpResponseBase:
    """DRF's `APIView.dispatch`, with the key claimed between the gate and the handler.

    The gate (authentication, signature, permissions, rate limit) runs first, exactly as
    for any request. The claim, the handler's writes and the stored response then share
    one transaction: either the write and its record commit together or neither does.
    """
    view.args, view.kwargs = args, kwargs
    request = view.initialize_request(http_request, *args, **kwargs)
    view.request = request
    view.headers = view.default_response_headers
    try:
        view.initial(request, *args, **kwargs)
        if not _KEY.fullmatch(key):
            raise invalid(
                [{"path": HEADER, "reason": "must be 1 to 255 printable ASCII characters"}]
            )
        digest = fingerprint(raw_body(request))
        keys = api_keys()
        with transaction.atomic():
            try:
                record, claimed = keys.idempotency_claim(
                    tenant=request.user.bank,  # type: ignore[union-attr]  # an API principal
                    key=key,
                    endpoint=f"{request.method} {request.path}",
                    fingerprint=digest,
                )
            except IdempotencyKeyReusedError:
                raise IdempotencyKeyReused() from None
            if not claimed:
                replay = HttpResponse(
                    record.body, status=record.status_code, content_type=record.content_type
                )
                replay[REPLAYED_HEADER] = "true"
                return replay
            response = view.finalize_response(
                request, _handle(view, request, args, kwargs), *args, **kwargs
            )
            response.render()
            if response.status_code >= 500 or response.status_code in _NOT_KEPT:
                transaction.set_rollback(True)
            else:
                keys.idempotency_complete(
                    record=record,
                    status_code=response.status_code,
                    content_type=response["Content-Type"],
                    body=response.content.decode(),
                )
            return response
    except Exception as exc:  # noqa: BLE001  (as APIView.dispatch does)
        response = view.handle_exception(exc)
    return view.finalize_response(request, response, *args, **kwargs)


def _handle(
    view: "APIView", request: Request, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Any:
    """The handler in a savepoint: a refused request undoes its writes but keeps the claim."""
    try:
        with transaction.atomic():
            return getattr(view, request.method.lower())(request, *args, **kwargs)  # type: ignore[union-attr]
    except Exception as exc:  # noqa: BLE001  (as APIView.dispatch does)
        return view.handle_exception(exc)
