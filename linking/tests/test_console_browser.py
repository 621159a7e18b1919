"""An auditor's walk in headless Chromium: search, a link's timeline, an export, integrity.

Screenshots go to `BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import csv
import io
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from linking.models import Consent, ConsentEvent
from linking.tests.factories import AccountFactory, CustomerFactory
from portal.audit import Actor
from portal.models import AuditEvent, StaffMembership
from portal.services import audit_integrity_check, audit_record
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


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seed():
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    for external_id, name, last4, psid in [
        ("cu-ada", "Ada Lovelace", "1111", "5550001"),
        ("cu-alan", "Alan Turing", "3333", "5550002"),
    ]:
        customer = CustomerFactory(bank=bank, external_id=external_id, name=name)
        account = AccountFactory(customer=customer, last4=last4, name="Everyday account")
        consent = Consent.objects.create(
            bank=bank,
            customer=customer,
            status=Consent.Status.AUTHORISED,
            scopes=["balances", "transactions"],
            purpose="Account updates in Messenger",
            duration_days=90,
            page_id="1029384756",
            psid=psid,
            granted_at=timezone.now(),
            expires_at=timezone.now() + timedelta(days=90),
            linked_at=timezone.now(),
        )
        consent.accounts.set([account])
        for before, after, reason in [
            ("", "awaiting_authorisation", "Log In from Messenger"),
            ("awaiting_authorisation", "authorised", "Allowed on the consent screen"),
        ]:
            ConsentEvent.objects.create(
                consent=consent,
                from_status=before,
                to_status=after,
                actor=ConsentEvent.Actor.CUSTOMER,
                actor_label=name,
                reason=reason,
            )
        audit_record(
            actor=Actor("customer", str(customer.pk), name),
            action="consent.authorised",
            bank=bank,
            target=consent,
            data_categories=consent.scopes,
        )
    audit_integrity_check(actor=Actor.system("daily integrity check"), trigger="scheduled")
    auditor = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.AUDITOR).user
    return bank, auditor


def test_an_auditor_goes_from_search_to_a_timeline_to_an_export(live_server, browser):
    bank, auditor = seed()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    base = live_server.url
    try:
        device = TOTPDeviceFactory(user=auditor)  # every staff member signs in with a code
        tab.goto(f"{base}/staff/login/")
        tab.get_by_label("Username").fill(auditor.username)
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Continue").click()
        tab.get_by_label("6-digit code").fill(totp_code(device))
        tab.get_by_role("button", name="Sign in").click()
        tab.get_by_role("button", name="Sign out").wait_for()

        tab.get_by_role("link", name="Linked accounts").click()
        tab.get_by_label("Customer").fill("ada")
        tab.get_by_role("button", name="Search").click()
        rows = tab.locator("table.table tbody tr")
        rows.first.wait_for()
        assert rows.count() == 1
        screenshot(tab, "auditor-links-search")

        tab.get_by_role("link", name="Ada Lovelace").click()
        tab.get_by_role("heading", name="Timeline").wait_for()
        assert "Allowed on the consent screen" in tab.locator("table.timeline").inner_text()
        screenshot(tab, "auditor-link-timeline")
        assert AuditEvent.objects.filter(bank=bank, action="customer_data.viewed").count() == 1

        tab.go_back()
        with tab.expect_download() as download_info:
            tab.get_by_role("link", name="CSV").click()
        download = download_info.value
        rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
        assert [row["customer_name"] for row in rows] == ["Ada Lovelace"]
        assert AuditEvent.objects.filter(bank=bank, action="links.exported").count() == 1

        tab.get_by_role("link", name="Audit integrity").click()
        tab.get_by_text("Intact").first.wait_for()
        screenshot(tab, "auditor-integrity")
    finally:
        context.close()
