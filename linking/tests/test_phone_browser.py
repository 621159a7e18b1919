"""The customer's pages on a phone (390 by 844 px, where Messenger opens them) and on a desktop,
measured in headless Chromium as a person sees them: what the consent screen shows before
the fold, the size of every tap target, the way back to Messenger, the sign-in form after a
wrong password, the time left of Messenger's Log In, and axe-core's accessibility check."""

import os
import re
import secrets
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.tests.accessibility import axe_violations, describe
from linking import views
from linking.models import Consent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
TAP = 44  # px, the smallest tap target (WCAG 2.5.5, Apple's and Google's guidelines)
# Every visible thing a finger can act on; a checkbox counts by its label, which it fills.
_SMALL_TARGETS = """(tap) => {
  const small = [];
  const all = 'a[href], button, input:not([type=hidden]), select, textarea, summary, '
    + '[tabindex]:not([tabindex="-1"])';
  for (const element of document.querySelectorAll(all)) {
    if (!element.checkVisibility()) continue;
    const label = ['checkbox', 'radio'].includes(element.type) && element.closest('label');
    const box = (label || element).getBoundingClientRect();
    if (box.width + 0.5 < tap || box.height + 0.5 < tap) {
      const size = `${box.width.toFixed(1)} by ${box.height.toFixed(1)}`;
      small.push(`${element.outerHTML.slice(0, 90)}: ${size}`);
    }
  }
  return small;
}"""


def new_page(browser, viewport: dict, **options):
    phone = viewport == PHONE
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, **options)
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    return tab


@pytest.fixture
def phone(browser):
    tab = new_page(browser, PHONE)
    yield tab
    tab.context.close()


