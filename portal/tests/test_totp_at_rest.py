"""Staff authenticator seeds are encrypted at rest: a database dump yields no second factor."""

import importlib
import io
import re
from base64 import b32decode

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from portal.models import StaffMembership, StaffTOTPDevice
from portal.services import two_factor_device_confirm, two_factor_device_start
from portal.tests.factories import PASSWORD, StaffMembershipFactory, UserFactory, totp_code
from portal.tests.rawdump import columns_holding, totp_seed_forms

pytestmark = pytest.mark.django_db

MIGRATION = "0012_staff_totp_devices_encrypted"


def code_for(seed: bytes, *, steps_ahead: int = 0) -> str:
    totp = TOTP(seed)
    totp.time = totp.time + steps_ahead * totp.step
    return f"{totp.token():06d}"


def enrol_through_the_pages(client: Client, username: str) -> bytes:
    """Sign in with the password, enrol an authenticator from the setup key the page shows,
    and return that key (the seed)."""
    client.post(reverse("portal:login"), {"username": username, "password": PASSWORD})
    page = client.get(reverse("portal:two_factor_setup")).content.decode()
    shown = re.search(r'id="totp-secret"[^>]*>([^<]+)<', page).group(1).replace(" ", "")
    seed = b32decode(shown)
    response = client.post(reverse("portal:two_factor_setup"), {"code": code_for(seed)})
    assert response.status_code == 302
    return seed


def stored_key(device: StaffTOTPDevice) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT key FROM portal_stafftotpdevice WHERE id = %s", [device.pk])
        return cursor.fetchone()[0]


def test_an_enrolled_seed_is_in_no_column_of_any_table(client):
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)

    seed = enrol_through_the_pages(client, member.user.username)

    assert columns_holding(totp_seed_forms(seed.hex())) == []


def test_the_enrolled_authenticator_signs_in_again():
    member = StaffMembershipFactory(role=StaffMembership.Role.ADMIN)
    seed = enrol_through_the_pages(Client(), member.user.username)
    browser = Client()

    browser.post(reverse("portal:login"), {"username": member.user.username, "password": PASSWORD})
    response = browser.post(reverse("portal:login_verify"), {"code": code_for(seed, steps_ahead=1)})

    assert response["Location"] == reverse("portal:staff_home")
    device = StaffTOTPDevice.objects.get(user=member.user)
    assert device.confirmed and device.last_t > 0


def test_rotating_the_encryption_keys_reencrypts_seeds(settings):
    user = UserFactory()
    device = two_factor_device_start(user=user)
    assert two_factor_device_confirm(user=user, device=device, code=totp_code(device))
    seed, before = device.key, stored_key(device)
    new_key = Fernet.generate_key().decode()

    settings.FIELD_ENCRYPTION_KEYS = [new_key, *settings.FIELD_ENCRYPTION_KEYS]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]

    assert stored_key(device) != before
    assert Fernet(new_key).decrypt(stored_key(device).encode()).decode() == seed
    assert "portal.StaffTOTPDevice.key: 1 re-encrypted" in out.getvalue()
    reread = StaffTOTPDevice.objects.get(pk=device.pk)
    assert reread.verify_token(totp_code(reread, steps_ahead=1))


def test_the_migration_encrypts_a_device_enrolled_before_it():
    user = UserFactory()
    seed = "3132333435363738393031323334353637383930"
    old = TOTPDevice.objects.create(
        user=user, name="Phone", key=seed, confirmed=True, drift=1, last_t=12345
    )
    migration = importlib.import_module(f"portal.migrations.{MIGRATION}")
    state = MigrationExecutor(connection).loader.project_state(("portal", MIGRATION))

    with connection.schema_editor() as editor:
        migration.encrypt_devices(state.apps, editor)

    assert not TOTPDevice.objects.exists()
    moved = StaffTOTPDevice.objects.get(user=user)
    assert (moved.name, moved.key, moved.confirmed) == ("Phone", seed, True)
    assert (moved.drift, moved.last_t, moved.created_at) == (1, 12345, old.created_at)
    assert stored_key(moved).startswith("gAAAAA")
    assert columns_holding(totp_seed_forms(seed)) == []
    assert moved.verify_token(totp_code(moved))
