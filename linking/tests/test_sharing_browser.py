"""Managing sharing in headless Chromium, on a phone (390 by 844 px, where Messenger opens
the pages) and on a desktop, in English and in French: the chat's *Manage sharing* pass
opens the dashboard, the customer changes what is shared, renews after signing in with the
bank again, and stops after a confirmation. axe-core finds no serious or critical
violation on any page, every tap target is big enough, and each step is saved as
`tour-9-<step>-<language>-<device>.png` beside the README's tour screenshots."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from core.tests.accessibility import axe_violations, describe
from linking import services
from linking.models import Consent, ConsentVersion
from linking.tests.test_phone_browser import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    authorised_consent,
    new_page,
    small_targets,
)
from portal.models import AuditEvent

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WORDS = {
    "en": {
        "dashboard": "What you share with Messenger",
        "change": "Change what you share",
        "saved": "only what you chose is shared",
        "again": "sign in again",
        "renew": "Keep sharing with Messenger?",
        "renewed": "Your updates continue",
        "stop": "Stop sharing with Messenger?",
        "stopped": "You have stopped sharing",
    },
    "fr": {
        "dashboard": "Ce que vous partagez avec Messenger",
        "change": "Modifier ce que vous partagez",
        "saved": "seul ce que vous avez choisi est partagé",
        "again": "vous reconnecter",
        "renew": "Continuer à partager avec Messenger ?",
        "renewed": "Vos avis continuent",
        "stop": "Arrêter le partage avec Messenger ?",
        "stopped": "Vous avez arrêté le partage",
    },
}


def check(tab, name: str) -> None:
    """No serious or critical accessibility violation, no small tap target, no sideways
    scrolling on a phone; then the screenshot."""
    violations = axe_violations(tab)
    assert violations == [], describe(violations)
    assert small_targets(tab) == []
    width = tab.viewport_size["width"]
    assert tab.evaluate("() => document.documentElement.scrollWidth") <= width
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"tour-9-{name}.png"), full_page=True)


@pytest.mark.parametrize("language", ["en", "fr"])
@pytest.mark.parametrize("device", ["phone", "desktop"])
def test_changing_renewing_and_stopping_sharing(live_server, harbour, browser, language, device):
    _, integration, customer = harbour
    customer.locale = language
    customer.save(update_fields=["locale"])
    consent = authorised_consent(integration, customer)  # ends in 5 days
    words = WORDS[language]
    tab = new_page(browser, PHONE if device == "phone" else DESKTOP)
    suffix = f"{language}-{device}"

    # Manage sharing in the chat answered with a single-use pass: the dashboard opens.
    token = services.dashboard_pass_issue(consent=consent)
    tab.goto(f"{live_server.url}/my/harbour/pass/{token}")
    expect(tab.get_by_role("heading", name=words["dashboard"])).to_be_visible()
    expect(tab.locator("html")).to_have_attribute("lang", language)
    check(tab, f"dashboard-{suffix}")

    # Change: the card and transactions are no longer shared.
    tab.get_by_role("link", name=words["change"]).click()
    expect(tab.get_by_role("heading", name=words["change"])).to_be_visible()
    check(tab, f"change-{suffix}")
    tab.locator("label.c-choice", has_text="9012").locator("input").uncheck()
    tab.locator("input[name=scopes][value=transactions]").uncheck()
    tab.locator("button.c-allow").click()
    expect(tab.locator(".c-done")).to_contain_text(words["saved"])
    expect(tab.locator(".c-accounts")).not_to_contain_text("9012")
    tab.locator(".c-timeline-box summary").click()
    expect(tab.locator(".c-timeline")).to_contain_text("2")
    check(tab, f"changed-{suffix}")
    consent.refresh_from_db()
    assert consent.scopes == ["balances"]
    assert ConsentVersion.objects.filter(consent=consent).count() == 2

    # Renew: the pass from the chat is not enough, the bank's sign-in comes first.
    tab.locator(".c-renew a").click()
    expect(tab.locator(".c-notice")).to_contain_text(words["again"])
    check(tab, f"renew-sign-in-{suffix}")
    tab.locator("input[name=username]").fill("ana")
    tab.locator("input[name=password]").fill("open sesame 42")
    tab.locator("form.c-form button[type=submit]").last.click()
    expect(tab.get_by_role("heading", name=words["renew"])).to_be_visible()
    check(tab, f"renew-{suffix}")
    tab.locator("button.c-allow").click()
    expect(tab.locator(".c-done")).to_contain_text(words["renewed"])
    expect(tab.locator(".c-renew")).to_have_count(0)
    consent.refresh_from_db()
    assert consent.expires_at > timezone.now() + timedelta(days=89)

    # Stop: a page that says what stops, then a clear confirmation.
    tab.locator("a.c-danger").click()
    expect(tab.get_by_role("heading", name=words["stop"])).to_be_visible()
    expect(tab.locator(".c-list")).to_contain_text("4821")
    check(tab, f"stop-{suffix}")
    tab.locator("button.c-danger").click()
    expect(tab.get_by_role("heading", name=words["stopped"])).to_be_visible()
    expect(tab).to_have_url(re.compile(rf"/my/harbour/consents/{consent.pk}/stopped$"))
    check(tab, f"stopped-{suffix}")
    consent.refresh_from_db()
    assert consent.status == Consent.Status.REVOKED
    assert AuditEvent.objects.filter(action="consent.changed", target_id=str(consent.pk)).exists()
    tab.context.close()


def test_manage_sharing_from_the_chats_menu_opens_the_dashboard(
    live_server, harbour, browser, worker, settings
):
    """End to end through the sandbox: the menu bankside sets on the Page, the postback,
    the worker's answer with a single-use button, and the dashboard it opens."""
    from linking.tests.test_link_flow import sandbox
    from messenger import GraphClient
    from portal.audit import Actor
    from portal.services.integration import integration_menu_set

    _, integration, customer = harbour
    settings.PUBLIC_BASE_URL = live_server.url  # the button's link, and Messenger's way to it
    with GraphClient(settings.MESSENGER_GRAPH_API_URL, "v27.0") as graph:
        assert integration_menu_set(
            actor=Actor.system("test"), integration=integration, client=graph
        )
    user = sandbox(
        live_server, f"/pages/{integration.page_id}/users", "POST", json={"name": "Ana Souza"}
    )
    consent = authorised_consent(integration, customer)
    Consent.objects.filter(pk=consent.pk).update(psid=user["psid"])
    tab = new_page(browser, PHONE)

    tab.goto(f"{live_server.url}/sandbox/chat/{integration.page_id}/{user['psid']}/")
    tab.locator(".sb-menu summary").click()
    tab.locator(".sb-menu").get_by_role("button", name="Manage sharing").click()
    answer = tab.locator(".sb-msg.out", has_text="works once")
    expect(answer).to_be_visible(timeout=30_000)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / "tour-9-chat-manage-sharing.png"))
    with tab.expect_popup() as opened:
        answer.get_by_role("link", name="Open my dashboard").click()
    dashboard = opened.value

    expect(dashboard.get_by_role("heading", name=WORDS["en"]["dashboard"])).to_be_visible()
    expect(dashboard.locator(".c-accounts")).to_contain_text("4821")
    tab.context.close()