def screenshot(tab, name: str) -> None:
    """What the screen shows, unscrolled: a phone's sticky action bar sits where it is seen."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def log_in_from_messenger(tab, live_server, username: str = "ana") -> None:
    """Messenger's Log In button, then the bank's sign-in: the consent screen."""
    token = secrets.token_urlsafe(24)
    done = f"{live_server.url}/sandbox/link/done?account_linking_token={token}"
    tab.goto(f"{live_server.url}/link/harbour/?account_linking_token={token}&redirect_uri={done}")
    sign_in(tab, username, "open sesame 42")
    tab.get_by_role("heading", name="Link Harbour Bank to Messenger?").wait_for()


def sign_in(tab, username: str, password: str) -> None:
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(password)
    tab.get_by_role("button", name="Log in").click()


def small_targets(tab) -> list[str]:
    return tab.evaluate(_SMALL_TARGETS, TAP)


def back_to_messenger(tab, integration) -> None:
    link = tab.get_by_role("link", name="Back to Messenger")
    expect(link).to_have_attribute("href", f"https://m.me/{integration.page_id}")


def bottom(locator) -> float:
    """How far from the top of the page `locator` ends, in CSS pixels."""
    box = locator.bounding_box()
    assert box is not None
    return box["y"] + box["height"] + locator.page.evaluate("() => window.scrollY")


def authorised_consent(integration, customer) -> Consent:
    now = timezone.now()
    consent = Consent.objects.create(
        bank=customer.bank,
        customer=customer,
        status=Consent.Status.AUTHORISED,
        scopes=["balances", "transactions"],
        purpose=views.PURPOSE,
        duration_days=90,
        page_id=integration.page_id,
        psid="5550001",
        granted_at=now,
        expires_at=now + timedelta(days=5),  # ending soon: the renew button shows too
        linked_at=now,
    )
    consent.accounts.set(customer.accounts.all())
    return consent


def test_the_consent_screen_fits_a_phone(live_server, harbour, phone):
    _, integration, _ = harbour
    log_in_from_messenger(phone, live_server, username="Ana")  # as a phone capitalises it

    screen = PHONE["height"] * 1.2
    assert phone.evaluate("() => window.scrollY") == 0
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    for what in [
        phone.get_by_role("button", name="Allow"),
        phone.get_by_role("button", name="Deny"),
        phone.locator("label.c-choice").last,  # what is shared: every choice
        phone.locator(".c-terms dd").first,  # for how long
    ]:
        assert bottom(what) <= screen, what
    allow, deny = (phone.get_by_role("button", name=n).bounding_box() for n in ("Allow", "Deny"))
    assert allow["y"] + allow["height"] <= PHONE["height"]  # in view without scrolling
    assert deny["y"] + deny["height"] <= PHONE["height"]
    expect(phone.locator(".c-timer-left")).to_have_text(re.compile(r"^[0-5]:\d\d left"))
    assert small_targets(phone) == []
    back_to_messenger(phone, integration)
    screenshot(phone, "consent-screen-phone")

    phone.get_by_label("Everyday account").check()
    phone.get_by_label("Balances").check()
    assert phone.locator("input[type=checkbox]:checked").count() == 2


def test_a_wrong_password_keeps_the_username(live_server, harbour, phone):
    _, integration, _ = harbour
    phone.goto(f"{live_server.url}/link/harbour/login")
    username = phone.get_by_label("Username")
    for attribute, value in [
        ("autocapitalize", "none"),
        ("autocorrect", "off"),
        ("spellcheck", "false"),
        ("autocomplete", "username"),
    ]:
        expect(username).to_have_attribute(attribute, value)
    sign_in(phone, "ana", "not the password")

    phone.get_by_text("That username and password don't match").wait_for()
    expect(phone.get_by_label("Username")).to_have_value("ana")
    expect(phone.get_by_label("Password")).to_be_focused()
    assert small_targets(phone) == []
    back_to_messenger(phone, integration)
    screenshot(phone, "login-wrong-password-phone")

    sign_in(phone, "ANA", "open sesame 42")  # usernames match whatever the case
    phone.get_by_role("heading", name="What you share with Messenger").wait_for()


def test_the_dashboard_and_a_problem_page_on_a_phone(live_server, harbour, phone):
    _, integration, customer = harbour
    authorised_consent(integration, customer)
    phone.goto(f"{live_server.url}/link/harbour/login")
    sign_in(phone, "ana", "open sesame 42")
    phone.get_by_role("heading", name="What you share with Messenger").wait_for()
    phone.get_by_role("link", name=re.compile("Keep sharing")).wait_for()
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    assert small_targets(phone) == []
    back_to_messenger(phone, integration)
    screenshot(phone, "customer-dashboard-phone")

    phone.goto(f"{live_server.url}/link/harbour/consent")  # not from Messenger
    phone.get_by_role("heading", name="Start from Messenger").wait_for()
    assert small_targets(phone) == []
    back_to_messenger(phone, integration)


def test_the_log_in_runs_out_and_offers_to_start_again(live_server, harbour, phone, monkeypatch):
    _, integration, _ = harbour
    # Messenger's token lasts 5 minutes; the bank's count of them, shortened.
    monkeypatch.setattr(views, "LINKING_TOKEN_LIFETIME", timedelta(seconds=6))
    log_in_from_messenger(phone, live_server)
    expect(phone.locator(".c-timer-left")).to_have_text(re.compile(r"^0:0\d left to finish"))

    over = phone.locator(".c-timer-over")
    expect(over).to_be_visible(timeout=15_000)
    expect(over.get_by_role("alert")).to_have_text(re.compile("This Log In has expired"))
    restart = over.get_by_role("link", name="Start again in Messenger")
    expect(restart).to_have_attribute("href", f"https://m.me/{integration.page_id}")
    expect(phone.locator(".c-timer-left")).to_be_hidden()
    expect(phone.get_by_role("button", name="Allow")).to_be_disabled()
    assert small_targets(phone) == []
    assert axe_violations(phone) == [], describe(axe_violations(phone))
    screenshot(phone, "consent-expired-phone")

    phone.reload()  # the server says so too
    phone.get_by_role("heading", name="This Log In has expired").wait_for()
    expect(phone.get_by_role("link", name="Start again in Messenger")).to_have_attribute(
        "href", f"https://m.me/{integration.page_id}"
    )


def test_without_scripts_the_consent_screen_says_the_time_left_and_works(
    live_server, harbour, browser
):
    tab = new_page(browser, PHONE, java_script_enabled=False)
    try:
        log_in_from_messenger(tab, live_server)
        expect(tab.locator(".c-timer-left")).to_have_text(
            re.compile(r"Finish linking within 5 minutes")
        )
        expect(tab.locator(".c-timer-over")).to_be_hidden()
        tab.get_by_role("button", name="Deny").click()
        tab.wait_for_url(re.compile("/sandbox/link/done"))
    finally:
        tab.context.close()


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_the_customer_pages_pass_axe(live_server, harbour, browser, viewport):
    _, integration, customer = harbour
    authorised_consent(integration, customer)
    tab = new_page(browser, viewport)
    found = {}
    try:
        tab.goto(f"{live_server.url}/link/harbour/login")
        sign_in(tab, "ana", "wrong")
        tab.get_by_role("alert").wait_for()
        found["login"] = axe_violations(tab)
        tab.goto(f"{live_server.url}/link/harbour/consent")
        tab.get_by_role("heading", name="Start from Messenger").wait_for()
        found["problem"] = axe_violations(tab)
        log_in_from_messenger(tab, live_server)
        found["consent"] = axe_violations(tab)
        tab.goto(f"{live_server.url}/my/harbour/")
        tab.get_by_role("heading", name="What you share with Messenger").wait_for()
        found["dashboard"] = axe_violations(tab)
    finally:
        tab.context.close()
    assert not any(found.values()), "\n".join(
        f"{name}:\n{describe(violations)}" for name, violations in found.items() if violations
    )


def test_axe_runs_in_the_page_and_finds_what_is_wrong(live_server, harbour, page):
    page.goto(f"{live_server.url}/link/harbour/login")
    page.evaluate("() => document.querySelector('main').append(document.createElement('img'))")
    assert "image-alt" in {violation["id"] for violation in axe_violations(page)}


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_french_customer_links_in_french_and_the_pages_pass_axe(
    live_server, harbour, browser, viewport
):
    """The same walk in French: the phone's language before sign-in, the customer's own
    after it, each page checked by axe-core and the consent screen still within reach."""
    _, integration, customer = harbour
    customer.locale = "fr"
    customer.save()
    tab = new_page(browser, viewport, locale="fr-FR")  # Accept-Language: fr-FR
    found = {}
    try:
        token = secrets.token_urlsafe(24)
        done = f"{live_server.url}/sandbox/link/done?account_linking_token={token}"
        tab.goto(
            f"{live_server.url}/link/harbour/?account_linking_token={token}&redirect_uri={done}"
        )
        tab.get_by_role("heading", name="Connectez-vous à Harbour Bank").wait_for()
        expect(tab.locator("html")).to_have_attribute("lang", "fr")
        tab.get_by_label("Identifiant").fill("ana")
        tab.get_by_label("Mot de passe").fill("pas le bon")
        tab.get_by_role("button", name="Se connecter").click()
        expect(tab.get_by_role("alert")).to_have_text(
            "L'identifiant et le mot de passe ne correspondent pas. Veuillez réessayer."
        )
        expect(tab.get_by_label("Identifiant")).to_have_value("ana")
        found["connexion"] = axe_violations(tab)
        tab.get_by_label("Mot de passe").fill("open sesame 42")
        tab.get_by_role("button", name="Se connecter").click()

        tab.get_by_role("heading", name="Associer Harbour Bank à Messenger ?").wait_for()
        expect(tab.locator(".c-timer-left")).to_have_text(
            re.compile(r"^Il reste [0-5]:\d\d pour terminer l'association$")
        )
        expect(tab.locator(".c-terms dd").first).to_have_text(
            re.compile(r"^90 jours, jusqu'au \d{1,2} \S+ 20\d\d\. Nous vous préviendrons")
        )
        assert small_targets(tab) == []
        if viewport == PHONE:
            allow = tab.get_by_role("button", name="Autoriser").bounding_box()
            assert allow["y"] + allow["height"] <= PHONE["height"]  # no scrolling to Allow
            assert bottom(tab.locator("label.c-choice").last) <= PHONE["height"] * 1.2
            screenshot(tab, "consent-screen-phone-fr")
        back = tab.get_by_role("link", name="Retour à Messenger")
        expect(back).to_have_attribute("href", f"https://m.me/{integration.page_id}")
        found["consentement"] = axe_violations(tab)
        tab.get_by_label("Everyday account").check()
        tab.get_by_label("Soldes").check()
        tab.get_by_role("button", name="Autoriser").click()
        tab.wait_for_url(re.compile("/sandbox/link/done"))

        tab.goto(f"{live_server.url}/my/harbour/")
        tab.get_by_role("heading", name="Ce que vous partagez avec Messenger").wait_for()
        expect(tab.get_by_role("link", name="Arrêter le partage")).to_be_visible()
        found["tableau de bord"] = axe_violations(tab)
    finally:
        tab.context.close()
    assert not any(found.values()), "\n".join(
        f"{name}:\n{describe(violations)}" for name, violations in found.items() if violations
    )
