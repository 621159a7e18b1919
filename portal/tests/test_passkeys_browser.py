"""Staff passkeys in headless Chromium, with Chrome's virtual authenticator standing in for a
phone or laptop (DevTools' WebAuthn domain): an operator signed in with an authenticator
code adds a passkey and names it, signs out, and signs in with password and passkey.
axe-core checks the pages on the way."""

import pytest

from core.tests.accessibility import axe_violations, describe
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    totp_code,
)
from portal.tests.test_staff_browser import new_tab, screenshot  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def passkey_portal(live_server, settings):
    """The live portal as the relying party of its own address (http://localhost:<port>),
    derived the way the settings derive it from PUBLIC_BASE_URL."""
    from bankside.settings.base import passkey_relying_party

    relying_party = passkey_relying_party(live_server.url, require_https=False)
    assert relying_party is not None, live_server.url
    settings.PUBLIC_BASE_URL = live_server.url
    settings.PASSKEYS_ENABLED = True
    settings.OTP_WEBAUTHN_RP_ID = relying_party[0]
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [relying_party[1]]
    return live_server


def virtual_authenticator(tab) -> str:
    """A platform authenticator (like a laptop's fingerprint reader) that always says yes."""
    session = tab.context.new_cdp_session(tab)
    session.send("WebAuthn.enable")
    added = session.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return added["authenticatorId"]


def test_an_operator_adds_a_passkey_and_signs_in_with_it(passkey_portal, new_tab):  # noqa: F811
    from django_otp_webauthn.models import WebAuthnCredential

    bank = BankFactory(name="Harbour Bank", slug="harbour")
    operator = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR).user
    device = TOTPDeviceFactory(user=operator)
    tab = new_tab()
    virtual_authenticator(tab)

    tab.goto(f"{passkey_portal.url}/staff/login/")
    tab.get_by_label("Username").fill(operator.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_label("6-digit code").fill(totp_code(device))
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("heading", name="Harbour Bank").wait_for()

    # The account page: no passkey yet; adding one asks the authenticator, then for a name.
    tab.goto(f"{passkey_portal.url}/staff/account/")
    tab.get_by_text("You have no passkeys.").wait_for()
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    tab.get_by_role("button", name="Add a passkey").click()
    tab.get_by_role("heading", name="Name your passkey").wait_for()
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    tab.get_by_label("Passkey name").fill("Work laptop")
    tab.get_by_role("button", name="Save name").click()
    tab.get_by_text("Your passkey “Work laptop” is ready to use.").wait_for()
    row = tab.get_by_role("row", name="Work laptop")
    assert "Not used yet" in row.inner_text()
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    registered = AuditEvent.objects.get(action="staff.passkey_registered")
    assert registered.actor_label == operator.username

    # Signed out, then in again: the password, then the passkey instead of a code.
    tab.get_by_role("button", name="Sign out").click()
    tab.get_by_label("Username").fill(operator.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_role("heading", name="Or use a passkey").wait_for()
    tab.get_by_label("6-digit code").wait_for()  # the code stays available
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    tab.get_by_role("button", name="Use a passkey").click()
    tab.get_by_role("heading", name="Harbour Bank").wait_for()
    tab.get_by_role("button", name="Sign out").wait_for()
    assert axe_violations(tab) == [], describe(axe_violations(tab))

    passkey = WebAuthnCredential.objects.get(user=operator)
    assert passkey.name == "Work laptop" and passkey.last_used_at is not None
    tab.goto(f"{passkey_portal.url}/staff/account/")
    assert "ago" in tab.get_by_role("row", name="Work laptop").inner_text()
    screenshot(tab, "staff-passkeys")
