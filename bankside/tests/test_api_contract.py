"""The core-banking API against its own OpenAPI schema, with generated requests.

Schemathesis reads /api/v1/schema/ and sends a bounded number of generated requests to
every operation with a valid API key: no answer may be a 5xx or stray from the schema
(status codes, content types, headers, response bodies), and leaving out the key must be
refused. Whether a well-formed request is also meaningful to the bank (a known customer,
a fresh Idempotency-Key) is the API's own validation, tested elsewhere, so the two checks
that expect every schema-valid request to succeed are left out.
"""

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from linking.tests.factories import AccountFactory
from portal.audit import Actor
from portal.services import api_key_create

schema = schemathesis.openapi.from_wsgi("/api/v1/schema/?format=json", get_wsgi_application())


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


@schema.parametrize()
@hypothesis_settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_the_api_keeps_to_its_schema(case, api_key):
    case.call_and_validate(
        headers={"Authorization": f"Bearer {api_key}"},
        excluded_checks=[positive_data_acceptance, negative_data_rejection],
    )
