"""Reading an API request's body: its bytes within the size limit, and JSON that cannot crash
the parser."""

from collections.abc import Mapping
from typing import IO, Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest
from rest_framework import exceptions
from rest_framework.parsers import JSONParser
from rest_framework.request import Request


class PayloadTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is larger than this API accepts."
    default_code = "payload_too_large"


def raw_body(request: Request | HttpRequest) -> bytes:
    """The request's bytes, within Django's `DATA_UPLOAD_MAX_MEMORY_SIZE` (else a 413)."""
    try:
        return request._request.body if hasattr(request, "_request") else request.body
    except RequestDataTooBig as exc:
        raise PayloadTooLarge(
            f"The request body is larger than {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes."
        ) from exc


class JSONBodyParser(JSONParser):
    """DRF's JSON parser, with absurdly nested JSON a 400 problem rather than a crash."""

    def parse(
        self,
        stream: IO[Any],
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply.") from None
