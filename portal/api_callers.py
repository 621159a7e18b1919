"""The API keys the portal lends the API platform (`core.api.keys`): the reads it makes
for every request, the records it keeps, and the kept callers it forgets on a change."""

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.models.signals import post_delete, post_save

from core.api.auth import kept_callers
from core.api.keys import ApiCaller
from core.db.rows import read_converter, statement_execute
from portal.models import ApiKey, ApiKeyRateLimit, ApiSigning, Bank
from portal.services.api_keys import api_key_parse, api_key_verify
from portal.services.api_records import (
    idempotency_claim,
    idempotency_complete,
    signed_request_id_claim,
)


class PortalApiKeys:
    """`core.api.keys.ApiKeys` over the portal's models; registered by `PortalConfig`."""

    def parse(self, presented: str) -> tuple[str, str] | None:
        return api_key_parse(presented)

    def caller(self, prefix: str) -> ApiCaller | None:
        return api_caller_get(prefix=prefix)

    def verify(self, api_key: ApiKey, secret: str) -> bool:
        return api_key_verify(api_key=api_key, secret=secret) is not None

    def rate_limit(self, api_key: ApiKey) -> tuple[float, int]:
        return rate_limit_for(api_key)

    def signing_required(self, tenant: Bank) -> bool:
        table = connection.ops.quote_name(ApiSigning._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT required FROM {table} WHERE bank_id = %s", [tenant.pk])  # noqa: S608
            found = cursor.fetchone()
        return found is not None and bool(found[0])

    def signing_secret(self, tenant: Bank) -> str:
        signing = ApiSigning.objects.filter(bank=tenant).first()
        return "" if signing is None else signing.secret

    def signed_request_id_claim(self, tenant: Bank, webhook_id: str) -> bool:
        return signed_request_id_claim(bank=tenant, webhook_id=webhook_id)

    def idempotency_claim(self, *, tenant: Bank, key: str, endpoint: str, fingerprint: str):
        return idempotency_claim(bank=tenant, key=key, endpoint=endpoint, fingerprint=fingerprint)

    def idempotency_complete(self, *, record, status_code: int, content_type: str, body: str):
        idempotency_complete(
            record=record, status_code=status_code, content_type=content_type, body=body
        )


def forget_kept_api_callers(sender, **kwargs) -> None:
    """A key, its bank, the bank's signing or the key's rate limit changed: the callers
    this process keeps are read again (`core.api.auth.KeptCallers`)."""
    kept_callers.forget()


def kept_callers_forgotten_on_change() -> None:
    for model in (ApiKey, Bank, ApiSigning, ApiKeyRateLimit):
        post_save.connect(forget_kept_api_callers, sender=model)
        post_delete.connect(forget_kept_api_callers, sender=model)


def rate_limit_for(api_key: ApiKey) -> tuple[float, int]:
    """(requests per second, burst) for a key: its own override, or the default."""
    override = (
        ApiKeyRateLimit.objects.filter(api_key=api_key).values_list("per_second", "burst").first()
    )
    if override is not None:
        return override
    return settings.API_RATE_LIMIT_PER_SECOND, settings.API_RATE_LIMIT_BURST


def api_caller_get(*, prefix: str) -> ApiCaller | None:
    """The key with `prefix`, revoked or not, its bank and their settings, in one query.

    Plain SQL: it runs for every API request with a key the process has not read lately
    (`core.api.auth.KeptCallers`), and building it with the ORM cost more than
    running it.
    """
    db = connections[DEFAULT_DB_ALIAS]
    with db.cursor() as cursor:
        statement_execute(cursor, _api_caller_sql(db.vendor), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key_columns = len(ApiKey._meta.concrete_fields)
    api_key = _from_db(db, ApiKey, row[:key_columns])
    bank = _from_db(db, Bank, row[key_columns:-3])
    ApiKey._meta.get_field("bank").set_cached_value(api_key, bank)
    required, per_second, burst = row[-3:]
    if per_second is None:
        per_second, burst = settings.API_RATE_LIMIT_PER_SECOND, settings.API_RATE_LIMIT_BURST
    return ApiCaller(
        api_key,
        signing_required=bool(required),
        rate_limit=(per_second, burst),
    )


@cache
def _api_caller_sql(vendor: str) -> str:
    """The query of `api_caller_get`, built once per database backend."""
    quote = connections[DEFAULT_DB_ALIAS].ops.quote_name
    columns = [f"k.{quote(f.column)}" for f in ApiKey._meta.concrete_fields]
    columns += [f"b.{quote(f.column)}" for f in Bank._meta.concrete_fields]
    return (
        f"SELECT {', '.join(columns)}, s.required, r.per_second, r.burst "  # noqa: S608
        f"FROM {quote(ApiKey._meta.db_table)} k "
        f"JOIN {quote(Bank._meta.db_table)} b ON b.id = k.bank_id "
        f"LEFT JOIN {quote(ApiSigning._meta.db_table)} s ON s.bank_id = k.bank_id "
        f"LEFT JOIN {quote(ApiKeyRateLimit._meta.db_table)} r ON r.api_key_id = k.id "
        f"WHERE k.prefix = %s"
    )


def _from_db(db, model: type[models.Model], values) -> models.Model:
    """An instance of `model` from the values of all its columns, as a queryset makes it:
    with the backend's and the field's converters applied."""
    fields, values = model._meta.concrete_fields, list(values)
    for index, convert in _column_converters(db.vendor, model):
        values[index] = convert(values[index])
    return model.from_db(db.alias, [f.attname for f in fields], values)


@cache
def _column_converters(vendor: str, model: type[models.Model]) -> tuple[tuple[int, Callable], ...]:
    """The positions of `model`'s columns that the backend or the field convert on
    reading, each with its converter (`read_converter`), made once."""
    found = ((n, read_converter(field)) for n, field in enumerate(model._meta.concrete_fields))
    return tuple((n, convert) for n, convert in found if convert is not None)
