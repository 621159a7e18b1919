"""An operator answers a customer from the agent inbox, in headless Chromium, and the reply
appears in the sandbox's Messenger chat view.

Screenshots go to `BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import os
from pathlib import Path

import pytest

from conversation.models import Conversation, ConversationMessage
from conversation.tests.test_conversation_live import say
from linking.tests.conftest import celery_worker
from notifications.tests.test_delivery_live import Harbour, wait_for
from portal.models import StaffMembership
from portal.tests.factories import PASSWORD, StaffMembershipFactory, TOTPDeviceFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_operator_answers_from_the_inbox_and_the_customer_sees_it(
    live_server, browser, settings
):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    harbour = Harbour(live_server)
    _, ana = harbour.linked_customer("Ana Souza")
    _, bruno = harbour.linked_customer("Bruno Costa")
    operator = StaffMembershipFactory(
        bank=harbour.bank, role=StaffMembership.Role.OPERATOR, user__username="marta"
    ).user
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    try:
        with celery_worker():
            say(harbour, ana, "My card was swallowed by the cash machine, can someone call me?")
            assert wait_for(lambda: Conversation.objects.filter(needs_person=True).exists())

            device = TOTPDeviceFactory(user=operator)  # every staff member signs in with a code
            tab.goto(f"{live_server.url}/staff/login/")
            tab.get_by_label("Username").fill(operator.username)
            tab.get_by_label("Password").fill(PASSWORD)
            tab.get_by_role("button", name="Continue").click()
            tab.get_by_label("6-digit code").fill(totp_code(device))
            tab.get_by_role("button", name="Sign in").click()
            tab.get_by_role("button", name="Sign out").wait_for()
            tab.get_by_role("link", name="Agent inbox").click()
            tab.get_by_role("link", name="Ana Souza").wait_for()

            say(harbour, bruno, "I want to talk to a human please")
            tab.get_by_role("link", name="Bruno Costa").wait_for()  # appears without a reload
            rows = tab.locator("#inbox tbody tr")
            assert "Bruno Costa" in rows.nth(0).inner_text()  # newest first
            screenshot(tab, "inbox-list")

            tab.get_by_role("link", name="Ana Souza").click()
            tab.get_by_role("heading", name="What the customer shares").wait_for()
            assert "Credit card •••• 9012" in tab.locator("#customer-summary").inner_text()
            tab.get_by_label("Reply").fill(
                "Hello Ana, this is Marta. I have blocked the card; a new one is on its way."
            )
            tab.get_by_role("button", name="Send reply").click()
            tab.get_by_text("Reply queued").wait_for()
            tab.locator("#thread li.out", has_text="this is Marta").get_by_text("Sent").wait_for()
            tab.get_by_role("button", name="Assign").click()
            tab.get_by_text("Assigned to marta").wait_for()
            screenshot(tab, "inbox-thread")

            chat = context.new_page()
            chat.goto(f"{live_server.url}/sandbox/chat/{harbour.page}/{ana}/")
            bubble = chat.locator("li.sb-msg.out", has_text="this is Marta")
            bubble.wait_for()
            assert "From a person at the bank" in bubble.inner_text()
            screenshot(chat, "inbox-sandbox-chat")

        reply = ConversationMessage.objects.get(author="agent")
        assert reply.state == "sent" and reply.sent_by == operator
        (call,) = [c for c in harbour.message_calls() if c["body"].get("tag") == "HUMAN_AGENT"]
        assert call["status"] == 200 and call["body"]["messaging_type"] == "MESSAGE_TAG"
    finally:
        context.close()
