import io

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from bankside.settings.base import encryption_keys_from_env
from core.encryption import DecryptionError
from portal.audit import Actor
from portal.models import AuditEvent, MessengerIntegration
from portal.services import integration_configure
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

PAGE_TOKEN = "EAAGm0PX4ZCpsBAPageTokenSecret"
APP_SECRET = "a3f1c0ffee0ddba11deadbeef0123456"


def configure(bank):
    return integration_configure(
        actor=Actor("staff", "1", "ada"),
        bank=bank,
        page_id="1234567890",
        page_access_token=PAGE_TOKEN,
        app_secret=APP_SECRET,
    ).integration


def raw_columns(pk):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT page_access_token, app_secret, callback_signing_secret "
            "FROM portal_messengerintegration WHERE id = %s",
            [pk],
        )
        return cursor.fetchone()


def test_secrets_are_unreadable_in_the_raw_table():
    integration = configure(BankFactory())

    stored = raw_columns(integration.pk)

    assert PAGE_TOKEN not in str(stored) and APP_SECRET not in str(stored)
    assert all(value.startswith("gAAAAA") for value in stored)  # Fernet tokens
    reread = MessengerIntegration.objects.get(pk=integration.pk)
    assert (reread.page_access_token, reread.app_secret) == (PAGE_TOKEN, APP_SECRET)


def test_audit_entry_names_changed_fields_but_never_values():
    bank = BankFactory()
    configure(bank)

    entry = AuditEvent.objects.get(bank=bank, action="integration.configured")
    assert "page_access_token" in entry.details["fields_changed"]
    assert PAGE_TOKEN not in str(entry.details) and APP_SECRET not in str(entry.details)


def test_secrets_survive_key_rotation(settings):
    integration = configure(BankFactory())
    old_keys = list(settings.FIELD_ENCRYPTION_KEYS)
    new_key = Fernet.generate_key().decode()
    before = raw_columns(integration.pk)

    settings.FIELD_ENCRYPTION_KEYS = [new_key, *old_keys]
    out = io.StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    settings.FIELD_ENCRYPTION_KEYS = [new_key]  # the old keys are retired

    after = raw_columns(integration.pk)
    assert after != before
    reread = MessengerIntegration.objects.get(pk=integration.pk)
    assert (reread.page_access_token, reread.app_secret) == (PAGE_TOKEN, APP_SECRET)
    assert "4 secrets re-encrypted" in out.getvalue()  # each encrypted column of the row
    assert AuditEvent.objects.filter(action="secrets.keys_rotated", bank=None).exists()


def test_reading_with_a_retired_key_only_fails_loudly(settings):
    integration = configure(BankFactory())

    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]

    with pytest.raises(DecryptionError, match="FIELD_ENCRYPTION_KEYS"):
        MessengerIntegration.objects.get(pk=integration.pk)


def test_filtering_on_a_secret_is_refused():
    from django.core.exceptions import FieldError

    with pytest.raises(FieldError):
        list(MessengerIntegration.objects.filter(app_secret=APP_SECRET))


def test_malformed_encryption_keys_are_refused_at_startup():
    with pytest.raises(ImproperlyConfigured, match="entry 2 is not a valid Fernet key"):
        encryption_keys_from_env(f"{Fernet.generate_key().decode()},not-a-key")
