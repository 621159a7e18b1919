"""The migration that keeps unlinks as rows: links that ended untold get theirs, no other."""

import pytest
from django.utils import timezone

from core.tests.migrations import migrate_to, schema_at

BEFORE = [("linking", "0006_people_are_per_bank")]
AFTER = [("linking", "0007_platform_unlink")]


@pytest.fixture
def before_the_rows(transactional_db):
    """The schema as it was before; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_links_that_ended_untold_get_a_pending_unlink(before_the_rows):
    apps = before_the_rows
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    customer = apps.get_model("linking", "Customer").objects.create(
        bank=bank, external_id="cu-1", name="Ana"
    )
    Consent = apps.get_model("linking", "Consent")

    def consent(status, psid, told=None):
        return Consent.objects.create(
            bank=bank,
            customer=customer,
            status=status,
            purpose="updates",
            duration_days=90,
            page_id="1122334455",
            psid=psid,
            platform_unlinked_at=told,
        ).pk

    untold = [consent("revoked", "71"), consent("expired", "72")]
    consent("revoked", "73", told=timezone.now())
    consent("revoked", "")  # erased, or never bound
    consent("authorised", "74")

    migrate_to(AFTER)

    from linking.models import PlatformUnlink

    rows = PlatformUnlink.objects.order_by("consent_id")
    assert [(r.consent_id, r.state, r.bank_id) for r in rows] == [
        (pk, "pending", bank.pk) for pk in untold
    ]
