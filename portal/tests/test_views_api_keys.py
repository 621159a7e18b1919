import pytest
from django.urls import reverse

from core.api.scopes import ALL_SCOPES
from portal.models import ApiKey, AuditEvent, StaffMembership
from portal.tests.factories import BankFactory, StaffMembershipFactory, api_key_for

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role


@pytest.fixture
def admin(sign_in):
    member = StaffMembershipFactory(role=Role.ADMIN, bank=BankFactory(slug="harbour"))
    return sign_in(member.user), member.bank


def keys_url(bank):
    return reverse("portal:api_keys", kwargs={"bank": bank.slug})


def test_a_new_key_is_shown_once_then_only_its_prefix(admin):
    client, bank = admin

    shown = client.post(
        keys_url(bank), {"name": "Core banking", "scopes": ALL_SCOPES}, follow=True
    ).content.decode()
    later = client.get(keys_url(bank)).content.decode()

    key = ApiKey.objects.get(bank=bank)
    full = shown.split('id="reveal-value">')[1].split("<")[0]
    assert full.startswith(f"bsk_{key.prefix}_")
    assert full not in later
    assert key.display_prefix in later


def test_the_list_shows_when_each_key_was_last_used(admin):
    client, bank = admin
    api_key_for(bank, name="Never used")

    page = client.get(keys_url(bank)).content.decode()

    assert "Never used" in page and "never" in page


def test_two_active_keys_cannot_share_a_name(admin):
    client, bank = admin
    api_key_for(bank, name="Core banking")

    response = client.post(keys_url(bank), {"name": "Core banking", "scopes": ALL_SCOPES})

    assert "already exists" in response.content.decode()
    assert ApiKey.objects.filter(bank=bank).count() == 1


def test_revoking_a_key_is_audited(admin):
    client, bank = admin
    key = api_key_for(bank).api_key

    client.post(reverse("portal:api_key_revoke", kwargs={"bank": bank.slug, "key": key.pk}))

    assert ApiKey.objects.get(pk=key.pk).revoked_at is not None
    entry = AuditEvent.objects.get(bank=bank, action="api_key.revoked")
    assert entry.target_id == str(key.pk)


def test_an_auditor_sees_the_keys_but_no_create_form(sign_in):
    member = StaffMembershipFactory(role=Role.AUDITOR)
    api_key_for(member.bank, name="Core banking")

    page = sign_in(member.user).get(keys_url(member.bank)).content.decode()

    assert "Core banking" in page
    assert "Create key" not in page and "Revoke" not in page
