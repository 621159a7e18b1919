"""The link flow and the dashboard revoke, clicked through in headless Chromium."""

import os
from pathlib import Path

import pytest

from linking.models import Consent
from linking.tests.test_link_flow import sandbox, wait_for
from messenger import GraphClient, PageCredentials, builders

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


def test_link_from_the_chat_then_stop_sharing_from_the_dashboard(
    live_server, harbour, page, worker
):
    _, integration, _ = harbour
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    user = sandbox(
        live_server, f"/pages/{integration.page_id}/users", "POST", json={"name": "Ana Souza"}
    )
    psid = user["psid"]
    sandbox(
        live_server,
        f"/pages/{integration.page_id}/users/{psid}/messages",
        "POST",
        json={"text": "Hi, can I get my card alerts here?"},
    )
    creds = PageCredentials(
        integration.page_id, integration.page_access_token, integration.app_secret
    )
    with GraphClient(f"{live_server.url}/sandbox/graph", "v27.0") as graph:
        graph.send(
            creds,
            builders.button_template(
                psid,
                "Log in to Harbour Bank to choose what you get here.",
                [builders.login_button(f"{live_server.url}/link/harbour/")],
            ),
        )

    page.goto(f"{live_server.url}/sandbox/chat/{integration.page_id}/{psid}/")
    # The bank's answer to the customer's message carries a login button too, and may
    # already be in the thread: click the one in the message sent here.
    page.get_by_role("listitem").filter(has_text="choose what you get here").get_by_role(
        "button", name="Log In"
    ).click()
    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill("open sesame 42")
    page.get_by_role("button", name="Log in").click()

    page.get_by_role("heading", name="Link Harbour Bank to Messenger?").wait_for()
    assert not page.locator("input[type=checkbox]:checked").count()  # nothing preselected
    page.get_by_label("Everyday account").check()
    page.get_by_label("Balances").check()
    page.get_by_label("Fraud alerts").check()
    page.screenshot(path=str(SCREENSHOTS / "consent-screen.png"), full_page=True)
    page.get_by_role("button", name="Allow").click()

    page.get_by_role("heading", name="Account linked").wait_for()
    page.get_by_role("link", name="Back to the chat").click()
    page.locator(".sb-msg.out .sb-bubble", has_text="You're linked to Harbour Bank").wait_for(
        timeout=20_000
    )
    consent = Consent.objects.get(psid=psid)
    assert consent.scopes == ["balances", "fraud_alerts"]

    page.goto(f"{live_server.url}/my/harbour/")
    page.get_by_role("heading", name="What you share with Messenger").wait_for()
    page.screenshot(path=str(SCREENSHOTS / "customer-dashboard.png"), full_page=True)
    page.get_by_role("link", name="Stop sharing").click()
    page.get_by_role("button", name="Stop sharing").click()

    page.get_by_role("heading", name="You have stopped sharing").wait_for()
    assert Consent.objects.get(pk=consent.pk).status == Consent.Status.REVOKED
    assert wait_for(lambda: Consent.objects.get(pk=consent.pk).platform_unlinked_at)
