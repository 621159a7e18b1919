"""Staff security in headless Chromium: an admin issues a key limited to two scopes and an
office network and rolls it with a one-hour overlap, both keys working and listed with their
last use; an operator enrols, saves recovery codes and signs in with one. axe-core checks
the pages."""

import pytest
from rest_framework.test import APIClient

from core.tests.accessibility import axe_violations, describe
from portal.models import ApiKey, AuditEvent, StaffMembership
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    totp_code,
)
from portal.tests.test_staff_browser import new_tab, screenshot  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def status_of(secret: str, path: str, address: str = "203.0.113.10") -> int:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client.get(path, REMOTE_ADDR=address).status_code


def test_an_admin_issues_a_scoped_key_and_rolls_it_with_an_overlap(live_server, new_tab):  # noqa: F811
    bank = BankFactory(name="Harbour Bank", slug="harbour")
    admin = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user
    device = TOTPDeviceFactory(user=admin)
    tab = new_tab()
    tab.goto(f"{live_server.url}/staff/login/")
    tab.get_by_label("Username").fill(admin.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_label("6-digit code").fill(totp_code(device))
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("button", name="Sign out").wait_for()

    # A key for the outcome reader: two scopes, one office network, no expiry.
    tab.get_by_role("link", name="API keys", exact=True).click()
    tab.get_by_label("Key name").fill("Outcome reader")
    tab.get_by_label("customers:write", exact=False).uncheck()
    tab.get_by_label("events:write", exact=False).uncheck()
    tab.get_by_label("Allowed source addresses (optional)").fill("203.0.113.0/24")
    tab.get_by_role("button", name="Create key").click()
    old_secret = tab.locator("#reveal-value").inner_text().strip()
    assert status_of(old_secret, "/api/v1/outcomes") == 200
    assert status_of(old_secret, "/api/v1/events/evt-1") == 404  # events:read: allowed
    assert status_of(old_secret, "/api/v1/outcomes", address="198.51.100.7") == 403
    old = ApiKey.objects.get(bank=bank)
    assert old.scopes == ["events:read", "outcomes:read"]

    # Rolled with a one-hour overlap: the new key is shown once; both work meanwhile.
    tab.reload()
    row = tab.locator(f'tr[data-key="{old.display_prefix}"]')
    row.get_by_label("Old key works for").select_option("1h")
    row.get_by_role("button", name="Roll").click()
    new_secret = tab.locator("#reveal-value").inner_text().strip()
    assert new_secret != old_secret
    assert status_of(new_secret, "/api/v1/outcomes") == 200
    assert status_of(old_secret, "/api/v1/outcomes") == 200
    new = ApiKey.objects.get(rolled_from=old)
    assert new.scopes == old.scopes and new.allowed_networks == ["203.0.113.0/24"]

    tab.reload()
    old_row = tab.locator(f'tr[data-key="{old.display_prefix}"]')
    new_row = tab.locator(f'tr[data-key="{new.display_prefix}"]')
    old_row.get_by_text("Rolling over").wait_for()
    assert f"replaced by {new.display_prefix}" in old_row.inner_text()
    assert "ago" in old_row.inner_text() and "ago" in new_row.inner_text()
    assert new_row.get_by_text("Active").is_visible()
    screenshot(tab, "staff-api-key-rolling")
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    entry = AuditEvent.objects.get(bank=bank, action="api_key.rolled")
    assert entry.actor_label == admin.username


def test_an_operator_enrols_saves_recovery_codes_and_signs_in_with_one(live_server, new_tab):  # noqa: F811
    import base64

    from django_otp.oath import TOTP

    bank = BankFactory(name="Harbour Bank", slug="harbour")
    operator = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR).user
    tab = new_tab()
    tab.goto(f"{live_server.url}/staff/login/")
    tab.get_by_label("Username").fill(operator.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()

    # An operator needs a second factor: enrolment, then the recovery codes, shown once.
    tab.get_by_role("heading", name="Set up two-factor sign-in").wait_for()
    key = base64.b32decode(tab.locator("#totp-secret").inner_text().replace(" ", ""))
    tab.get_by_label("6-digit code").fill(f"{TOTP(key).token():06d}")
    tab.get_by_role("button", name="Confirm and continue").click()
    tab.get_by_role("heading", name="Save your recovery codes").wait_for()
    codes = tab.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    assert codes.count() == 10
    saved = codes.nth(4).inner_text().strip()
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    tab.get_by_role("link", name="I have saved them, continue").click()
    tab.get_by_role("heading", name="Harbour Bank").wait_for()
    tab.get_by_role("button", name="Sign out").click()

    # The phone is lost: a recovery code signs in, once.
    tab.get_by_label("Username").fill(operator.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_role("link", name="Use a recovery code").click()
    assert axe_violations(tab) == [], describe(axe_violations(tab))
    tab.get_by_role("textbox", name="Recovery code").fill(saved)
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_text("You signed in with a recovery code").wait_for()
    tab.get_by_text("9 recovery codes left").wait_for()
    assert AuditEvent.objects.filter(action="staff.recovery_code_used").count() == 1
