"""The Django admin is read-only: a write there would skip the audited services."""

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from portal.models import AuditEvent, Bank, StaffMembership
from portal.tests.factories import StaffMembershipFactory, UserFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


@pytest.fixture
def platform_admin(sign_in):
    return sign_in(UserFactory(is_superuser=True, is_staff=True))


def test_a_role_change_posted_to_the_admin_is_refused(platform_admin):
    membership = StaffMembershipFactory(role=Role.OPERATOR)
    url = reverse("admin:portal_staffmembership_change", args=[membership.pk])

    response = platform_admin.post(
        url, {"user": membership.user.pk, "bank": membership.bank.pk, "role": Role.ADMIN}
    )

    assert response.status_code == 403
    assert StaffMembership.objects.get(pk=membership.pk).role == Role.OPERATOR
    assert not AuditEvent.objects.filter(action__startswith="staff.").exists()


def test_making_a_user_superuser_in_the_admin_is_refused(platform_admin):
    user = UserFactory()
    url = reverse("admin:auth_user_change", args=[user.pk])

    response = platform_admin.post(
        url,
        {
            "username": user.username,
            "is_active": "on",
            "is_staff": "on",
            "is_superuser": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )

    assert response.status_code == 403
    assert not get_user_model().objects.get(pk=user.pk).is_superuser


def test_adding_and_deleting_in_the_admin_are_refused(platform_admin):
    bank = Bank.objects.create(name="Harbour", slug="harbour")

    added = platform_admin.post(
        reverse("admin:portal_bank_add"),
        {"name": "Other", "slug": "other", "timezone": "UTC", "default_locale": "en"},
    )
    deleted = platform_admin.post(
        reverse("admin:portal_bank_delete", args=[bank.pk]), {"post": "yes"}
    )
    bulk = platform_admin.post(
        reverse("admin:portal_bank_changelist"),
        {"action": "delete_selected", "_selected_action": [bank.pk], "post": "yes"},
    )

    assert (added.status_code, deleted.status_code) == (403, 403)
    assert bulk.status_code in (200, 302)
    assert list(Bank.objects.values_list("slug", flat=True)) == ["harbour"]


def test_the_admin_still_shows_what_is_there(platform_admin):
    membership = StaffMembershipFactory()

    listed = platform_admin.get(reverse("admin:portal_staffmembership_changelist"))
    shown = platform_admin.get(reverse("admin:portal_staffmembership_change", args=[membership.pk]))

    assert listed.status_code == 200 and shown.status_code == 200
    assert membership.user.username in shown.content.decode()


def test_every_model_in_the_admin_is_read_only(rf):
    request = rf.get("/")
    request.user = UserFactory(is_superuser=True, is_staff=True)

    for model, model_admin in admin.site._registry.items():
        assert not model_admin.has_add_permission(request), model
        assert not model_admin.has_change_permission(request), model
        assert not model_admin.has_delete_permission(request), model
        assert model_admin.get_actions(request) == {}, model
