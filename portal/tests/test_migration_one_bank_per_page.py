"""The migration that makes a Page one bank's: it keeps every row, and stops on a shared Page."""

import pytest

from core.tests.migrations import migrate_to, schema_at

BEFORE = [("portal", "0013_audit_log_cannot_be_wiped")]
AFTER = [("portal", "0014_one_bank_per_page")]


@pytest.fixture
def before_the_rule(transactional_db):
    """The schema as it was before the rule; put back to the latest whatever happens."""
    with schema_at(BEFORE) as apps:
        yield apps
        apps.get_model("portal", "MessengerIntegration").objects.all().delete()


def integration(apps, slug: str, page_id: str):
    bank = apps.get_model("portal", "Bank").objects.create(name=slug.title(), slug=slug)
    return apps.get_model("portal", "MessengerIntegration").objects.create(
        bank=bank, page_id=page_id, page_access_token="t", app_secret="s", verify_token="v"
    )


def migrate_forward():
    migrate_to(AFTER)


def test_a_page_shared_by_two_banks_stops_the_migration_and_keeps_both(before_the_rule):
    apps = before_the_rule
    integration(apps, "harbour", "5550001111")
    integration(apps, "riverside", "5550001111")
    integration(apps, "lakeside", "6660001111")

    with pytest.raises(RuntimeError, match=r"Page 5550001111: banks harbour, riverside"):
        migrate_forward()

    rows = apps.get_model("portal", "MessengerIntegration").objects.values_list(
        "bank__slug", "page_id"
    )
    assert sorted(rows) == [
        ("harbour", "5550001111"),
        ("lakeside", "6660001111"),
        ("riverside", "5550001111"),
    ]


def test_distinct_pages_and_blank_ones_migrate_untouched(before_the_rule):
    apps = before_the_rule
    integration(apps, "harbour", "5550001111")
    integration(apps, "riverside", "")
    integration(apps, "lakeside", "")

    migrate_forward()

    from portal.models import MessengerIntegration

    assert sorted(MessengerIntegration.objects.values_list("bank__slug", "page_id")) == [
        ("harbour", "5550001111"),
        ("lakeside", ""),
        ("riverside", ""),
    ]
