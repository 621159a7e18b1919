"""Secrets are shown once, when they are created, and then never again: not on any staff
page and not in any audit entry."""

import json
import re

import pytest
from django.forms.models import model_to_dict
from django.urls import reverse
from django_otp_webauthn.models import WebAuthnCredential

from portal.audit import Actor
from portal.models import (
    ApiKey,
    AuditEvent,
    Bank,
    MessageTemplate,
    MessengerIntegration,
    NotificationPolicy,
    StaffMembership,
)
from portal.services import audit_checkpoint_sign
from portal.tests.factories import PasskeyFactory, StaffMembershipFactory, UserFactory
from portal.tests.test_access import (
    conversation_objects,
    linking_objects,
    notification_objects,
    text_version_of,
)
from portal.tests.urlmap import STAFF_URLS

pytestmark = pytest.mark.django_db

PAGE_TOKEN = "EAAGm0PX4ZCpsBAPageTokenSecret9q7w"
APP_SECRET = "a3f1c0ffee0ddba11deadbeef0123456"
READABLE = [
    url
    for url in STAFF_URLS
    if url.access
    and url.access.scope != "public"
    and (url.access.scope != "bank" or url.access.view)
]


def revealed(response) -> str:
    match = re.search(r'id="reveal-value">([^<]+)<', response.content.decode())
    assert match, "the page should show the new secret once"
    return match.group(1)


@pytest.fixture
def onboarded(sign_in):
    """A bank set up through the staff pages, with every secret the portal hands out."""
    admin = UserFactory(is_superuser=True, is_staff=True)
    PasskeyFactory(user=admin, name="Work laptop")
    client = sign_in(admin)
    client.post(
        reverse("portal:bank_create"),
        {"name": "Harbour Bank", "slug": "harbour", "timezone": "UTC", "default_locale": "en"},
    )
    base = {"bank": "harbour"}
    shown = {}
    response = client.post(
        reverse("portal:integration_credentials", kwargs=base),
        {"page_id": "1234567890", "page_access_token": PAGE_TOKEN, "app_secret": APP_SECRET},
        follow=True,
    )
    shown["first signing secret"] = revealed(response)
    response = client.post(
        reverse("portal:signing_secret_rotate", kwargs=base), {"overlap": "24h"}, follow=True
    )
    shown["rotated signing secret"] = revealed(response)
    response = client.post(
        reverse("portal:api_keys", kwargs=base),
        {"name": "Core banking", "scopes": ["events:write", "outcomes:read"]},
        follow=True,
    )
    shown["api key"] = revealed(response)
    shown["api key secret part"] = shown["api key"].split("_", 2)[2]
    response = client.post(
        reverse("portal:staff_invite", kwargs=base), {"role": "admin"}, follow=True
    )
    shown["invitation token"] = revealed(response).rstrip("/").rsplit("/", 1)[1]
    key = ApiKey.objects.get(bank__slug="harbour")
    response = client.post(
        reverse("portal:api_key_roll", kwargs={**base, "key": key.pk}),
        {"overlap": "1h"},
        follow=True,
    )
    shown["rolled api key"] = revealed(response)
    codes = re.findall(
        r"<code>([a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4})</code>",
        client.post(reverse("portal:recovery_codes"), follow=True).content.decode(),
    )
    shown["recovery code"] = codes[0]
    secrets = {"page token": PAGE_TOKEN, "app secret": APP_SECRET, **shown}
    return client, secrets


def test_each_secret_was_shown_when_it_was_created(onboarded):
    _, secrets = onboarded
    integration = MessengerIntegration.objects.get(bank__slug="harbour")

    assert integration.callback_signing_secret == secrets["rotated signing secret"]
    assert secrets["api key"].startswith("bsk_")


@pytest.mark.parametrize("url", READABLE, ids=str)
def test_no_staff_page_shows_a_secret_again(onboarded, url):
    client, secrets = onboarded
    bank = Bank.objects.get(slug="harbour")
    address = url.reverse(
        bank="harbour",
        policy=NotificationPolicy.objects.filter(bank=bank).first().pk,
        template=MessageTemplate.objects.filter(bank=bank).first().pk,
        checkpoint=audit_checkpoint_sign(actor=Actor.system("test"), bank=bank)[0].pk,
        entry=AuditEvent.objects.filter(bank=bank).first().pk,
        version=text_version_of(bank, "message_template"),
        policy_version=text_version_of(bank, "notification_policy"),
        passkey=WebAuthnCredential.objects.get().pk,
        **linking_objects(bank),
        **notification_objects(bank),
        **conversation_objects(bank),
    )

    response = client.get(address)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    page = body.decode()

    leaked = [name for name, value in secrets.items() if value in page]
    assert not leaked, f"{url.name} shows {leaked}"


def test_a_bank_admins_pages_show_no_secret_either(onboarded, sign_in, client):
    _, secrets = onboarded
    bank = Bank.objects.get(slug="harbour")
    member = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN)
    sign_in(member.user, http_client=client)

    for name in ("dashboard", "integration", "integration_credentials", "api_keys", "staff_list"):
        page = client.get(reverse(f"portal:{name}", kwargs={"bank": "harbour"})).content.decode()
        assert not [label for label, value in secrets.items() if value in page], name


def test_no_audit_entry_holds_a_secret(onboarded):
    _, secrets = onboarded

    entries = json.dumps([model_to_dict(entry) for entry in AuditEvent.objects.all()], default=str)

    assert AuditEvent.objects.filter(bank__slug="harbour").count() >= 5
    assert not [name for name, value in secrets.items() if value in entries]
