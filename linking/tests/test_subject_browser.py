"""In headless Chromium: an auditor sees what was sent under a link and downloads a
customer's data; an admin erases it. Screenshots go to `BANKSIDE_SCREENSHOT_DIR`."""

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from linking.models import Consent, ConsentEvent, Customer
from linking.tests.factories import AccountFactory, CustomerFactory
from notifications.models import DeliveryAttempt, Notification
from notifications.tests.factories import EventFactory
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


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seed():
    """Ada, linked, with a fraud alert read and a balance update that Messenger refused."""
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    ada = CustomerFactory(bank=bank, external_id="cu-ada", name="Ada Lovelace")
    card = AccountFactory(customer=ada, kind="credit_card", last4="9012", name="Visa card")
    now = timezone.now()
    consent = Consent.objects.create(
        bank=bank,
        customer=ada,
        status=Consent.Status.AUTHORISED,
        scopes=["balances", "fraud_alerts"],
        purpose="Account updates in Messenger",
        duration_days=90,
        page_id="1029384756",
        psid="5550001",
        granted_at=now - timedelta(days=3),
        expires_at=now + timedelta(days=87),
        linked_at=now - timedelta(days=3),
    )
    consent.accounts.set([card])
    ConsentEvent.objects.create(
        consent=consent,
        to_status="authorised",
        actor=ConsentEvent.Actor.CUSTOMER,
        reason="Allowed on the consent screen",
    )
    for n, (kind, state, categories) in enumerate(
        [("fraud.alert", "read", ["fraud_alerts"]), ("balance.updated", "dead", ["balances"])]
    ):
        event = EventFactory(account=card, type=kind, event_id=f"evt-{n}")
        sent = now - timedelta(hours=5 - n)
        notification = Notification.objects.create(
            bank=bank,
            event=event,
            consent=consent,
            account=card,
            event_type=kind,
            page_id=consent.page_id,
            psid=consent.psid,
            sequence=n + 1,
            state=state,
            reason="" if state == "read" else "refused",
            locale="en",
            text="Was this you? 49.99 EUR at ELECTRO-WORLD" if n == 0 else "Balance: 10.00 EUR",
            data_categories=categories,
            attempts=1,
            form="update",
            created_at=sent,
            sent_at=sent if state == "read" else None,
            delivered_at=sent + timedelta(seconds=2) if state == "read" else None,
            read_at=sent + timedelta(minutes=4) if state == "read" else None,
        )
        DeliveryAttempt.objects.create(
            notification=notification,
            number=1,
            started_at=sent,
            outcome="sent" if state == "read" else "bad_request",
        )
    auditor = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.AUDITOR).user
    admin = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user
    return bank, ada, auditor, admin


def sign_in(tab, base: str, username: str, code: str | None = None) -> None:
    tab.goto(f"{base}/staff/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    if code is not None:
        tab.get_by_label("6-digit code").fill(code)
        tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("button", name="Sign out").wait_for()


def test_an_auditor_downloads_a_customers_data_and_an_admin_erases_it(live_server, browser):
    bank, ada, auditor, admin = seed()
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    base = live_server.url
    try:
        # Every staff member signs in with a second factor, auditors included.
        sign_in(tab, base, auditor.username, code=totp_code(TOTPDeviceFactory(user=auditor)))
        tab.get_by_role("link", name="Linked accounts").click()
        tab.get_by_role("link", name="Ada Lovelace").click()
        section = tab.locator("#section-notifications-sent")
        section.get_by_role("heading", name="Notifications sent").wait_for()
        text = section.inner_text()
        assert "Fraud alert" in text and "Read" in text and "Dead-lettered" in text
        assert "Fraud alerts" in text and "Balances" in text
        section.scroll_into_view_if_needed()
        screenshot(tab, "auditor-link-notifications")

        tab.get_by_role("link", name="Data-subject request for this customer").click()
        tab.get_by_role("heading", name="Download everything held").wait_for()
        assert tab.get_by_role("heading", name="Erase personal data").count() == 0
        screenshot(tab, "auditor-subject-request")
        with tab.expect_download() as download_info:
            tab.get_by_role("link", name="Download JSON").click()
        document = json.loads(Path(download_info.value.path()).read_text())
        assert document["parts"]["linking.customer"]["customer"]["name"] == "Ada Lovelace"
        sent = document["parts"]["notifications.messages"]["notifications"]
        assert [n["state"] for n in sent] == ["read", "dead"]
        assert AuditEvent.objects.filter(bank=bank, action="subject_data.exported").count() == 1
        context.clear_cookies()

        device = TOTPDeviceFactory(user=admin)
        sign_in(tab, base, admin.username, code=totp_code(device))
        tab.goto(f"{base}/staff/banks/harbour/customers/{ada.pk}/data/")
        tab.get_by_label("Type the customer id to confirm").fill("cu-ada")
        tab.get_by_label("Reason").fill("Erasure request DSR-2026-114")
        screenshot(tab, "auditor-subject-erase")
        tab.get_by_role("button", name="Erase personal data").click()
        tab.get_by_text("Personal data held for Messenger was erased").wait_for()
        screenshot(tab, "auditor-subject-erased")
        assert Customer.objects.get(pk=ada.pk).erased_at is not None
        assert not Notification.objects.exclude(text="").exists()
    finally:
        context.close()
