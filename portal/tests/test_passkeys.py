"""Staff passkeys: who may add, name and remove one, whose passkeys a page shows, the rule
that keeps a second factor, and the sign-in step a passkey completes.

The WebAuthn ceremonies themselves run in a real browser in test_passkeys_browser.py; here
the library's helper (the one place that checks an authenticator's signature) is replaced
where a test needs a ceremony to succeed.
"""

import base64
import json
import logging

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.urls import reverse
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.models import WebAuthnCredential

from bankside.settings.base import passkey_relying_party
from portal import services
from portal.access import LAST_ACTIVITY_KEY
from portal.audit import Actor
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import (
    PASSWORD,
    PasskeyFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
)

pytestmark = pytest.mark.django_db

Role = StaffMembership.Role
ACCOUNT = "/staff/account/"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def post_json(client, name: str, body: dict | None = None):
    return client.post(
        reverse(f"portal:{name}"), json.dumps(body or {}), content_type="application/json"
    )


def passkey_audits(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action))


@pytest.fixture
def operator():
    return StaffMembershipFactory(role=Role.OPERATOR).user


# The relying party, from PUBLIC_BASE_URL


def test_an_https_address_gives_its_host_as_relying_party_and_its_origin():
    assert passkey_relying_party("https://Bank.Example", require_https=True) == (
        "bank.example",
        "https://bank.example",
    )
    assert passkey_relying_party("https://bank.example:8443/", require_https=True) == (
        "bank.example",
        "https://bank.example:8443",
    )


def test_localhost_over_http_is_allowed_outside_production_only():
    assert passkey_relying_party("http://localhost:8000", require_https=False) == (
        "localhost",
        "http://localhost:8000",
    )
    with pytest.raises(ImproperlyConfigured, match="https"):
        passkey_relying_party("http://localhost:8000", require_https=True)


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8000", "http://bank.example", "https://10.0.0.4"]
)
def test_an_address_no_browser_accepts_turns_passkeys_off(address):
    assert passkey_relying_party(address, require_https=False) is None
    with pytest.raises(ImproperlyConfigured):
        passkey_relying_party(address, require_https=True)


# Adding a passkey


def test_registration_needs_a_signed_in_staff_member(client):
    response = post_json(client, "passkey_register_begin")

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("portal:login"))


def test_registration_needs_a_session_that_passed_its_second_factor(client, settings):
    settings.STAFF_TWO_FACTOR_FOR_ALL = False  # a demo machine: operators may skip it
    member = StaffMembershipFactory(role=Role.OPERATOR)
    client.force_login(member.user)

    response = post_json(client, "passkey_register_begin")

    assert response.status_code == 403
    assert response.json()["code"] == "user_not_verified"
    assert "authenticator app first" in response.json()["detail"]
    assert "otp_webauthn_register_state" not in client.session


def test_registration_offers_a_challenge_for_this_relying_party(client, sign_in, operator):
    sign_in(operator)
    existing = PasskeyFactory(user=operator)

    response = post_json(client, "passkey_register_begin")

    options = response.json()
    assert response.status_code == 200
    assert options["rp"] == {"name": "bankside", "id": "localhost"}
    assert options["user"]["name"] == operator.username
    assert [c["id"] for c in options["excludeCredentials"]] == [
        b64url(bytes(existing.credential_id))
    ]
    assert client.session["otp_webauthn_register_state"]["challenge"] == options["challenge"]


def test_a_forged_registration_keeps_nothing(client, sign_in, operator):
    sign_in(operator)
    post_json(client, "passkey_register_begin")
    forged = {
        "id": b64url(b"forged"),
        "rawId": b64url(b"forged"),
        "type": "public-key",
        "response": {"clientDataJSON": b64url(b"{}"), "attestationObject": b64url(b"\xa0")},
    }

    response = post_json(client, "passkey_register_complete", forged)

    assert 400 <= response.status_code < 500
    assert not WebAuthnCredential.objects.exists()
    assert passkey_audits("staff.passkey_registered") == []


class VerifiedRegistration(WebAuthnHelper):
    """The library's helper with the authenticator's signature taken as checked."""

    def register_complete(self, user, state, data):
        return WebAuthnCredential.objects.create(
            user=user,
            credential_id=b"new-credential",
            public_key=b"key",
            aaguid="00000000-0000-0000-0000-000000000000",
        )


def test_a_new_passkey_is_kept_named_by_default_and_audited(operator):
    first = services.passkey_register(
        user=operator, helper=VerifiedRegistration(request=None), state={}, data={}
    )

    assert first.name == "Passkey" and first.confirmed
    (entry,) = passkey_audits("staff.passkey_registered")
    assert entry.actor_label == operator.username
    assert entry.target_id == str(first.pk)
    assert entry.details == {"user": operator.username, "passkey": "Passkey"}


