"""The core-banking API against its committed OpenAPI document, with generated requests.

Schemathesis reads `docs/openapi.yaml`, the document integrators generate clients from,
and sends generated requests, valid and invalid, to every operation of the Django app
(through WSGI) with a real API key. No answer may be a 5xx or stray from the document:
its status codes, content types, headers and bodies (every 4xx a problem document);
leaving out the key must be refused, a method the document does not list must be a 405
naming the ones it does, and a request the document calls invalid must be refused.

One check is left out, and one narrowed, because the document states the request's shape
and the API checks more than a shape can say:
- `positive_data_acceptance`: a request of the right shape may still be refused with a
  400, such as a card number as a customer's name or `XYZ` as a currency;
- `negative_data_rejection` for the body of `POST /api/v1/events`: each event of a post is
  answered on its own (202, `rejected` with its reasons) however wrong it is, so one bad
  event never costs the good ones of its batch. With a valid body, an invalid
  `Idempotency-Key` is still checked.

Each request runs in a transaction rolled back afterwards, so no example sees another's
customers, events or idempotency keys.
"""

from pathlib import Path

import pytest
import schemathesis
from django.conf import settings as django_settings
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections, transaction
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from schemathesis.core.parameters import ParameterLocation

from linking.tests.factories import AccountFactory
from portal.audit import Actor
from portal.services import api_key_create

DOCUMENT = Path(django_settings.BASE_DIR) / "docs" / "openapi.yaml"
EVENTS_INGEST = "POST /api/v1/events"

schema = schemathesis.openapi.from_path(DOCUMENT)
schema.app = get_wsgi_application()


@pytest.fixture
def api_key(db, settings):
    # Django's test client keeps the test's database connection open across requests;
    # calls through the WSGI app must do the same, or the first request closes it.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    settings.API_RATE_LIMIT_PER_SECOND = 100_000.0
    settings.API_RATE_LIMIT_BURST = 100_000
    account = AccountFactory(customer__external_id="cu-1", external_id="acc-1")
    issued = api_key_create(actor=Actor.system("contract test"), bank=account.bank, name="core")
    yield issued.secret
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


def _an_events_body_is_invalid(case) -> bool:
    if case.operation.label != EVENTS_INGEST or case.meta is None:
        return False
    body = case.meta.components.get(ParameterLocation.BODY)
    return body is not None and body.mode.is_negative


@schema.parametrize()
@hypothesis_settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_keeps_to_its_committed_document(case, api_key):
    excluded = [positive_data_acceptance]
    if _an_events_body_is_invalid(case):
        excluded.append(negative_data_rejection)
    with transaction.atomic():
        case.call_and_validate(
            headers={"Authorization": f"Bearer {api_key}"}, excluded_checks=excluded
        )
        transaction.set_rollback(True)
