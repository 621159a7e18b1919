"""Rolling an API key: a successor, the old key working for the chosen overlap, both listed
with their last use; who may roll, and what the audit log keeps."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from portal.audit import Actor
from portal.models import ApiKey, AuditEvent, StaffMembership
from portal.services import api_key_create, api_key_roll
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
SEED = Actor.system("test")


def whoami(secret: str) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get("/api/v1/whoami").status_code


def outcomes(secret: str, **extra) -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get("/api/v1/outcomes", **extra).status_code


@pytest.fixture
def moved_clock(monkeypatch):
    """Move the time the keys are checked against."""

    def move(to):
        monkeypatch.setattr("portal.services.api_keys.timezone.now", lambda: to)

    return move


def test_the_old_key_works_during_the_overlap_and_fails_after(bank, moved_clock):
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")
    new = api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(hours=24))
    rolled_at = timezone.now()

    during = (whoami(old.secret), whoami(new.secret))
    moved_clock(rolled_at + timedelta(hours=23, minutes=59))
    near_the_end = (whoami(old.secret), whoami(new.secret))
    moved_clock(rolled_at + timedelta(hours=24, seconds=5))
    after = (whoami(old.secret), whoami(new.secret))

    assert during == (200, 200)
    assert near_the_end == (200, 200)
    assert after == (401, 200)


def test_the_successor_keeps_the_name_scopes_and_addresses(bank):
    old = api_key_create(
        actor=SEED,
        bank=bank,
        name="Core banking",
        scopes=["events:write", "outcomes:read"],
        allowed_networks=["203.0.113.0/24"],
    )

    issued = api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(days=7))

    new = issued.api_key
    assert new.name == "Core banking"
    assert new.scopes == ["events:write", "outcomes:read"]
    assert new.allowed_networks == ["203.0.113.0/24"]
    assert new.rolled_from == old.api_key
    assert outcomes(issued.secret, REMOTE_ADDR="203.0.113.4") == 200
    assert outcomes(issued.secret, REMOTE_ADDR="198.51.100.1") == 403


def test_a_key_is_rolled_once(bank):
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")
    api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(hours=1))

    with pytest.raises(ValidationError, match="rolled already"):
        api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(hours=1))

    assert ApiKey.objects.filter(bank=bank).count() == 2


def test_a_successor_can_be_rolled_in_turn(bank):
    first = api_key_create(actor=SEED, bank=bank, name="Core banking")
    second = api_key_roll(actor=SEED, api_key=first.api_key, overlap=timedelta(hours=1))

    third = api_key_roll(actor=SEED, api_key=second.api_key, overlap=timedelta(hours=1))

    assert {whoami(first.secret), whoami(second.secret), whoami(third.secret)} == {200}


@pytest.mark.parametrize("overlap", [timedelta(minutes=59), timedelta(days=30, seconds=1)])
def test_an_overlap_outside_one_hour_to_thirty_days_is_refused(bank, overlap):
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")

    with pytest.raises(ValidationError):
        api_key_roll(actor=SEED, api_key=old.api_key, overlap=overlap)

    assert ApiKey.objects.get().expires_at is None


def test_an_old_key_that_expires_sooner_keeps_its_own_expiry(bank):
    soon = timezone.now() + timedelta(hours=2)
    old = api_key_create(actor=SEED, bank=bank, name="Core banking", expires_at=soon)

    api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(days=7))

    assert ApiKey.objects.get(pk=old.api_key.pk).expires_at == soon


def test_a_revoked_key_cannot_be_rolled(bank):
    from portal.services import api_key_revoke

    old = api_key_create(actor=SEED, bank=bank, name="Core banking")
    api_key_revoke(actor=SEED, api_key=old.api_key)

    with pytest.raises(ValidationError):
        api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(hours=1))


def test_the_old_key_can_be_ended_early_by_revoking_it(bank):
    from portal.services import api_key_revoke

    old = api_key_create(actor=SEED, bank=bank, name="Core banking")
    new = api_key_roll(actor=SEED, api_key=old.api_key, overlap=timedelta(days=7))

    api_key_revoke(actor=SEED, api_key=old.api_key)

    assert (whoami(old.secret), whoami(new.secret)) == (401, 200)


# Through the staff pages


def keys_url(bank):
    return reverse("portal:api_keys", kwargs={"bank": bank.slug})


def roll_url(bank, key):
    return reverse("portal:api_key_roll", kwargs={"bank": bank.slug, "key": key.pk})


def test_an_admin_rolls_a_key_and_sees_both_with_their_last_use(bank, sign_in):
    admin = StaffMembershipFactory(bank=bank, role=Role.ADMIN)
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")
    assert whoami(old.secret) == 200  # the old key was used just now
    client = sign_in(admin.user)

    shown = client.post(roll_url(bank, old.api_key), {"overlap": "3d"}, follow=True)

    page = shown.content.decode()
    new = ApiKey.objects.get(rolled_from=old.api_key)
    secret = page.split('id="reveal-value">')[1].split("<")[0]
    assert secret.startswith(f"bsk_{new.prefix}_")
    assert whoami(secret) == 200
    page = client.get(keys_url(bank)).content.decode()
    assert "Rolling over" in page
    assert f"replaced by <code>{new.display_prefix}</code>" in page
    assert f"replaces <code>{old.api_key.display_prefix}</code>" in page
    rows = page.split("<tr")
    old_row = next(r for r in rows if f'data-key="{old.api_key.display_prefix}"' in r)
    new_row = next(r for r in rows if f'data-key="{new.display_prefix}"' in r)
    assert "ago</time>" in old_row, "the old key's last use is shown"
    assert "ago</time>" in new_row, "so is the new key's, used just above"
    old_key = ApiKey.objects.get(pk=old.api_key.pk)
    assert timedelta(days=3) - timedelta(minutes=1) < old_key.expires_at - timezone.now()
    assert old_key.expires_at - timezone.now() <= timedelta(days=3)
    entry = AuditEvent.objects.get(action="api_key.rolled")
    assert entry.actor_label == admin.user.username
    assert entry.details["prefix"] == old.api_key.prefix
    assert entry.details["successor_prefix"] == new.prefix
    assert entry.details["overlap_seconds"] == 3 * 24 * 3600
    assert secret not in str(entry.details)


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.AUDITOR])
def test_operators_and_auditors_cannot_roll_a_key(bank, sign_in, role):
    member = StaffMembershipFactory(bank=bank, role=role)
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")

    response = sign_in(member.user).post(roll_url(bank, old.api_key), {"overlap": "1h"})

    assert response.status_code == 403
    assert ApiKey.objects.filter(bank=bank).count() == 1
    assert not AuditEvent.objects.filter(action="api_key.rolled").exists()


def test_an_auditor_sees_the_keys_but_no_roll_button(bank, sign_in):
    auditor = StaffMembershipFactory(bank=bank, role=Role.AUDITOR)
    api_key_create(actor=SEED, bank=bank, name="Core banking")

    page = sign_in(auditor.user).get(keys_url(bank)).content.decode()

    assert "Core banking" in page
    assert "Roll" not in page


def test_an_admin_of_another_bank_cannot_roll_this_bank_s_key(bank, sign_in):
    from portal.tests.factories import BankFactory

    stranger = StaffMembershipFactory(bank=BankFactory(slug="other"), role=Role.ADMIN)
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")

    response = sign_in(stranger.user).post(
        reverse("portal:api_key_roll", kwargs={"bank": "other", "key": old.api_key.pk}),
        {"overlap": "1h"},
    )

    assert response.status_code == 404
    assert ApiKey.objects.filter(bank=bank).count() == 1


def test_an_unknown_overlap_is_refused_and_nothing_changes(bank, sign_in):
    admin = StaffMembershipFactory(bank=bank, role=Role.ADMIN)
    old = api_key_create(actor=SEED, bank=bank, name="Core banking")

    response = sign_in(admin.user).post(
        roll_url(bank, old.api_key), {"overlap": "90d"}, follow=True
    )

    assert "1 hour to 30 days" in response.content.decode()
    assert ApiKey.objects.filter(bank=bank).count() == 1
    assert ApiKey.objects.get().expires_at is None


def test_an_admin_creates_a_key_with_scopes_expiry_and_addresses(bank, sign_in):
    admin = StaffMembershipFactory(bank=bank, role=Role.ADMIN)

    sign_in(admin.user).post(
        keys_url(bank),
        {
            "name": "Outcome reader",
            "scopes": ["outcomes:read"],
            "expires_after": "90",
            "allowed_networks": "203.0.113.0/24\n2001:db8::/32",
        },
    )

    key = ApiKey.objects.get(bank=bank)
    assert key.scopes == ["outcomes:read"]
    assert key.allowed_networks == ["203.0.113.0/24", "2001:db8::/32"]
    assert timedelta(days=89) < key.expires_at - timezone.now() <= timedelta(days=90)
    entry = AuditEvent.objects.get(action="api_key.created")
    assert entry.details["scopes"] == ["outcomes:read"]
    assert entry.details["allowed_networks"] == ["203.0.113.0/24", "2001:db8::/32"]
    assert entry.actor_label == admin.user.username


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("allowed_networks", "10.1.2.3/8", "did you mean 10.0.0.0/8"),
        ("allowed_networks", "my office", "is not an IP address"),
        ("scopes", None, "Choose at least one scope"),  # no box ticked: nothing sent
        ("scopes", "events:delete", "Select a valid choice"),
        ("expires_after", "7", "Select a valid choice"),
    ],
)
def test_a_bad_key_form_says_what_is_wrong_and_writes_nothing(bank, sign_in, field, value, says):
    admin = StaffMembershipFactory(bank=bank, role=Role.ADMIN)
    data = {"name": "Core", "scopes": ["events:write"], field: value}
    if value is None:
        del data[field]

    response = sign_in(admin.user).post(keys_url(bank), data)

    assert response.status_code == 200
    assert says in response.content.decode()
    assert not ApiKey.objects.exists()