# Naming


def test_a_staff_member_names_their_passkey_and_the_change_is_audited(client, sign_in, operator):
    passkey = PasskeyFactory(user=operator, name="Passkey")
    sign_in(operator)

    response = client.post(
        reverse("portal:passkey_name", args=[passkey.pk]), {"name": "  Work   laptop "}
    )

    assert response["Location"] == reverse("portal:account")
    passkey.refresh_from_db()
    assert passkey.name == "Work laptop"
    (entry,) = passkey_audits("staff.passkey_renamed")
    assert entry.details["passkey"] == "Work laptop" and entry.details["previous"] == "Passkey"


def test_an_empty_passkey_name_is_refused_with_a_reason(client, sign_in, operator):
    passkey = PasskeyFactory(user=operator, name="Passkey")
    sign_in(operator)

    response = client.post(reverse("portal:passkey_name", args=[passkey.pk]), {"name": "   "})

    assert response.status_code == 200
    assert "Give the passkey a name" in response.content.decode()
    passkey.refresh_from_db()
    assert passkey.name == "Passkey"
    assert passkey_audits("staff.passkey_renamed") == []


# Tenancy: a staff member's passkeys are theirs alone


def test_the_account_page_lists_only_ones_own_passkeys_with_their_last_use(
    client, sign_in, operator
):
    PasskeyFactory(user=operator, name="Work laptop")
    colleague = StaffMembershipFactory(role=Role.ADMIN).user
    PasskeyFactory(user=colleague, name="Colleague phone")
    sign_in(operator)

    page = client.get(ACCOUNT).content.decode()

    assert "Work laptop" in page and "Not used yet" in page
    assert "Colleague phone" not in page


@pytest.mark.parametrize("name", ["passkey_name", "passkey_remove"])
def test_another_staff_members_passkey_does_not_exist_for_one(client, sign_in, operator, name):
    colleague_key = PasskeyFactory(user=StaffMembershipFactory(role=Role.ADMIN).user)
    sign_in(operator)

    shown = client.get(reverse(f"portal:{name}", args=[colleague_key.pk]))
    posted = client.post(reverse(f"portal:{name}", args=[colleague_key.pk]), {"name": "Mine"})

    assert shown.status_code in (404, 405) and posted.status_code == 404
    colleague_key.refresh_from_db()
    assert colleague_key.name != "Mine"
    assert not AuditEvent.objects.filter(action__startswith="staff.passkey").exists()


# Removing, and the last second factor


def test_removing_a_passkey_is_audited_and_it_no_longer_counts(client, sign_in, operator):
    TOTPDeviceFactory(user=operator)
    passkey = PasskeyFactory(user=operator, name="Old phone")
    sign_in(operator)

    response = client.post(reverse("portal:passkey_remove", args=[passkey.pk]), follow=True)

    assert "Passkey “Old phone” removed" in response.content.decode()
    assert not WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    (entry,) = passkey_audits("staff.passkey_removed")
    assert entry.actor_label == operator.username
    assert entry.details == {"user": operator.username, "passkey": "Old phone"}


def test_the_last_second_factor_cannot_be_removed_and_the_page_says_why(client, sign_in, operator):
    passkey = PasskeyFactory(user=operator, name="Only key")
    sign_in(operator)  # with the passkey: no authenticator app, no recovery codes

    response = client.post(reverse("portal:passkey_remove", args=[passkey.pk]), follow=True)

    assert "only second factor left" in response.content.decode()
    assert WebAuthnCredential.objects.filter(pk=passkey.pk).exists()
    assert passkey_audits("staff.passkey_removed") == []


def test_a_passkey_may_go_while_recovery_codes_remain(operator):
    passkey = PasskeyFactory(user=operator)
    services.recovery_codes_generate(actor=Actor.staff(operator), user=operator)

    services.passkey_remove(user=operator, passkey_id=passkey.pk)

    assert not WebAuthnCredential.objects.filter(user=operator).exists()


def test_of_two_passkeys_one_may_go_but_not_the_other(operator):
    first, second = PasskeyFactory(user=operator), PasskeyFactory(user=operator)

    services.passkey_remove(user=operator, passkey_id=first.pk)

    with pytest.raises(services.LastSecondFactorError):
        services.passkey_remove(user=operator, passkey_id=second.pk)
    assert list(WebAuthnCredential.objects.filter(user=operator)) == [second]


# Signing in with a passkey


