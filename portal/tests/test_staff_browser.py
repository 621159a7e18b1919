"""The staff pages in headless Chromium, against the live server with the sandbox as Meta.

One walk through onboarding as the people who do it: a platform admin creates a bank and
invites its admin; the admin joins, enrols an authenticator, signs in with a code, connects
the Page, issues an API key, drafts a policy and a template that the platform admin
approves (four eyes); then an operator and an auditor find the doors they may not open
closed. Screenshots of the main pages go to
`BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import base64
import os
import time
from pathlib import Path

import httpx
import pytest
from django_otp.oath import TOTP

from portal.models import (
    ApiKey,
    AuditEvent,
    Bank,
    MessengerIntegration,
    NotificationPolicy,
    StaffMembership,
    UtilityTemplate,
)
from portal.tests.factories import (
    PASSWORD,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    totp_code,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PAGE_ID = "2718281828"
PAGE_TOKEN = "EAAGbrowserPageToken0123456789abcdef"
APP_SECRET = "browser-app-secret-0123456789abcdef"
ADMIN_PASSWORD = "a long and winding passphrase 42"


@pytest.fixture
def portal(live_server, settings):
    """The live portal, calling the sandbox's Graph API, with the bank's Page registered."""
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    response = httpx.post(
        f"{live_server.url}/sandbox/api/pages",
        json={
            "page_id": PAGE_ID,
            "name": "Harbour Bank Help",
            "access_token": PAGE_TOKEN,
            "app_secret": APP_SECRET,
        },
        timeout=10,
    )
    assert response.status_code == 201, response.text
    return live_server


@pytest.fixture
def new_tab(browser):
    """A fresh browser (own cookies) per person, closed after the test."""
    contexts = []

    def _open():
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        contexts.append(context)
        tab = context.new_page()
        tab.set_default_timeout(10_000)
        return tab

    yield _open
    for context in contexts:
        context.close()


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def code_for_key(setup_key: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app set up with this key shows now."""
    key = base64.b32decode(setup_key.replace(" ", ""))
    totp = TOTP(key)
    totp.time = totp.time + steps_ahead * totp.step
    return f"{totp.token():06d}"


def sign_in(tab, base_url: str, username: str, password: str, code: str | None = None):
    tab.goto(f"{base_url}/staff/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Continue").click()
    if code is not None:
        tab.get_by_label("6-digit code").fill(code)
        tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("button", name="Sign out").wait_for()


