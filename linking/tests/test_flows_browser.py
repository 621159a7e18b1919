"""In headless Chromium: a European bank's admin sees that Log In linking does not work
there and offers m.me invitations only. The screenshot goes to `BANKSIDE_SCREENSHOT_DIR`."""

import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from core.tests.accessibility import axe_violations, describe
from linking.models import LinkingFlows
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    totp_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


def test_a_european_bank_turns_log_in_off_and_keeps_m_me_invitations(live_server, browser):
    bank = BankFactory(slug="harbour", name="Harbour Bank", timezone="Europe/Lisbon")
    admin = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user
    device = TOTPDeviceFactory(user=admin)
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        tab.goto(f"{live_server.url}/staff/login/")
        tab.get_by_label("Username").fill(admin.username)
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Continue").click()
        tab.get_by_label("6-digit code").fill(totp_code(device))
        tab.get_by_role("button", name="Sign in").click()
        tab.get_by_role("link", name="Linking flows").click()

        expect(tab.locator("#region-hint")).to_contain_text("Europe/Lisbon")
        assert axe_violations(tab) == [], describe(axe_violations(tab))
        tab.get_by_label("Log In linking from Messenger").uncheck()
        tab.get_by_role("button", name="Save").click()

        expect(tab.get_by_text("the linking flows are updated")).to_be_visible()
        expect(tab.locator("#region-hint")).to_have_count(0)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(SCREENSHOTS / "staff-linking-flows.png"), full_page=True)
        flows = LinkingFlows.objects.get(bank=bank)
        assert (flows.log_in, flows.invitations) == (False, True)
        assert AuditEvent.objects.filter(action="linking_flows.updated").count() == 1
    finally:
        context.close()