def test_a_staff_member_with_only_a_passkey_is_offered_it_after_the_password(client, operator):
    PasskeyFactory(user=operator)

    password_step = client.post(
        "/staff/login/", {"username": operator.username, "password": PASSWORD}
    )
    page = client.get(reverse("portal:login_verify")).content.decode()

    assert password_step["Location"] == reverse("portal:login_verify")
    assert "Use a passkey" in page and "6-digit code" not in page
    assert 'id="otp_webauthn_config"' in page
    assert "_auth_user_id" not in client.session


def test_the_code_form_stays_beside_the_passkey(client, operator):
    TOTPDeviceFactory(user=operator)
    PasskeyFactory(user=operator)

    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})
    page = client.get(reverse("portal:login_verify")).content.decode()

    assert "6-digit code" in page and "Or use a passkey" in page


def test_a_passkey_challenge_needs_the_password_first(client):
    response = post_json(client, "passkey_sign_in_begin")

    assert response.status_code == 403
    assert response.json()["code"] == "not_authenticated"
    assert "otp_webauthn_authentication_state" not in client.session


def test_the_challenge_names_only_the_signing_in_staff_members_passkeys(client, operator):
    own = PasskeyFactory(user=operator)
    PasskeyFactory(user=StaffMembershipFactory(role=Role.ADMIN).user)
    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})

    response = post_json(client, "passkey_sign_in_begin")

    allowed = [c["id"] for c in response.json()["allowCredentials"]]
    assert allowed == [b64url(bytes(own.credential_id))]


def test_another_staff_members_passkey_does_not_finish_ones_sign_in(client, operator, caplog):
    PasskeyFactory(user=operator)
    colleague_key = PasskeyFactory(user=StaffMembershipFactory(role=Role.ADMIN).user)
    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})
    post_json(client, "passkey_sign_in_begin")
    raw = bytes(colleague_key.credential_id)
    answer = {
        "id": b64url(raw),
        "rawId": b64url(raw),
        "type": "public-key",
        "response": {
            "authenticatorData": b64url(b"\x00" * 37),
            "clientDataJSON": b64url(b"{}"),
            "signature": b64url(b"\x00"),
        },
    }

    with caplog.at_level(logging.WARNING, logger="portal.passkeys"):
        response = post_json(client, "passkey_sign_in_complete", answer)

    assert response.status_code == 403
    assert response.json()["code"] == "credential_user_mismatch"
    assert "_auth_user_id" not in client.session
    assert f"staff user {operator.pk}: credential_user_mismatch" in caplog.text
    assert b64url(raw) not in caplog.text


class VerifiedAuthentication(WebAuthnHelper):
    """The library's helper with the authenticator's signature taken as checked."""

    def authenticate_complete(self, user, state, data):
        credential = WebAuthnCredential.objects.get(user=user)
        credential.set_last_used_timestamp(commit=True)
        return credential


def test_a_passkey_marks_the_session_verified_as_a_code_does(client, settings, operator):
    settings.OTP_WEBAUTHN_HELPER_CLASS = f"{__name__}.VerifiedAuthentication"
    passkey = PasskeyFactory(user=operator)
    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})
    post_json(client, "passkey_sign_in_begin")

    response = post_json(client, "passkey_sign_in_complete", {})

    assert response.status_code == 200
    assert response.json()["redirect_url"] == reverse("portal:staff_home")
    assert client.session[DEVICE_ID_SESSION_KEY] == passkey.persistent_id
    assert isinstance(client.session[LAST_ACTIVITY_KEY], int)
    membership = StaffMembership.objects.get(user=operator)
    assert client.get(reverse("portal:dashboard", args=[membership.bank.slug])).status_code == 200


def test_a_passkey_sign_in_is_signed_out_when_idle_like_any_other(client, settings, operator):
    settings.OTP_WEBAUTHN_HELPER_CLASS = f"{__name__}.VerifiedAuthentication"
    PasskeyFactory(user=operator)
    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})
    post_json(client, "passkey_sign_in_begin")
    post_json(client, "passkey_sign_in_complete", {})
    session = client.session
    session[LAST_ACTIVITY_KEY] -= 16 * 60
    session.save()

    response = client.get(ACCOUNT)

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_an_answer_without_a_challenge_is_refused(client, settings, operator):
    settings.OTP_WEBAUTHN_HELPER_CLASS = f"{__name__}.VerifiedAuthentication"
    PasskeyFactory(user=operator)
    client.post("/staff/login/", {"username": operator.username, "password": PASSWORD})

    response = post_json(client, "passkey_sign_in_complete", {})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_state"
    assert "_auth_user_id" not in client.session
