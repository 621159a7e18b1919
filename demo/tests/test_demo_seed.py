"""`seed_demo`: the demo bank, seeded over the running portal and its sandbox, twice."""

import io
import time

import httpx
import pytest
from cryptography.fernet import Fernet
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse

from bankside.tests.test_settings import PRODUCTION_ENV, manage
from demo import keyfile
from demo.roster import (
    BANK_SLUG,
    CUSTOMER_PASSWORD,
    PRELINKED_USERNAME,
    SEEDED,
    STAFF,
    STAFF_PASSWORD,
)
from demo.seed import totp_codes
from linking import services as linking_services
from linking.models import Consent, Customer
from portal.models import (
    ApiKey,
    AuditEvent,
    Bank,
    MessageTemplate,
    MessengerIntegration,
    StaffMembership,
    StaffTOTPDevice,
    UtilityTemplate,
)
from portal.services import api_key_authenticate
from portal.tests.rawdump import forms_of, stored_values, totp_seed_forms
from sandbox.models import Page, WebhookDelivery
from sandbox.models import User as SandboxUser

pytestmark = pytest.mark.django_db(transaction=True)


def settled(timeout=20.0) -> None:
    """Wait until the sandbox has delivered every webhook it queued to the bank."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).exists():
            return
        time.sleep(0.1)
    raise AssertionError("the sandbox still has webhooks to deliver")


def snapshot() -> dict:
    return {
        "banks": Bank.objects.count(),
        "users": get_user_model().objects.count(),
        "memberships": StaffMembership.objects.count(),
        "devices": StaffTOTPDevice.objects.count(),
        "api_keys": ApiKey.objects.count(),
        "customers": Customer.objects.count(),
        "consents": Consent.objects.count(),
        "utility_templates": UtilityTemplate.objects.count(),
        "sandbox_pages": Page.objects.count(),
        "sandbox_users": SandboxUser.objects.count(),
        "audit_entries": AuditEvent.objects.count(),
    }


@pytest.fixture
def seeded(live_server, settings, tmp_path):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    key_file = tmp_path / "core-api-key"
    out = io.StringIO()
    call_command("seed_demo", url=live_server.url, key_file=str(key_file), stdout=out)
    settled()
    return live_server, key_file, out.getvalue()


def test_a_second_run_finds_everything_in_place_and_writes_nothing(seeded):
    live_server, key_file, _ = seeded
    before = snapshot()
    key = key_file.read_text()

    call_command("seed_demo", url=live_server.url, key_file=str(key_file), stdout=io.StringIO())
    settled()

    assert snapshot() == before
    assert key_file.read_text() == key


def test_the_bank_is_live_on_the_sandbox_with_approved_utility_templates(seeded):
    live_server, _, _ = seeded
    bank = Bank.objects.get(slug=BANK_SLUG)
    integration = MessengerIntegration.objects.get(bank=bank)

    assert integration.status == MessengerIntegration.Status.LIVE
    page = httpx.get(f"{live_server.url}/sandbox/api/pages").json()["pages"][0]
    assert page["page_id"] == integration.page_id
    assert page["webhook_url"] == f"{live_server.url}/webhooks/messenger/{BANK_SLUG}/"
    assert {"messages", "messaging_account_linking"} <= set(page["subscribed_fields"])
    templates = MessageTemplate.objects.filter(bank=bank)
    approved = UtilityTemplate.objects.filter(bank=bank, status=UtilityTemplate.Status.APPROVED)
    assert templates.count() == 5
    assert sorted(approved.values_list("event_type", flat=True)) == sorted(
        templates.values_list("event_type", flat=True)
    )


def test_each_role_signs_in_with_the_password_and_the_code_shown(seeded):
    bank = Bank.objects.get(slug=BANK_SLUG)
    codes = {c.username: c.code for c in totp_codes()}

    for login in STAFF:
        browser = Client()
        password_step = browser.post(
            reverse("portal:login"), {"username": login.username, "password": STAFF_PASSWORD}
        )
        assert password_step["Location"] == reverse("portal:login_verify"), login.username
        code_step = browser.post(reverse("portal:login_verify"), {"code": codes[login.username]})
        assert code_step["Location"] == reverse("portal:staff_home"), login.username
        user = get_user_model().objects.get(username=login.username)
        if login.role == "platform":
            assert user.is_superuser
        else:
            assert StaffMembership.objects.get(user=user, bank=bank).role == login.role
        assert "_auth_user_id" in browser.session, login.username


def test_customers_have_logins_and_one_is_linked_from_the_sandbox_chat(seeded):
    bank = Bank.objects.get(slug=BANK_SLUG)

    for demo in SEEDED:
        customer = linking_services.directory_authenticate(
            bank=bank, username=demo.username, password=CUSTOMER_PASSWORD
        )
        assert customer is not None and customer.external_id == demo.id
        assert customer.accounts.filter(active=True).count() == len(demo.accounts)
    linked = Consent.objects.get(bank=bank, status=Consent.Status.AUTHORISED)
    assert linked.customer.directory_username == PRELINKED_USERNAME
    assert sorted(linked.scopes) == sorted(Consent.Scope.values)
    assert linked.accounts.count() == 2
    user = SandboxUser.objects.get(psid=linked.psid)
    assert user.linked
    assert user.name == linked.customer.name


def test_the_key_kept_for_the_simulator_is_the_banks(seeded):
    _, key_file, output = seeded

    key = api_key_authenticate(presented=keyfile.read(key_file))

    assert key is not None and key.bank.slug == BANK_SLUG
    assert keyfile.read(key_file) not in output
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_the_output_names_every_login(seeded):
    _, _, output = seeded

    for login in STAFF:
        assert login.username in output
    for demo in SEEDED:
        assert demo.username in output
    assert STAFF_PASSWORD in output and CUSTOMER_PASSWORD in output
    assert "TOTP codes" in output


def test_without_the_sandbox_nothing_is_seeded(settings, tmp_path):
    settings.SANDBOX_ENABLED = False

    with pytest.raises(CommandError, match="never with production settings"):
        call_command("seed_demo", url="http://127.0.0.1:9", key_file=str(tmp_path / "k"))

    assert not Bank.objects.exists()
    assert not get_user_model().objects.exists()
    assert not (tmp_path / "k").exists()


def test_production_settings_refuse_to_seed_the_demo():
    env = {**PRODUCTION_ENV, "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode()}

    result = manage("seed_demo", "--url", "http://127.0.0.1:9", env_overrides=env)

    assert result.returncode == 1
    assert "never with production settings" in result.stderr


def test_no_table_holds_a_secret_of_the_demo_bank(seeded):
    """A dump of the database (every text, JSON and bytea column) reproduces no staff TOTP
    seed, Page token, app secret, callback signing secret or API key, in clear, hex, base32
    or base64. The sandbox's tables are Meta's side, which holds the Page's credentials by
    definition, and never exist in production."""
    _, key_file, _ = seeded
    integration = MessengerIntegration.objects.get(bank__slug=BANK_SLUG)
    api_key = keyfile.read(key_file)
    seeds = StaffTOTPDevice.objects.filter(user__username__in=[s.username for s in STAFF])
    secrets = {
        "page token": integration.page_access_token,
        "app secret": integration.app_secret,
        "callback signing secret": integration.callback_signing_secret,
        "api key": api_key,
        "api key secret part": api_key.split("_", 2)[2],
    }
    assert len(seeds) == len(STAFF) and all(secrets[name] for name in ("page token", "api key"))

    forms = {name: forms_of(secret) for name, secret in secrets.items() if secret}
    forms |= {f"TOTP seed of {d.user.username}": totp_seed_forms(d.key) for d in seeds}
    stored = [(where, value.lower()) for where, value in stored_values()]
    found = {
        name: sorted({where for where, value in stored if any(f in value for f in variants)})
        for name, variants in forms.items()
    }

    # The search finds a secret where one is held in clear: Meta's copy of the Page token.
    assert "sandbox_page.access_token" in found["page token"]
    leaks = {
        name: [where for where in wheres if not where.startswith("sandbox_")]
        for name, wheres in found.items()
    }
    assert leaks == {name: [] for name in forms}
