import io
import json

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from portal.models import ApiKey, AuditChain, AuditEvent, Bank, MessengerIntegration
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

ARGS = {
    "--name": "Harbour Bank",
    "--slug": "harbour",
    "--page-id": "1234567890",
    "--page-token": "EAAG-page-token-0123456789",
    "--app-secret": "app-secret-0123456789abcdef",
}


def onboard(**overrides) -> dict:
    args = {**ARGS, **overrides}
    out = io.StringIO()
    call_command("onboard_bank", *[part for pair in args.items() for part in pair], stdout=out)
    return json.loads(out.getvalue())


def nothing_written() -> bool:
    return not (
        Bank.objects.filter(slug="harbour").exists()
        or MessengerIntegration.objects.exists()
        or ApiKey.objects.exists()
        or AuditEvent.objects.exists()
        or AuditChain.objects.exists()
    )


def test_prints_one_json_object_with_the_contract_keys(settings):
    result = onboard()

    assert {"bank", "api_key", "webhook_url", "verify_token", "link_url"} <= set(result)
    assert result["bank"] == "harbour"
    assert result["webhook_url"] == f"{settings.PUBLIC_BASE_URL}/webhooks/messenger/harbour/"
    assert result["link_url"] == f"{settings.PUBLIC_BASE_URL}/link/harbour/"
    assert result["verify_token"] == MessengerIntegration.objects.get().verify_token


def test_the_printed_api_key_works_against_the_api():
    result = onboard()

    response = APIClient().get("/api/v1/whoami", HTTP_AUTHORIZATION=f"Bearer {result['api_key']}")

    assert response.json() == {"bank": "harbour", "key": "Core banking"}


def test_creates_the_bank_its_integration_and_audit_entries():
    onboard(**{"--verify-token": "my-verify-token", "--callback-url": "https://core.example/cb"})

    integration = MessengerIntegration.objects.get(bank__slug="harbour")
    assert integration.verify_token == "my-verify-token"
    assert integration.callback_url == "https://core.example/cb"
    assert integration.page_access_token == ARGS["--page-token"]
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"bank.created", "integration.configured", "api_key.created"} <= actions


def test_a_duplicate_slug_fails_clearly_and_writes_nothing():
    BankFactory(slug="harbour")
    banks = Bank.objects.count()

    with pytest.raises(CommandError, match="--slug: Bank with this Slug already exists") as info:
        onboard()

    assert info.value.returncode == 1
    assert Bank.objects.count() == banks
    assert not MessengerIntegration.objects.exists() and not ApiKey.objects.exists()


def test_a_non_numeric_page_id_fails_clearly_and_writes_nothing():
    with pytest.raises(CommandError, match="--page-id: A Page ID is all digits") as info:
        onboard(**{"--page-id": "harbour-page"})

    assert info.value.returncode == 1
    assert nothing_written()


def test_a_page_another_bank_serves_fails_clearly_and_writes_nothing():
    onboard(**{"--slug": "riverside", "--name": "Riverside Bank"})
    before = {
        "banks": Bank.objects.count(),
        "keys": ApiKey.objects.count(),
        "audit": AuditEvent.objects.count(),
    }

    with pytest.raises(
        CommandError, match="--page-id: This Page is already connected to another bank"
    ) as info:
        onboard()

    assert info.value.returncode == 1
    assert not Bank.objects.filter(slug="harbour").exists()
    assert MessengerIntegration.objects.get().bank.slug == "riverside"
    assert before == {
        "banks": Bank.objects.count(),
        "keys": ApiKey.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def test_a_bad_callback_url_fails_and_writes_nothing():
    with pytest.raises(CommandError, match="--callback-url"):
        onboard(**{"--callback-url": "not a url"})

    assert nothing_written()


def test_a_callback_url_inside_the_network_fails_and_writes_nothing():
    with pytest.raises(CommandError, match="--callback-url: The address must be on the public"):
        onboard(**{"--callback-url": "https://169.254.169.254/latest/meta-data"})

    assert nothing_written()


def test_a_missing_option_is_refused():
    with pytest.raises(CommandError, match="--app-secret"):
        call_command(
            "onboard_bank", "--name", "X", "--slug", "x", "--page-id", "12345", "--page-token", "t"
        )

    assert not Bank.objects.exists()


def test_the_app_id_is_stored_and_must_be_digits():
    with pytest.raises(CommandError, match="--app-id"):
        onboard(**{"--app-id": "my-app"})
    assert nothing_written()

    onboard(**{"--app-id": "1517776481860111"})

    assert MessengerIntegration.objects.get().app_id == "1517776481860111"
