import pytest
from django.contrib.auth.models import AnonymousUser

from portal.audit import Actor
from portal.models import AuditEvent, Bank, MessengerIntegration, StaffMembership
from portal.services import audit_record, integration_configure
from portal.tests.factories import BankFactory, StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def two_banks():
    bank_a, bank_b = BankFactory(slug="bank-a"), BankFactory(slug="bank-b")
    for bank, page_id in ((bank_a, "1234567890"), (bank_b, "1234567891")):
        audit_record(actor=Actor.system("seed"), action="config.changed", bank=bank)
        integration_configure(
            actor=Actor.system("seed"),
            bank=bank,
            page_id=page_id,
            page_access_token="token",
            app_secret="secret",
        )
    return bank_a, bank_b


def test_staff_of_bank_a_gets_no_rows_of_bank_b(two_banks):
    bank_a, bank_b = two_banks
    staff_a = StaffMembershipFactory(bank=bank_a, role=StaffMembership.Role.ADMIN).user

    assert list(Bank.objects.for_staff(staff_a)) == [bank_a]
    assert {e.bank_id for e in AuditEvent.objects.for_staff(staff_a)} == {bank_a.pk}
    assert [i.bank for i in MessengerIntegration.objects.for_staff(staff_a)] == [bank_a]
    assert not AuditEvent.objects.for_staff(staff_a).filter(bank=bank_b).exists()


def test_role_filter_limits_the_banks(two_banks):
    bank_a, bank_b = two_banks
    user = UserFactory()
    StaffMembershipFactory(user=user, bank=bank_a, role=StaffMembership.Role.AUDITOR)
    StaffMembershipFactory(user=user, bank=bank_b, role=StaffMembership.Role.ADMIN)

    admin_banks = Bank.objects.for_staff(user, roles=[StaffMembership.Role.ADMIN])

    assert list(admin_banks) == [bank_b]
    assert set(Bank.objects.for_staff(user)) == {bank_a, bank_b}


def test_platform_admin_sees_every_bank(two_banks):
    admin = UserFactory(is_superuser=True, is_staff=True)

    assert set(Bank.objects.for_staff(admin)) == set(two_banks)


@pytest.mark.parametrize("who", ["anonymous", "inactive", "no_membership"])
def test_outsiders_see_nothing(two_banks, who):
    bank_a, _ = two_banks
    if who == "anonymous":
        user = AnonymousUser()
    elif who == "inactive":
        user = StaffMembershipFactory(bank=bank_a, user__is_active=False).user
    else:
        user = UserFactory()

    assert not Bank.objects.for_staff(user).exists()
    assert not AuditEvent.objects.for_staff(user).exists()


def test_system_check_refuses_a_bank_model_without_the_scoped_manager():
    from django.db import models

    from portal.checks import check_bank_models_are_scoped

    class Unscoped(models.Model):
        bank = models.ForeignKey(Bank, on_delete=models.CASCADE)

        class Meta:
            app_label = "notifications"

        def __str__(self) -> str:
            return "unscoped"

    try:
        errors = check_bank_models_are_scoped()
        assert [e.id for e in errors if e.obj is Unscoped] == ["portal.E001"]
    finally:
        from django.apps import apps

        del apps.all_models["notifications"]["unscoped"]
        apps.clear_cache()
