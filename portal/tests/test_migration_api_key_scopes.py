"""The migration that gives API keys scopes, expiry and allow-lists: keys made before it
keep working on every call, with every scope and no expiry."""

import pytest
from rest_framework.test import APIClient

from core.api.scopes import ALL_SCOPES
from core.digests import sha256_hex
from core.tests.migrations import migrate_to, migrate_to_latest, schema_at

BEFORE = [("portal", "0019_staff_idle_timeout_and_recovery_codes")]
AFTER = [("portal", "0020_api_key_scopes_expiry_networks_rolling")]
SECRET = "an-old-key-secret-made-before-scopes"


@pytest.fixture
def before_scopes(transactional_db):
    """The schema as it was before scopes; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_a_key_made_before_scopes_keeps_every_call(before_scopes):
    apps = before_scopes
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    apps.get_model("portal", "ApiKey").objects.create(
        bank=bank, name="Core banking", prefix="0a1b2c3d4e5f", secret_hash=sha256_hex(SECRET)
    )

    migrate_to(AFTER)

    from portal.models import ApiKey

    key = ApiKey.objects.get()
    assert (key.scopes, key.expires_at, key.allowed_networks) == (list(ALL_SCOPES), None, [])
    migrate_to_latest()  # today's code answers the calls: with today's schema
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer bsk_0a1b2c3d4e5f_{SECRET}")
    assert client.get("/api/v1/whoami").status_code == 200
    assert client.get("/api/v1/outcomes").status_code == 200
    assert client.get("/api/v1/events/evt-none").status_code == 404
