"""The migration that makes link messages rows: no rows are invented for the past."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.tests.migrations import migrate_to, migrate_to_latest, schema_at

BEFORE = [("linking", "0007_platform_unlink")]
AFTER = [("linking", "0008_link_messages")]


@pytest.fixture
def before_the_rows(transactional_db):
    """The schema as it was before; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps


def test_consents_marked_reminded_get_no_rows_and_are_not_reminded_again(before_the_rows):
    apps = before_the_rows
    bank = apps.get_model("portal", "Bank").objects.create(name="Harbour", slug="harbour")
    customer = apps.get_model("linking", "Customer").objects.create(
        bank=bank, external_id="cu-1", name="Ana"
    )
    Consent = apps.get_model("linking", "Consent")
    now = timezone.now()

    def consent(psid, reminded=None):
        return Consent.objects.create(
            bank=bank,
            customer=customer,
            status="authorised",
            purpose="updates",
            duration_days=90,
            page_id="1122334455",
            psid=psid,
            linked_at=now - timedelta(days=85),
            expires_at=now + timedelta(days=5),
            expiry_reminded_at=reminded,
        ).pk

    consent("71", reminded=now - timedelta(days=1))  # sent or lost: unknowable
    not_yet = consent("72")

    migrate_to(AFTER)
    # Today's models and services need today's schema; the later migrations invent no
    # rows either.
    migrate_to_latest()

    from linking import services
    from linking.models import LinkMessage

    assert not LinkMessage.objects.exists()
    assert services.consents_remind_expiring() == 1  # new work goes through the rows
    rows = LinkMessage.objects.all()
    assert [(r.consent_id, r.kind, r.state) for r in rows] == [
        (not_yet, "expiry_reminder", "pending")
    ]
