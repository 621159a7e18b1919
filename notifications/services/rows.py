"""Plain multi-row INSERTs for the rows delivery writes per message.

Delivery appends three rows per message sent (its attempt, its audit entry and its
outcome). Django's `bulk_create` spends more time preparing those values in Python than
the database spends storing them; this writes the same rows in one statement per 500,
converting each column once by its field type.
"""

import json
from collections.abc import Callable, Iterable, Sequence

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models

CHUNK = 500


def _converter(field: models.Field) -> Callable:
    if isinstance(field, models.JSONField):
        return lambda value: json.dumps(value, cls=DjangoJSONEncoder)
    if isinstance(field, models.DateTimeField):
        return lambda value: (
            None if value is None else connection.ops.adapt_datetimefield_value(value)
        )
    if isinstance(field, models.ForeignKey):
        return lambda value: value
    if isinstance(field, models.GenericIPAddressField):
        return lambda value: value or None
    return lambda value: value


def instances_insert(model: type[models.Model], names: Sequence[str], objs: Iterable) -> None:
    """INSERT `objs` (model instances, unsaved) setting only the fields in `names`."""
    fields = [model._meta.get_field(name) for name in names]
    converters = [_converter(field) for field in fields]
    attnames = [field.attname for field in fields]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(field.column) for field in fields)
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    pending = list(objs)
    with connection.cursor() as cursor:
        for start in range(0, len(pending), CHUNK):
            chunk = pending[start : start + CHUNK]
            params = [
                convert(getattr(obj, attname))
                for obj in chunk
                for convert, attname in zip(converters, attnames, strict=True)
            ]
            cursor.execute(
                f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "  # noqa: S608
                f"VALUES {', '.join([row] * len(chunk))}",
                params,
            )