def test_a_bank_is_onboarded_and_configured_through_the_staff_pages(portal, new_tab):
    base = portal.url

    # A platform admin signs in with a TOTP code and creates the bank.
    root = UserFactory(username="platform", is_superuser=True, is_staff=True)
    device = TOTPDeviceFactory(user=root)
    platform_tab = new_tab()
    platform_tab.goto(f"{base}/staff/login/")
    platform_tab.get_by_role("heading", name="Staff sign-in").wait_for()
    screenshot(platform_tab, "staff-login")
    sign_in(platform_tab, base, "platform", PASSWORD, code=totp_code(device))

    platform_tab.get_by_role("link", name="New bank").first.click()
    platform_tab.locator("input[name=name]").fill("Harbour Bank")
    platform_tab.locator("input[name=slug]").fill("harbour")
    platform_tab.locator("select[name=timezone]").select_option("Europe/London")
    platform_tab.get_by_role("button", name="Create bank").click()
    platform_tab.get_by_role("heading", name="Invite the first admin of Harbour Bank").wait_for()
    platform_tab.get_by_role("button", name="Create invitation link").click()
    invitation_link = platform_tab.locator("#reveal-value").inner_text().strip()
    assert invitation_link.startswith(f"{base}/staff/invitations/")

    # The bank's admin accepts, enrols an authenticator, and signs in again with a code.
    admin_tab = new_tab()
    admin_tab.goto(invitation_link)
    admin_tab.get_by_label("Username").fill("ana.admin")
    admin_tab.get_by_label("Password", exact=True).fill(ADMIN_PASSWORD)
    admin_tab.get_by_label("Password again").fill(ADMIN_PASSWORD)
    admin_tab.get_by_role("button", name="Create account").click()
    admin_tab.get_by_role("heading", name="Set up two-factor sign-in").wait_for()
    setup_key = admin_tab.locator("#totp-secret").inner_text()
    admin_tab.get_by_label("6-digit code").fill(code_for_key(setup_key))
    admin_tab.get_by_role("button", name="Confirm and continue").click()
    admin_tab.get_by_role("heading", name="Save your recovery codes").wait_for()
    admin_tab.get_by_role("link", name="I have saved them, continue").click()
    admin_tab.get_by_role("heading", name="Harbour Bank").wait_for()
    admin_tab.get_by_role("button", name="Sign out").click()
    sign_in(
        admin_tab, base, "ana.admin", ADMIN_PASSWORD, code=code_for_key(setup_key, steps_ahead=1)
    )
    admin_tab.get_by_role("heading", name="Harbour Bank").wait_for()

    # Page credentials, then the connection check against the sandbox.
    admin_tab.get_by_role("link", name="Page credentials").click()
    admin_tab.get_by_label("Facebook Page ID").fill(PAGE_ID)
    admin_tab.get_by_label("Page access token").fill(PAGE_TOKEN)
    admin_tab.get_by_label("App secret").fill(APP_SECRET)
    admin_tab.get_by_role("button", name="Save credentials").click()
    admin_tab.locator("#reveal-value").wait_for()
    assert PAGE_TOKEN not in admin_tab.content()
    admin_tab.get_by_role("link", name="Messenger integration").click()
    admin_tab.get_by_role("button", name="Check connection").click()
    admin_tab.get_by_text("Connected to Harbour Bank Help. The integration is verified.").wait_for()
    screenshot(admin_tab, "staff-integration")
    bank = Bank.objects.get(slug="harbour")
    assert MessengerIntegration.objects.get(bank=bank).page_name == "Harbour Bank Help"

    # An API key for the core systems, shown once.
    admin_tab.get_by_role("link", name="API keys").click()
    admin_tab.get_by_label("Key name").fill("Core banking (production)")
    admin_tab.get_by_role("button", name="Create key").click()
    assert admin_tab.locator("#reveal-value").inner_text().startswith("bsk_")
    screenshot(admin_tab, "staff-api-keys")
    assert ApiKey.objects.filter(bank=bank, name="Core banking (production)").exists()

    # A policy: large transactions only, and not at night.
    admin_tab.get_by_role("link", name="Notifications").click()
    admin_tab.get_by_role("link", name="Edit Card and account transactions").click()
    admin_tab.get_by_label("Only for amounts of at least").fill("250")
    admin_tab.get_by_label("Quiet hours start").fill("22:00")
    admin_tab.get_by_label("Quiet hours end").fill("07:00")
    admin_tab.get_by_role("button", name="Save draft").click()
    admin_tab.get_by_text("Draft saved as version 2.").wait_for()
    platform_tab.goto(admin_tab.url)  # a second person approves it
    platform_tab.get_by_role("button", name="Approve and make live").click()
    platform_tab.get_by_text("Version 2 is approved").wait_for()
    admin_tab.get_by_role("link", name="Notifications").click()
    row = admin_tab.locator("#policy-transactionposted")
    row.get_by_text("amount is at least 250.00").wait_for()
    row.get_by_text("22:00 to 07:00").wait_for()
    screenshot(admin_tab, "staff-notifications")
    policy = NotificationPolicy.objects.get(bank=bank, event_type="transaction.posted")
    assert policy.min_amount == 250 and policy.has_quiet_hours

    # A template, previewed live as it is typed, masking included.
    admin_tab.get_by_role("link", name="Message templates").click()
    admin_tab.get_by_role("link", name="Edit Card and account transactions in en").click()
    editor = admin_tab.get_by_role("textbox", name="Message text")
    editor.fill("Hi {customer_first_name}: {amount} at {merchant}. ")
    editor.press_sequentially("{description}")
    preview = admin_tab.locator("#template-preview")
    preview.get_by_text("Hi Ana: -€42.50 at Café Lumière.").wait_for()
    assert preview.inner_text() == (
        "Hi Ana: -€42.50 at Café Lumière. Contactless payment, card •••• 4821"
    )
    editor.press_sequentially(" {nickname}")
    admin_tab.get_by_text("Unknown placeholder {nickname}.").wait_for()
    editor.fill("Hi {customer_first_name}: {amount} at {merchant}. {description}")
    admin_tab.locator("#template-form[data-preview-state=ready]").wait_for()
    admin_tab.get_by_role("button", name="Save draft").click()
    admin_tab.get_by_text("Draft saved as version 2.").wait_for()

    # The admin cannot approve their own draft: the platform admin, a second person, does.
    assert admin_tab.get_by_role("button", name="Approve and make live").count() == 0
    draft_url = admin_tab.url
    platform_tab.goto(draft_url)
    platform_tab.get_by_role("button", name="Approve and make live").click()
    platform_tab.get_by_text("Version 2 is approved").wait_for()
    admin_tab.get_by_role("link", name="Card and account transactions · English (en)").click()

    # Registered with Meta as a utility template, then approved a second later.
    admin_tab.get_by_role("button", name="Register with Meta").click()
    admin_tab.locator("#utility-status", has_text="Pending review").wait_for()
    deadline = time.monotonic() + 10  # the sandbox reviews a template a second after creation
    while True:
        time.sleep(0.5)
        with admin_tab.expect_navigation():
            admin_tab.get_by_role("button", name="Refresh status").click()
        status = admin_tab.locator("#utility-status").inner_text()
        if status != "Pending review" or time.monotonic() > deadline:
            break
    assert status == "Approved"
    screenshot(admin_tab, "staff-template-editor")
    utility = UtilityTemplate.objects.get(bank=bank)
    assert utility.param_names == ["customer_first_name", "amount", "merchant", "description"]

    admin_tab.get_by_role("link", name="Dashboard").click()
    admin_tab.get_by_text("Page: Harbour Bank Help").wait_for()
    screenshot(admin_tab, "staff-dashboard")

    # An operator runs the integration but never sees the credentials.
    operator = StaffMembershipFactory(
        bank=bank, role=StaffMembership.Role.OPERATOR, user__username="olu.operator"
    ).user
    operator_tab = new_tab()
    operator_device = TOTPDeviceFactory(user=operator)
    sign_in(operator_tab, base, operator.username, PASSWORD, code=totp_code(operator_device))
    assert operator_tab.get_by_role("link", name="Page credentials").count() == 0
    response = operator_tab.goto(f"{base}/staff/banks/harbour/integration/credentials/")
    assert response.status == 403
    assert PAGE_TOKEN not in operator_tab.content()

    # An auditor reads everything and can change nothing, even by posting directly.
    auditor = StaffMembershipFactory(
        bank=bank, role=StaffMembership.Role.AUDITOR, user__username="aud.auditor"
    ).user
    auditor_tab = new_tab()
    auditor_device = TOTPDeviceFactory(user=auditor)
    sign_in(auditor_tab, base, auditor.username, PASSWORD, code=totp_code(auditor_device))
    auditor_tab.get_by_role("link", name="Notifications").click()
    auditor_tab.get_by_text("amount is at least 250.00").wait_for()
    assert auditor_tab.get_by_role("link", name="Edit Card and account transactions").count() == 0
    auditor_tab.get_by_role("link", name="Message templates").click()
    auditor_tab.get_by_role("link", name="View Card and account transactions in en").click()
    auditor_tab.locator("#template-preview", has_text="card •••• 4821").wait_for()
    assert auditor_tab.locator("textarea").count() == 0
    assert auditor_tab.get_by_role("button", name="Register with Meta").count() == 0
    entries_before = AuditEvent.objects.filter(bank=bank).count()
    status = auditor_tab.evaluate(
        """async (url) => {
            const token = document.querySelector("[name=csrfmiddlewaretoken]").value;
            const body = new URLSearchParams({csrfmiddlewaretoken: token, enabled: ""});
            const response = await fetch(url, {method: "POST", body});
            return response.status;
        }""",
        f"{base}/staff/banks/harbour/notifications/{policy.pk}/",
    )
    assert status == 403
    assert NotificationPolicy.objects.get(pk=policy.pk).enabled
    assert AuditEvent.objects.filter(bank=bank).count() == entries_before
