"""Pieces every view of the core-banking API shares: the caller as an audit actor, and
invalid input as RFC 9457 `errors` of `{path, reason}`."""

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.utils import OpenApiParameter
from rest_framework import exceptions, serializers

from linking.api.validators import EXTERNAL_ID, EXTERNAL_ID_RULE, field_name
from portal.audit import Actor

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "pattern": r"^[\x21-\x7e]{1,255}$", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Makes a retry safe: for 24 hours the same key with the same body answers the first "
        "response again (with `Idempotent-Replayed: true`); with another body, 422."
    ),
)


def external_id_parameter(name: str, description: str) -> OpenApiParameter:
    """A path parameter holding one of the bank's ids, with the rule the API enforces."""
    return OpenApiParameter(
        name,
        {
            "type": "string",
            "pattern": f"^{EXTERNAL_ID.pattern}$",
            "minLength": 1,
            "maxLength": 64,
        },
        OpenApiParameter.PATH,
        description=f"{description} It {EXTERNAL_ID_RULE.replace('must be', 'is')}.",
    )


# An input object that refuses fields it does not know, as the events API does: a misspelt
# optional field (`locael`) is an error the integrator sees, not a default silently applied.
# The schema says so (`additionalProperties: false`). A comment, not a docstring: the schema
# would give it as the description of every input object.
class StrictInputSerializer(serializers.Serializer):
    refuses_unknown_fields = True  # read by the schema generator

    def to_internal_value(self, data):
        unknown: dict[str, list[str]] = {}
        if isinstance(data, Mapping):
            for key in data:
                if key not in self.fields:
                    name = field_name(key)
                    if name == "*":
                        unknown["non_field_errors"] = ["has a field whose name is not allowed"]
                    else:
                        unknown[name] = ["is not a known field"]
        try:
            value = super().to_internal_value(data)
        except exceptions.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                raise exceptions.ValidationError({**exc.detail, **unknown}) from None
            raise
        if unknown:
            raise exceptions.ValidationError(unknown)
        return value


class TextField(serializers.CharField):
    """A string, and only a string: DRF's `CharField` would take `42` as `"42"`."""

    default_error_messages = {"not_a_string": "must be a string"}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


class TextRegexField(serializers.RegexField, TextField):
    pass


class DecimalTextField(serializers.DecimalField):
    """An amount as a decimal string, as the events API takes them: a JSON number
    (`1204.5`) may already have lost digits in the sender's floats. Written plainly, as
    the schema's pattern says: no exponent, no `+`, no spaces around it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        whole = self.max_digits - self.decimal_places
        self.plain = re.compile(rf"-?[0-9]{{1,{whole}}}(?:\.[0-9]{{1,{self.decimal_places}}})?")
        self.error_messages["not_plain"] = (
            f'must be a decimal string such as "1204.50": an optional minus sign, at most '
            f"{whole} digits before the point and {self.decimal_places} after"
        )

    def to_internal_value(self, data):
        if not isinstance(data, str) or not self.plain.fullmatch(data):
            self.fail("not_plain")
        return super().to_internal_value(data)


class DecimalTextFieldSchema(OpenApiSerializerFieldExtension):
    target_class = DecimalTextField

    def map_serializer_field(self, auto_schema, direction):
        return {"type": "string", "format": "decimal", "pattern": f"^{self.target.plain.pattern}$"}


def api_actor(principal) -> Actor:
    """The audit actor of an API call: the key, never the bank's staff."""
    return Actor("api_key", str(principal.api_key.pk), principal.api_key.name)


def serializer_errors(errors: Any, path: str = "") -> list[dict[str, str]]:
    """DRF's nested `serializer.errors` as a flat list: `accounts[1].kind` -> reason."""
    flat: list[dict[str, str]] = []
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            if key == "non_field_errors":
                flat += serializer_errors(value, path)
            elif isinstance(key, int):  # a list's items, as DRF reports them
                flat += serializer_errors(value, f"{path}[{key}]")
            else:
                flat += serializer_errors(value, f"{path}.{key}" if path else str(key))
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        flat += [{"path": path, "reason": _reason(message)} for message in errors]
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            if value:
                flat += serializer_errors(value, f"{path}[{index}]")
    else:
        flat.append({"path": path, "reason": _reason(str(errors))})
    return flat


def django_errors(exc: DjangoValidationError) -> list[dict[str, str]]:
    if hasattr(exc, "error_dict"):
        return [
            {"path": field if field != "__all__" else "", "reason": _reason(message)}
            for field, messages in exc.message_dict.items()
            for message in messages
        ]
    return [{"path": "", "reason": _reason(message)} for message in exc.messages]


def _reason(message: str) -> str:
    """Reasons read as the end of a sentence about the field: `name: this field is required`."""
    message = str(message).rstrip(".")
    return message[:1].lower() + message[1:]
