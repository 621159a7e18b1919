"""A new auditor's walk in headless Chromium at 1,440 px: the audit log read as sentences,
filtered by a customer's name and by a PSID, a raw record opened, a link's page, then
*Verify now*. axe-core checks every page visited; screenshots go to
`BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from core.tests.accessibility import axe_violations, describe
from linking.models import Consent, ConsentEvent
from linking.services.consents import customer_actor
from linking.tests.factories import AccountFactory, CustomerFactory
from notifications.models import DeliveryAttempt, Notification
from notifications.tests.factories import EventFactory
from portal.audit import Actor
from portal.models import AuditEvent, AuditIntegrityCheck, StaffMembership
from portal.services import audit_integrity_check, audit_record
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    totp_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
WIDTH = 1440
PSID = "5550001"


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def seed():
    """Ana Souza linked two accounts, got a fraud alert; an admin issued a key; Max declined."""
    bank = BankFactory(slug="harbour", name="Harbour Bank")
    admin = UserFactory(username="blima", first_name="Bruno", last_name="Lima")
    StaffMembershipFactory(bank=bank, user=admin, role=StaffMembership.Role.ADMIN)
    ana = CustomerFactory(bank=bank, external_id="cu-ana", name="Ana Souza")
    max_ = CustomerFactory(bank=bank, external_id="cu-max", name="Max Mustermann")
    accounts = [
        AccountFactory(customer=ana, kind="checking", last4="1111", name="Everyday account"),
        AccountFactory(customer=ana, kind="credit_card", last4="9012", name="Visa card"),
    ]
    now = timezone.now()
    consent = Consent.objects.create(
        bank=bank,
        customer=ana,
        status=Consent.Status.AUTHORISED,
        scopes=["balances", "transactions"],
        purpose="Account updates in Messenger",
        duration_days=90,
        page_id="1029384756",
        psid=PSID,
        granted_at=now - timedelta(days=2),
        expires_at=now + timedelta(days=88),
        linked_at=now - timedelta(days=2),
    )
    consent.accounts.set(accounts)
    ConsentEvent.objects.create(
        consent=consent,
        to_status="authorised",
        actor=ConsentEvent.Actor.CUSTOMER,
        actor_label="Ana Souza",
        reason="Allowed on the consent screen",
    )
    audit_record(
        actor=customer_actor(ana),
        action="consent.authorised",
        bank=bank,
        target=consent,
        details={
            "scopes": consent.scopes,
            "accounts": [a.external_id for a in accounts],
            "status": "authorised",
            "expires_at": consent.expires_at,
        },
        data_categories=consent.scopes,
    )
    audit_record(
        actor=Actor.staff(admin),
        action="api_key.created",
        bank=bank,
        details={"name": "Core banking", "prefix": "bk_live_3f"},
    )
    audit_record(actor=customer_actor(max_), action="consent.rejected", bank=bank)
    event = EventFactory(account=accounts[1], type="transaction.posted", event_id="evt-1")
    notification = Notification.objects.create(
        bank=bank,
        event=event,
        consent=consent,
        account=accounts[1],
        event_type="transaction.posted",
        page_id=consent.page_id,
        psid=PSID,
        sequence=1,
        state="read",
        locale="en",
        text="Visa card •••• 9012: 49.99 EUR at ELECTRO-WORLD SUPERSTORE BERLIN-MITTE",
        data_categories=["transactions"],
        attempts=1,
        form="update",
        created_at=now - timedelta(hours=3),
        sent_at=now - timedelta(hours=3),
        delivered_at=now - timedelta(hours=3),
        read_at=now - timedelta(hours=2),
    )
    DeliveryAttempt.objects.create(
        notification=notification, number=1, started_at=now - timedelta(hours=3), outcome="sent"
    )
    audit_record(
        actor=Actor.system("delivery worker"),
        action="notification.sent",
        bank=bank,
        target=consent,
        details={"notification": notification.pk, "event_type": "transaction.posted", "psid": PSID},
        data_categories=["transactions"],
    )
    audit_integrity_check(actor=Actor.system("daily integrity check"), trigger="scheduled")
    auditor = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.AUDITOR).user
    return bank, auditor


def accessible(tab) -> None:
    found = axe_violations(tab)
    assert found == [], f"{tab.url}:\n{describe(found)}"


def fits(tab) -> None:
    """Nothing makes the page scroll sideways: wide content scrolls inside its own box."""
    overflow = tab.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{tab.url} is {overflow}px wider than the window"


def tables_fit(tab) -> None:
    """At this width every table fits its box: nothing to scroll sideways at all."""
    wide = tab.evaluate(
        """() => [...document.querySelectorAll('.scroll-box, .table-card')]
            .filter(box => box.scrollWidth > box.clientWidth)
            .map(box => box.getAttribute('aria-label') || box.id || box.className)"""
    )
    assert wide == [], f"{tab.url}: these scroll sideways at {WIDTH}px: {wide}"


def test_an_auditor_reads_filters_and_verifies_the_audit_log(live_server, browser):
    bank, auditor = seed()
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
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
        accessible(tab)

        # The skip link is the first thing the keyboard reaches, and leads into the page.
        tab.keyboard.press("Tab")
        skip = tab.get_by_role("link", name="Skip to main content")
        assert skip.evaluate("link => link === document.activeElement")
        assert skip.bounding_box()["y"] >= 0
        tab.keyboard.press("Enter")
        assert tab.evaluate("() => document.activeElement.id") == "main"

        tab.get_by_role("link", name="Audit log", exact=True).click()
        tab.get_by_role("heading", name="Timeline").wait_for()
        timeline = tab.get_by_role("region", name="Audit entries")
        assert "Bruno Lima issued the API key “Core banking”." in timeline.inner_text()
        accessible(tab)
        fits(tab)

        tab.get_by_label("Who").fill("Ana Souza")
        tab.get_by_role("button", name="Filter").click()
        rows = timeline.locator("tbody tr")
        rows.first.wait_for()
        assert rows.count() == 1
        until = f"{(timezone.now() + timedelta(days=88)):%b %Y}"
        sentence = rows.first.locator(".sentence").inner_text()
        assert sentence.startswith("Ana Souza allowed balances and transactions for 2 accounts")
        assert until in sentence
        rows.first.get_by_text("Raw record").click()
        raw = rows.first.locator("pre.raw-json")
        raw.wait_for()
        assert '"scopes": [' in raw.inner_text() and '"cu-ana"' not in sentence
        accessible(tab)
        fits(tab)
        screenshot(tab, "auditor-audit-log")
        rows.first.get_by_role("link", name="consent.authorised").click()
        tab.get_by_role("heading", name="Audit entry #1: consent.authorised").wait_for()
        assert tab.locator("p.sentence").inner_text().startswith("Ana Souza allowed balances")
        accessible(tab)
        tab.go_back()

        # A PSID typed in finds the entries that hold only its pseudonym.
        tab.get_by_label("Who").fill("")
        tab.get_by_label("Messenger id (PSID)").fill(PSID)
        tab.get_by_role("button", name="Filter").click()
        tab.get_by_text("was sent to the customer on Messenger").wait_for()
        assert rows.count() == 1
        assert PSID not in rows.first.locator("pre.raw-json").inner_text()

        # Filters are picked, not typed: the action from a list, the dates from a picker.
        tab.get_by_label("Messenger id (PSID)").fill("")
        tab.get_by_label("Action").select_option(label="Consent rejected")
        tab.get_by_label("From (UTC)").fill(f"{timezone.now():%Y-%m-%d}")
        tab.get_by_role("button", name="Filter").click()
        tab.get_by_text("Max Mustermann declined to share anything.").wait_for()
        assert rows.count() == 1

        tab.get_by_role("link", name="Linked accounts").click()
        tab.get_by_role("link", name="Ana Souza").click()
        tab.get_by_role("heading", name="Timeline").wait_for()
        tab.get_by_role("region", name="Notifications sent, table").wait_for()
        fits(tab)
        tables_fit(tab)
        accessible(tab)
        screenshot(tab, "auditor-link-page")

        tab.get_by_role("link", name="Audit integrity").click()
        tab.get_by_text("Admins and auditors may press").wait_for()
        accessible(tab)
        tab.get_by_role("button", name="Verify now").click()
        tab.get_by_text("Verified 1 chain(s): intact.").wait_for()
        accessible(tab)
        fits(tab)
        screenshot(tab, "auditor-verify-now")
        check = AuditIntegrityCheck.objects.filter(trigger="manual").get()
        assert check.intact and check.requested_by == auditor.username
        entry = AuditEvent.objects.filter(bank=bank).order_by("-seq").first()
        assert (entry.action, entry.actor_id) == ("audit.integrity_verified", str(auditor.pk))

        tab.get_by_role("link", name="Audit log", exact=True).click()
        tab.get_by_text("verified the audit chain: intact").wait_for()

        # On a narrow window, whatever scrolls sideways can be reached by the keyboard.
        tab.set_viewport_size({"width": 700, "height": 900})
        for name in ("Audit log", "Staff", "Linked accounts"):
            tab.get_by_role("link", name=name, exact=True).click()
            tab.wait_for_load_state()
            unreachable = tab.evaluate(
                """() => [...document.querySelectorAll('.table-card, .scroll-box')]
                    .filter(box => box.scrollWidth > box.clientWidth && box.tabIndex < 0)
                    .map(box => box.className)"""
            )
            assert unreachable == [], f"{tab.url}: {unreachable}"
            accessible(tab)
    finally:
        context.close()
