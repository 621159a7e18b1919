"""The pages at work in headless Chromium under their Content-Security-Policy.

Every browser test fails on a violation a page reports (the root conftest listens), so
these only drive what the other browser tests do not: the QR code and the charts, the API
docs, the Django admin, and the forms answered with a redirect to another origin (the
consent screen back to Messenger, Messenger's Log In to the bank, the sign-in button on to
the bank's identity provider), which Chromium holds to `form-action`. Messenger and the
identity provider are served by the same live server under another name (127.0.0.1 for
localhost), which the browser treats as another origin.
"""

import base64
import re

import pytest
from django_otp.oath import TOTP
from playwright.sync_api import expect

from linking.models import Consent
from linking.tests import fake_idp
from linking.tests.conftest import harbour, worker  # noqa: F401  (fixtures)
from portal.models import StaffMembership
from portal.tests.factories import (
    PASSWORD,
    BankFactory,
    StaffMembershipFactory,
    TOTPDeviceFactory,
    UserFactory,
    totp_code,
)
from portal.tests.test_access import notification_objects

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def elsewhere(url: str) -> str:
    """The live server's `url` under its other name: another origin to the browser."""
    assert "//localhost:" in url
    return url.replace("//localhost:", "//127.0.0.1:")


def code_for_key(setup_key: str) -> str:
    return f"{TOTP(base64.b32decode(setup_key.replace(' ', ''))).token():06d}"


def test_two_factor_enrolment_and_the_dashboard_charts(live_server, page):
    bank = BankFactory(name="Harbour Bank", slug="harbour", notification_defaults=True)
    notification_objects(bank)  # a dead-lettered notification: the deliveries chart
    admin = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user

    page.goto(f"{live_server.url}/staff/login/")
    page.get_by_label("Username").fill(admin.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()

    page.get_by_role("heading", name="Set up two-factor sign-in").wait_for()
    qr = page.locator("figure.qr svg")
    expect(qr).to_be_visible()
    assert qr.bounding_box()["width"] > 100
    page.get_by_role("button", name="Copy setup key").wait_for()
    page.get_by_label("6-digit code").fill(code_for_key(page.locator("#totp-secret").inner_text()))
    page.get_by_role("button", name="Confirm and continue").click()
    page.get_by_role("heading", name="Save your recovery codes").wait_for()
    expect(page.get_by_role("list", name="Recovery codes").get_by_role("listitem")).to_have_count(
        10
    )
    page.get_by_role("link", name="I have saved them, continue").click()

    page.get_by_role("heading", name="Harbour Bank").wait_for()
    chart = page.locator("svg.chart").first
    expect(chart).to_be_visible()
    assert chart.bounding_box()["height"] > 50
    # The stylesheet applies: the sidebar sits beside the page, not above it.
    sidebar, main = page.locator("aside.sidebar"), page.locator(".workspace-main")
    assert sidebar.bounding_box()["x"] < main.bounding_box()["x"]


def test_the_api_docs_list_the_api_and_try_a_call(live_server, page):
    page.goto(f"{live_server.url}/api/v1/docs/")

    operation = page.locator(".opblock", has=page.locator("[data-path='/api/v1/outcomes']"))
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()

    status = operation.locator(".live-responses-table .response .response-col_status").first
    expect(status).to_have_text("401")
    expect(operation.locator(".live-responses-table")).to_contain_text("Authentication")


def test_the_django_admin(live_server, page):
    root = UserFactory(username="platform", is_superuser=True, is_staff=True)
    device = TOTPDeviceFactory(user=root)
    BankFactory(name="Harbour Bank", slug="harbour")
    page.goto(f"{live_server.url}/staff/login/")
    page.get_by_label("Username").fill("platform")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.get_by_label("6-digit code").fill(totp_code(device))
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Sign out").wait_for()

    page.goto(f"{live_server.url}/platform-admin/portal/bank/")
    page.get_by_role("link", name="Harbour Bank").click()
    page.get_by_role("heading", name="View bank").wait_for()
    theme = page.locator("html").get_attribute("data-theme")
    page.locator("button.theme-toggle").first.click()  # the admin's own script
    expect(page.locator("html")).not_to_have_attribute("data-theme", theme or "auto")


def test_linking_from_messenger_on_another_origin(live_server, harbour, page, worker, settings):  # noqa: F811
    settings.PUBLIC_BASE_URL = live_server.url
    _, integration, _ = harbour
    messenger = elsewhere(live_server.url)
    page.goto(f"{messenger}/sandbox/")
    card = page.locator("section.sb-card", has_text="Harbour Bank")
    card.get_by_label("New Messenger user").fill("Ana Souza")
    card.get_by_role("button", name="Add and open chat").click()

    page.get_by_label("Message").fill("Hello")
    page.get_by_role("button", name="Send", exact=True).click()
    page.locator("li.sb-msg.in", has_text="Hello").wait_for()
    answer = page.locator("li.sb-msg.out").filter(has=page.get_by_role("button", name="Log In"))
    answer.first.get_by_role("button", name="Log In").click()  # to the bank's origin

    page.get_by_role("heading", name="Log in to Harbour Bank").wait_for()
    assert page.url.startswith(f"{live_server.url}/link/harbour/")
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("open sesame 42")
    page.get_by_role("button", name="Log in").click()
    page.get_by_label("Everyday account").check()
    page.get_by_label("Balances").check()
    page.get_by_role("button", name="Allow").click()  # back to Messenger's origin

    page.get_by_role("heading", name="Account linked").wait_for()
    assert page.url.startswith(f"{messenger}/sandbox/link/done")
    page.get_by_role("link", name="Back to the chat").click()
    page.locator("li.sb-msg.out", has_text="You're linked to Harbour Bank").wait_for(timeout=20_000)
    consent = Consent.objects.get(page_id=integration.page_id)
    assert consent.status == Consent.Status.AUTHORISED

    page.goto(f"{live_server.url}/my/harbour/")
    page.get_by_role("heading", name="What you share with Messenger").wait_for()
    page.get_by_role("link", name="Stop sharing").click()
    page.get_by_role("button", name="Stop sharing").click()
    page.get_by_role("heading", name="You have stopped sharing").wait_for()


def test_signing_in_at_an_identity_provider_on_another_origin(live_server, page, settings):
    fake_idp.bank_with_provider(
        settings, site_url=live_server.url, issuer_origin=elsewhere(live_server.url)
    )

    page.goto(f"{live_server.url}/link/harbour/login")
    page.get_by_role("button", name="Continue with Harbour Bank sign-in").click()

    page.get_by_role("heading", name="What you share with Messenger").wait_for()
    assert re.match(rf"{re.escape(live_server.url)}/my/harbour/$", page.url)
    assert fake_idp.state["token_requests"] == [{"pkce_ok": True}]
