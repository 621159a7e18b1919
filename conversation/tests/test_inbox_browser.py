"""An operator answers a customer from the agent inbox, in headless Chromium, and the reply
appears in the sandbox's Messenger chat view; a fraud denial goes to the top of the inbox
with its alert in the thread, and a reply to a customer who stopped sharing needs the
operator's confirmation. axe-core checks the inbox pages on the way.

Screenshots go to `BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from conversation.models import (
    CannedReply,
    Conversation,
    ConversationMessage,
    ConversationNote,
)
from conversation.tests.test_conversation_live import outbound, say
from core.tests.accessibility import axe_violations, describe
from linking.models import Consent
from linking.services import consent_revoke, customer_actor
from linking.tests.conftest import celery_worker
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery_live import Harbour, wait_for
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import PASSWORD, StaffMembershipFactory, TOTPDeviceFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in_as(tab, live_server, user) -> None:
    device = TOTPDeviceFactory(user=user)  # every staff member signs in with a code
    tab.goto(f"{live_server.url}/staff/login/")
    tab.get_by_label("Username").fill(user.username)
    tab.get_by_label("Password").fill(PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_label("6-digit code").fill(totp_code(device))
    tab.get_by_role("button", name="Sign in").click()
    tab.get_by_role("button", name="Sign out").wait_for()


def no_blocking_violations(tab) -> None:
    found = axe_violations(tab)
    assert found == [], describe(found)


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
            assert "Ana Souza" in rows.nth(0).inner_text()  # waiting longest first
            assert "Bruno Costa" in rows.nth(1).inner_text()
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


def test_a_fraud_denial_goes_to_the_top_with_its_alert_and_a_customer_who_stopped_sharing_needs_a_confirmation(  # noqa: E501
    live_server, browser, settings
):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    harbour = Harbour(live_server)
    card, ana = harbour.linked_customer("Ana Souza")
    _, bruno = harbour.linked_customer("Bruno Costa")
    _, carla = harbour.linked_customer("Carla Dias")
    operator = StaffMembershipFactory(
        bank=harbour.bank, role=StaffMembership.Role.OPERATOR, user__username="marta"
    ).user
    admin = StaffMembershipFactory(
        bank=harbour.bank, role=StaffMembership.Role.ADMIN, user__username="sam"
    ).user
    reviewer = StaffMembershipFactory(
        bank=harbour.bank, role=StaffMembership.Role.ADMIN, user__username="ines"
    ).user
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    try:
        with celery_worker():
            # Bruno asked for help first; Ana then says a card payment was not hers.
            say(harbour, bruno, "I need help with my statement, can I talk to a person?")
            assert wait_for(lambda: Conversation.objects.filter(psid=bruno, needs_person=True))
            harbour.post_events(event_payload("fraud.alert", account=card))
            (no,) = wait_for(
                lambda: [
                    q
                    for m in outbound(harbour, ana)
                    for q in m["body"].get("quick_replies") or []
                    if q["payload"].startswith("FRAUD_NO:")
                ]
            )
            say(harbour, ana, no["title"], payload=no["payload"])
            assert wait_for(
                lambda: Conversation.objects.filter(psid=ana, reason="fraud_denied").exists()
            )
            # Carla asked for a person, then stopped sharing.
            say(harbour, carla, "Can someone call me about my card?")
            assert wait_for(lambda: Conversation.objects.filter(psid=carla, needs_person=True))
            consent = Consent.objects.get(psid=carla)
            consent_revoke(
                consent=consent,
                actor=customer_actor(consent.customer),
                reason="Stopped sharing from the dashboard",
            )

            # Bruno has waited 25 minutes: longer than Ana, and past the 15-minute target.
            ConversationMessage.objects.filter(conversation__psid=bruno, direction="in").update(
                created_at=timezone.now() - timedelta(minutes=25)
            )
            # An admin writes a canned reply for the agents.
            admin_tab = context.new_page()
            admin_tab.set_default_timeout(15_000)
            sign_in_as(admin_tab, live_server, admin)
            admin_tab.get_by_role("link", name="Agent inbox").click()
            admin_tab.get_by_role("link", name="Reply target and canned replies").click()
            admin_tab.get_by_label("Language").fill("en")
            admin_tab.get_by_label("Title").fill("Payment disputed")
            admin_tab.get_by_label("Reply text").fill(
                "Thank you, we have stopped that payment and are checking it with you."
            )
            admin_tab.get_by_role("button", name="Add the reply").click()
            admin_tab.get_by_text("Canned reply saved as a draft").wait_for()
            admin_tab.locator("#canned-drafts", has_text="Payment disputed").wait_for()
            no_blocking_violations(admin_tab)
            screenshot(admin_tab, "inbox-settings")
            admin_tab.get_by_role("button", name="Sign out").click()
            # A second admin reads the draft and approves it: agents are offered it now.
            sign_in_as(admin_tab, live_server, reviewer)
            admin_tab.get_by_role("link", name="Agent inbox").click()
            admin_tab.get_by_role("link", name="Reply target and canned replies").click()
            admin_tab.locator("#canned-drafts").get_by_role("link").first.click()
            admin_tab.get_by_text("we have stopped that payment").first.wait_for()
            no_blocking_violations(admin_tab)
            admin_tab.get_by_role("button", name="Approve and make live").click()
            admin_tab.get_by_text("is approved").wait_for()
            admin_tab.get_by_role("link", name="Canned reply “Payment disputed” (en)").click()
            admin_tab.locator("#canned-replies", has_text="Payment disputed").wait_for()
            admin_tab.get_by_role("button", name="Sign out").click()
            admin_tab.close()

            sign_in_as(tab, live_server, operator)
            tab.get_by_role("link", name="Agent inbox").click()
            rows = tab.locator("#inbox tbody tr")
            rows.nth(2).wait_for()
            carla_row = tab.locator("#inbox tbody tr", has_text="Carla Dias").inner_text()
            assert "Stopped sharing" in carla_row
            bruno_row = tab.locator("#inbox tbody tr", has_text="Bruno Costa").inner_text()
            assert "25 min" in bruno_row and "Over target" in bruno_row
            first = rows.nth(0).inner_text()
            assert "Ana Souza" in first and "Urgent" in first and "Denied a card payment" in first
            order = [rows.nth(i).inner_text().split("\t")[0] for i in range(3)]
            assert order.index("Ana Souza") < order.index("Bruno Costa")
            no_blocking_violations(tab)
            screenshot(tab, "inbox-triage-list")

            tab.get_by_role("link", name="Ana Souza").click()
            alert = tab.locator("#answered-notification")
            alert.get_by_role("heading", name="The alert the customer answered").wait_for()
            shown = alert.inner_text()
            assert "Fraud alert" in shown and "No, it wasn" in shown
            assert "ELECTRO-WORLD ONLINE" in shown and "9012" in shown
            canned = tab.get_by_label("Canned reply", exact=True)
            canned.select_option(label="Payment disputed (en)")
            tab.get_by_role("button", name="Use in the reply").click()
            reply_box = tab.get_by_role("textbox", name="Reply:")
            assert reply_box.input_value().startswith("Thank you, we have stopped that payment")
            reply_box.fill("")
            tab.get_by_label("Internal note").fill("Card blocked by phone at 10:05.")
            tab.get_by_role("button", name="Add note").click()
            tab.get_by_text("Note added").wait_for()
            tab.locator("#thread li.note", has_text="Card blocked by phone").wait_for()
            no_blocking_violations(tab)
            screenshot(tab, "inbox-triage-alert")

            tab.get_by_role("link", name="← Agent inbox").click()
            tab.get_by_role("link", name="Carla Dias").click()
            banner = tab.locator("#consent-ended")
            banner.wait_for()
            assert "The customer stopped sharing." in banner.inner_text()
            tab.get_by_role("textbox", name="Reply:").fill("I've blocked the card ending 1053")
            tab.get_by_role("button", name="Send reply").click()
            tab.get_by_text("Tick “I confirm this reply is needed").wait_for()
            assert not ConversationMessage.objects.filter(author="agent").exists()
            no_blocking_violations(tab)
            screenshot(tab, "inbox-consent-ended")

            tab.get_by_role("textbox", name="Reply:").fill("We are here if you need us.")
            tab.get_by_label(
                "I confirm this reply is needed although the customer stopped sharing"
            ).check()
            tab.get_by_role("button", name="Send reply").click()
            tab.get_by_text("Reply queued").wait_for()

        (reply,) = ConversationMessage.objects.filter(author="agent")
        assert reply.text == "We are here if you need us." and reply.conversation.psid == carla
        confirmed = AuditEvent.objects.get(action="conversation.agent_replied")
        assert confirmed.details["consent_ended_confirmed"] == consent.pk
        assert ConversationNote.objects.get().text == "Card blocked by phone at 10:05."
        assert CannedReply.objects.get().bank == harbour.bank
        assert not any("10:05" in m["body"].get("text", "") for m in outbound(harbour, ana))
    finally:
        context.close()
