"""The API keys' signing settings, rate limits and stored responses moved from
notifications to the portal: a database migrated by the old code keeps every row."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tests.migrations import migrate_to_latest, schema_at

BEFORE = [
    ("portal", "0014_one_bank_per_page"),
    ("notifications", "0008_people_are_per_bank"),
]

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def before_the_move():
    """The schema as notifications held the models; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_rows_written_before_the_move_read_back_through_the_portal(before_the_move):
    apps = before_the_move
    expires = timezone.now() + timedelta(hours=24)
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    key = apps.get_model("portal", "ApiKey").objects.create(
        bank=bank, name="Core banking", prefix="0123456789ab", secret_hash="0" * 64
    )
    apps.get_model("notifications", "IdempotencyRecord").objects.create(
        bank=bank,
        key="retry-1",
        endpoint="POST /api/v1/events",
        fingerprint="f" * 64,
        status_code=202,
        content_type="application/json",
        body='{"accepted": 1}',
        expires_at=expires,
    )
    apps.get_model("notifications", "ApiSigning").objects.create(
        bank=bank, secret="whsec_c2VjcmV0", required=True
    )
    apps.get_model("notifications", "SignedRequestId").objects.create(bank=bank, webhook_id="msg_1")
    apps.get_model("notifications", "ApiKeyRateLimit").objects.create(
        api_key=key, per_second=2.5, burst=7
    )

    migrate_to_latest()

    from portal.models import ApiKeyRateLimit, ApiSigning, IdempotencyRecord, SignedRequestId

    record = IdempotencyRecord.objects.get()
    assert (record.bank.slug, record.key, record.endpoint, record.fingerprint) == (
        "harbour",
        "retry-1",
        "POST /api/v1/events",
        "f" * 64,
    )
    assert (record.status_code, record.content_type, record.body) == (
        202,
        "application/json",
        '{"accepted": 1}',
    )
    assert record.expires_at == expires
    signing = ApiSigning.objects.get()
    assert (signing.bank.slug, signing.secret, signing.required) == (
        "harbour",
        "whsec_c2VjcmV0",
        True,
    )
    assert list(SignedRequestId.objects.values_list("bank__slug", "webhook_id")) == [
        ("harbour", "msg_1")
    ]
    limit = ApiKeyRateLimit.objects.get()
    assert (limit.api_key.prefix, limit.per_second, limit.burst) == ("0123456789ab", 2.5, 7)
