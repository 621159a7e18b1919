"""A second Messenger account linked to Ana's bank account, as it would happen: the consent
screen names each Messenger account, Ana's first chat hears of the new link, and her tap
on "That wasn't me" in the sandbox chat ends it. Headless Chromium on the real pages, the
sandbox's Messenger, its webhooks, and a real worker; on a phone and on a desktop, in
English and in French."""

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
DESKTOP = {"width": 1280, "height": 800}
# What Ana reads and taps, in her language.
WORDS = {
    "en": {
        "username": "Username",
        "password": "Password",
        "log_in": "Log in",
        "recipient": "Updates will go to the Messenger account of {name} "
        "If that is not you, choose Deny.",
        "balances": "Balances",
        "allow": "Allow",
        "notice": "another Messenger account (Max M.) was linked",
        "not_me": "That wasn't me",
        "ended": "no longer receives anything",
    },
    "fr": {
        "username": "Identifiant",
        "password": "Mot de passe",
        "log_in": "Se connecter",
        "recipient": "Les notifications seront envoyées au compte Messenger de {name} "
        "Si ce n'est pas vous, choisissez Refuser.",
        "balances": "Soldes",
        "allow": "Autoriser",
        "notice": "un autre compte Messenger (Max M.) a été associé",
        "not_me": "Ce n'était pas moi",
        "ended": "ne reçoit plus rien",
    },
}


def new_tab(browser, device: str, language: str):
    """A tab on a phone (as Messenger opens the pages) or a desktop, in `language`."""
    options = {"locale": "fr-FR"} if language == "fr" else {}
    if device == "phone":
        options.update(viewport=PHONE, is_mobile=True, has_touch=True)
    else:
        options.update(viewport=DESKTOP)
    context = browser.new_context(**options)
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    return context, tab


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


def allow_as_ana(
    browser, location: str, expected_recipient: str, shot: str, device: str, language: str
) -> None:
    words = WORDS[language]
    context, tab = new_tab(browser, device, language)
    tab.goto(location)
    tab.get_by_label(words["username"]).fill("ana")
    tab.get_by_label(words["password"]).fill("open sesame 42")
    tab.get_by_role("button", name=words["log_in"]).click()
    recipient = tab.locator("#recipient")
    recipient.wait_for()
    assert recipient.inner_text() == words["recipient"].format(name=expected_recipient)
    screenshot(tab, shot)
    tab.get_by_label("Everyday account").check()
    tab.get_by_label(words["balances"]).check()
    tab.get_by_role("button", name=words["allow"]).click()
    tab.get_by_role("heading", name="Account linked").wait_for()  # the sandbox's page
    context.close()


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_that_wasnt_me_in_the_first_chat_ends_a_second_link(
    live_server, harbour, browser, worker, device, language
):
    _, integration, customer = harbour
    customer.locale = language
    customer.save()
    words = WORDS[language]
    # The README's tour shows the English phone; the others keep their own names.
    suffix = "" if (device, language) == ("phone", "en") else f"-{device}-{language}"
    ana, first_location = messenger_user(live_server, integration, "Ana Souza")
    allow_as_ana(
        browser,
        first_location,
        "Ana S.",
        f"new-link-consent-names-the-account{suffix}",
        device,
        language,
    )
    first = wait_for(lambda: Consent.objects.filter(psid=ana, status="authorised").first())
    assert first is not None and first.messenger_name == "Ana S."

    other, second_location = messenger_user(live_server, integration, "Max Mustermann")
    allow_as_ana(
        browser,
        second_location,
        "Max M.",
        f"new-link-consent-second-account{suffix}",
        device,
        language,
    )
    second = wait_for(lambda: Consent.objects.filter(psid=other, status="authorised").first())
    assert second is not None and second.customer == customer

    context, chat = new_tab(browser, device, language)
    chat.goto(f"{live_server.url}/sandbox/chat/{integration.page_id}/{ana}/")
    notice = chat.locator(".sb-msg.out", has_text=words["notice"])
    notice.wait_for()
    screenshot(chat, f"new-link-notice-in-the-first-chat{suffix}")

    notice.get_by_role("button", name=words["not_me"]).click()

    chat.locator(".sb-msg.out", has_text=words["ended"]).wait_for()
    screenshot(chat, f"new-link-ended-by-that-wasnt-me{suffix}")
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
