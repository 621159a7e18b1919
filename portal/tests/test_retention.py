"""Retention: the per-bank setting, its validation and audit, and the daily purge run."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from portal import retention, services
from portal.audit import Actor
from portal.models import AuditEvent, RetentionPolicy, StaffMembership
from portal.retention import months_before, register_purger, unregister_purger
from portal.selectors import audit_chains_verify
from portal.tasks import purge_retained_data
from portal.tests.factories import BankFactory, StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


@pytest.fixture
def bank():
    return BankFactory(slug="harbour", name="Harbour Bank")


def page(bank):
    return reverse("portal:retention", kwargs={"bank": bank.slug})


@pytest.fixture
def recorded():
    """A purger that records what it was asked, registered for the test only."""
    calls = []

    def purge(bank, cutoff):
        calls.append((bank.slug, cutoff))
        return 3

    register_purger("test.recorder", purge)
    yield calls
    unregister_purger("test.recorder")


def test_a_bank_keeps_thirteen_months_by_default(bank, sign_in):
    client = sign_in(StaffMembershipFactory(bank=bank, role=Role.AUDITOR).user)

    html = client.get(page(bank)).content.decode()

    assert retention.retention_months(bank) == 13
    assert "13 months" in html and "Save retention" not in html


def test_an_admin_changes_the_period_and_it_is_audited(bank, sign_in):
    admin = StaffMembershipFactory(bank=bank, role=Role.ADMIN).user

    response = sign_in(admin).post(page(bank), {"months": "24"})

    assert response.status_code == 302
    assert RetentionPolicy.objects.get(bank=bank).months == 24
    entry = AuditEvent.objects.get(action="retention.updated")
    assert entry.details == {"months": {"from": 13, "to": 24}}
    assert entry.actor_id == str(admin.pk)


@pytest.mark.parametrize("months", ["0", "121", "twelve", "", "-3"])
def test_a_period_out_of_range_is_refused_with_a_clear_error(bank, sign_in, months):
    client = sign_in(StaffMembershipFactory(bank=bank, role=Role.ADMIN).user)

    response = client.post(page(bank), {"months": months})

    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()
    assert not RetentionPolicy.objects.exists()
    assert not AuditEvent.objects.filter(action="retention.updated").exists()


def test_an_auditor_cannot_change_the_period(bank, sign_in):
    client = sign_in(StaffMembershipFactory(bank=bank, role=Role.AUDITOR).user)

    assert client.post(page(bank), {"months": "1"}).status_code == 403
    assert retention.retention_months(bank) == 13


@pytest.mark.parametrize(
    ("moment", "months", "expected"),
    [
        (datetime(2026, 3, 31, 4, tzinfo=UTC), 1, datetime(2026, 2, 28, 4, tzinfo=UTC)),
        (datetime(2026, 11, 24, tzinfo=UTC), 13, datetime(2025, 10, 24, tzinfo=UTC)),
        (datetime(2028, 2, 29, tzinfo=UTC), 12, datetime(2027, 2, 28, tzinfo=UTC)),
    ],
)
def test_the_cutoff_counts_calendar_months(moment, months, expected):
    assert months_before(moment, months) == expected


def test_the_daily_task_purges_each_bank_at_its_own_cutoff_and_records_it(bank, recorded):
    other = BankFactory(slug="other")
    RetentionPolicy.objects.create(bank=other, months=1)

    purge_retained_data()

    cutoffs = dict(recorded)
    assert set(cutoffs) == {"harbour", "other"}
    assert cutoffs["harbour"] < cutoffs["other"]
    assert (cutoffs["other"] - cutoffs["harbour"]).days >= 360
    for each in (bank, other):
        entry = AuditEvent.objects.get(action="retention.purged", bank=each)
        assert entry.details["rows_changed"]["test.recorder"] == 3
        assert entry.actor_label == "daily retention purge"
        policy = RetentionPolicy.objects.get(bank=each)
        assert policy.last_purged_at is not None
        assert policy.last_purge_counts["test.recorder"] == 3
    assert all(report.intact for report in audit_chains_verify())


def test_a_failing_purger_undoes_that_banks_run_and_the_others_go_on(bank, recorded):
    BankFactory(slug="other")

    def failing(bank, cutoff):
        if bank.slug == "harbour":
            raise RuntimeError("boom")
        return 0

    register_purger("test.failing", failing)
    try:
        results = services.retention_purge_all(actor=Actor.system("test"))
    finally:
        unregister_purger("test.failing")

    assert set(results) == {"other"}
    assert not AuditEvent.objects.filter(action="retention.purged", bank=bank).exists()
    assert not RetentionPolicy.objects.filter(bank=bank, last_purged_at__isnull=False).exists()
