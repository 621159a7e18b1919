"""A second Messenger account linked to Ana's bank account, as it would happen: the consent
screen names each Messenger account, Ana's first chat hears of the new link, and her tap
on "That wasn't me" in the sandbox chat ends it. Headless Chromium on the real pages, the
sandbox's Messenger, its webhooks, and a real worker."""

import os
import time
from pathlib import Path

import httpx
import pytest

from linking.models import Consent, ConsentEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PHONE = {"width": 390, "height": 844}


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


def sandbox(live_server, path, method="GET", **kwargs):
    response = httpx.request(method, f"{live_server.url}/sandbox/api{path}", timeout=10, **kwargs)
    assert response.status_code < 400, response.text
    return response.json()


def messenger_user(live_server, integration, name: str) -> tuple[str, str]:
    """A Messenger user writes to the Page and taps Log In: (PSID, the bank's page)."""
    page = integration.page_id
    user = sandbox(live_server, f"/pages/{page}/users", "POST", json={"name": name})
    psid = user["psid"]
    sandbox(live_server, f"/pages/{page}/users/{psid}/messages", "POST", json={"text": "hello"})
    started = sandbox(
        live_server,
        f"/pages/{page}/users/{psid}/link",
        "POST",
        json={"url": f"{live_server.url}/link/harbour/"},
    )
    return psid, started["location"]


def allow_as_ana(browser, location: str, expected_recipient: str, shot: str) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    tab.goto(location)
    tab.get_by_label("Username").fill("ana")
    tab.get_by_label("Password").fill("open sesame 42")
    tab.get_by_role("button", name="Log in").click()
    recipient = tab.locator("#recipient")
    recipient.wait_for()
    assert recipient.inner_text() == (
        f"Updates will go to the Messenger account of {expected_recipient} "
        "If that is not you, choose Deny."
    )
    screenshot(tab, shot)
    tab.get_by_label("Everyday account").check()
    tab.get_by_label("Balances").check()
    tab.get_by_role("button", name="Allow").click()
    tab.get_by_role("heading", name="Account linked").wait_for()
    context.close()


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def test_that_wasnt_me_in_the_first_chat_ends_a_second_link(live_server, harbour, browser, worker):
    _, integration, customer = harbour
    ana, first_location = messenger_user(live_server, integration, "Ana Souza")
    allow_as_ana(browser, first_location, "Ana S.", "new-link-consent-names-the-account")
    first = wait_for(lambda: Consent.objects.filter(psid=ana, status="authorised").first())
    assert first is not None and first.messenger_name == "Ana S."

    other, second_location = messenger_user(live_server, integration, "Max Mustermann")
    allow_as_ana(browser, second_location, "Max M.", "new-link-consent-second-account")
    second = wait_for(lambda: Consent.objects.filter(psid=other, status="authorised").first())
    assert second is not None and second.customer == customer

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    chat = context.new_page()
    chat.set_default_timeout(20_000)
    chat.goto(f"{live_server.url}/sandbox/chat/{integration.page_id}/{ana}/")
    notice = chat.locator(".sb-msg.out", has_text="another Messenger account (Max M.) was linked")
    notice.wait_for()
    screenshot(chat, "new-link-notice-in-the-first-chat")

    notice.get_by_role("button", name="That wasn't me").click()

    chat.locator(".sb-msg.out", has_text="no longer receives anything").wait_for()
    screenshot(chat, "new-link-ended-by-that-wasnt-me")
    context.close()
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.status == Consent.Status.REVOKED
    assert first.status == Consent.Status.AUTHORISED
    assert second.events.last().actor == ConsentEvent.Actor.CUSTOMER

    def linked_in_messenger(psid: str) -> bool:
        users = sandbox(live_server, f"/pages/{integration.page_id}/users")["users"]
        return next(u["linked"] for u in users if u["psid"] == psid)

    # Messenger is told: the second account is unlinked there, the first stays linked.
    assert wait_for(lambda: not linked_in_messenger(other))
    assert linked_in_messenger(ana)
