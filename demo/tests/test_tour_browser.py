"""The README's tour, step by step, in headless Chromium against the live portal.

The demo bank is seeded by `seed_demo` itself, events come through the real API with the
demo's key the way `simulate_core` posts them, and a real Celery worker delivers them to
the sandbox standing in for Messenger. Each step writes `tour-<n>-<step>.png` to
`BANKSIDE_SCREENSHOT_DIR` (the README shows the ones in docs/screenshots).
"""

import datetime as dt
import functools
import io
import os
import random
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from demo import keyfile
from demo.roster import (
    BANK_NAME,
    BANK_SLUG,
    CUSTOMER_PASSWORD,
    PAGE_ID,
    STAFF_PASSWORD,
    roster,
)
from demo.seed import totp_codes
from demo.simulator import CoreSimulator, parse_mix
from demo.tests.test_demo_seed import settled
from linking.tests.conftest import celery_worker
from notifications.tests.test_delivery_live import wait_for
from portal.rendering import format_money

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
WAIT_MS = 30_000  # deliveries go through the worker and the sandbox's webhooks
ANA, BEN = roster(2)
EXPECT_DEFAULT_MS = 5_000  # Playwright's own default for `expect`


@pytest.fixture
def patient_expect():
    """Give each `expect` the same generous wait as the tabs, for this test only."""
    expect.set_options(timeout=WAIT_MS)
    yield
    expect.set_options(timeout=EXPECT_DEFAULT_MS)


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"tour-{name}.png"), full_page=True)


def simulate_core(base: str, key_file, *, customers: int, count: int, mix: str, seed: int):
    """Run `manage.py simulate_core` as the README does, and return the events it posted.

    With `--seed` the events are the same every time but for their run id, so a simulator
    seeded alike tells what they were.
    """
    options = {"customers": customers, "count": count, "mix": mix, "seed": seed}
    call_command("simulate_core", url=base, key_file=str(key_file), stdout=io.StringIO(), **options)
    simulator = CoreSimulator(
        customers=roster(customers), mix=parse_mix(mix), fraud_every=25, rng=random.Random(seed)
    )
    return [simulator.next_event() for _ in range(count)]


# What the README's curl command posts (its id and time filled in when it is sent).
FRAUD_ALERT = {
    "type": "fraud.alert",
    "customer_id": ANA.id,
    "account_id": ANA.accounts[1].id,
    "data": {
        "alert_id": "tour-alert",
        "amount": "-1299.00",
        "currency": "EUR",
        "merchant": "LuxWatch Online",
        "card_last4": ANA.accounts[1].last4,
        "location": "Macau",
    },
}


def post_event(base: str, key_file, event: dict) -> dict:
    """`curl -X POST /api/v1/events` with the demo's key, as the README shows."""
    now = dt.datetime.now(dt.UTC)
    event = {**event, "id": f"tour-{now:%H%M%S%f}", "occurred_at": f"{now:%Y-%m-%dT%H:%M:%SZ}"}
    answer = httpx.post(
        f"{base}/api/v1/events",
        json=event,
        headers={"Authorization": f"Bearer {keyfile.read(key_file)}"},
        timeout=20,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["results"][0]["status"] == "accepted", answer.text
    return event


def code_for(username: str) -> str:
    return next(c.code for c in totp_codes() if c.username == username)


def staff_sign_in(tab, base: str, username: str) -> None:
    tab.goto(f"{base}/staff/login/")
    tab.get_by_label("Username").fill(username)
    tab.get_by_label("Password").fill(STAFF_PASSWORD)
    tab.get_by_role("button", name="Continue").click()
    tab.get_by_label("6-digit code").fill(code_for(username))
    tab.get_by_role("button", name="Sign in").click()
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()


def chat_send(chat, text: str) -> None:
    chat.get_by_label("Message").fill(text)
    chat.get_by_role("button", name="Send", exact=True).click()


def bubble(chat, text: str):
    """The bank's message containing `text` in the chat thread."""
    return chat.locator("li.sb-msg.out", has_text=text)


def test_the_readme_tour(live_server, browser, settings, tmp_path, patient_expect):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    base = live_server.url
    key_file = tmp_path / "core-api-key"
    people = []

    def person():
        context = browser.new_context(viewport={"width": 1280, "height": 860})
        people.append(context)
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        return tab

    try:
        with celery_worker():
            call_command(
                "seed_demo", url=base, key_file=str(key_file), no_summary=True, stdout=io.StringIO()
            )
            settled()
            simulate = functools.partial(simulate_core, base, key_file)

            # 1. Ana opens a chat with the bank in the sandbox, taps Log In, signs in with
            # her demo-directory login, chooses what to share, and is back in the chat.
            chat = person()
            chat.goto(f"{base}/sandbox/")
            card = chat.locator("section.sb-card", has_text=BANK_NAME)
            card.get_by_label("New Messenger user").fill(ANA.name)
            card.get_by_role("button", name="Add and open chat").click()
            chat_send(chat, "Hello")
            expect(bubble(chat, "Link your Harbour Bank account")).to_be_visible()
            screenshot(chat, "1-chat-log-in")
            chat.get_by_role("button", name="Log In").click()
            expect(chat.get_by_role("heading", name=f"Log in to {BANK_NAME}")).to_be_visible()
            chat.get_by_label("Username").fill(ANA.username)
            chat.get_by_label("Password").fill(CUSTOMER_PASSWORD)
            chat.get_by_role("button", name="Log in").click()
            expect(
                chat.get_by_role("heading", name="Link Harbour Bank to Messenger?")
            ).to_be_visible()
            for choice in chat.locator("input[name=accounts], input[name=scopes]").all():
                choice.check()
            screenshot(chat, "1-consent")
            chat.get_by_role("button", name="Allow").click()
            expect(chat.get_by_role("heading", name="Account linked")).to_be_visible()
            chat.get_by_role("link", name="Back to the chat").click()
            expect(bubble(chat, f"You're linked to {BANK_NAME}")).to_be_visible()
            expect(chat.get_by_role("button", name="Log Out").first).to_be_visible()
            screenshot(chat, "1-linked")

            # 2. The core posts a transaction and then the new balance: both arrive.
            posted, balance = simulate(
                customers=1, count=2, mix="transaction.posted=1,balance.updated=1", seed=12
            )
            assert (posted["type"], balance["type"]) == ("transaction.posted", "balance.updated")
            # Written as a bank writes it: a payment names its merchant, a transfer its
            # description.
            named = posted["data"].get("merchant") or posted["data"]["description"]
            expect(bubble(chat, named)).to_be_visible()
            told = format_money(balance["data"]["ledger"], balance["data"]["currency"], locale="en")
            update = bubble(chat, "the balance of your account")
            expect(update).to_contain_text(f"•••• {_last4(balance)} is now {told}")
            screenshot(chat, "2-updates")

            # 3. A fraud alert with its quick replies; Ana answers that it wasn't her.
            alert = post_event(base, key_file, FRAUD_ALERT)
            expect(bubble(chat, f"at {alert['data']['merchant']}")).to_be_visible()
            expect(chat.get_by_role("button", name="Yes, it was me")).to_be_visible()
            screenshot(chat, "3-fraud-alert")
            chat.get_by_role("button", name="No, it wasn't me").click()
            answered = bubble(chat, "passed your answer to the Harbour Bank fraud team")
            expect(answered).to_contain_text("+44 20 7946 0018")
            expect(chat.get_by_role("button", name="Yes, it was me")).to_have_count(0)
            screenshot(chat, "3-fraud-answered")

            # 4. She asks for her balance: only masked numbers of the accounts she shares.
            chat_send(chat, "balance")
            balances = bubble(chat, "Your balances:")
            expect(balances).to_be_visible()
            for account in ANA.accounts:
                expect(balances).to_contain_text(f"•••• {account.last4}")
            expect(balances).to_contain_text(f"•••• {_last4(balance)}: {told}")
            screenshot(chat, "4-balance")

            # 5. She asks for a person; an operator answers from the agent inbox.
            chat_send(chat, "talk to a person")
            expect(bubble(chat, "A person from Harbour Bank will answer here")).to_be_visible()
            inbox = person()
            staff_sign_in(inbox, base, "demo-operator")
            inbox.get_by_role("link", name="Fraud answers").click()
            answer = inbox.locator("tbody tr", has_text=ANA.name)
            expect(answer).to_contain_text(f"•••• {_last4(alert)}")
            inbox.get_by_role("link", name="Agent inbox").click()
            inbox.get_by_role("link", name=ANA.name).click()
            expect(inbox.get_by_role("heading", name="What the customer shares")).to_be_visible()
            inbox.get_by_label("Reply").fill(
                "Hello Ana, I'm Sam from Harbour Bank. Your new card is on its way."
            )
            inbox.get_by_role("button", name="Send reply").click()
            expect(inbox.get_by_text("Reply queued")).to_be_visible()
            sent = inbox.locator("#thread li.out", has_text="I'm Sam")
            expect(sent.get_by_text("Sent")).to_be_visible()
            screenshot(inbox, "5-agent-inbox")
            reply = bubble(chat, "I'm Sam from Harbour Bank")
            expect(reply).to_be_visible()
            expect(reply).to_contain_text("From a person at the bank")
            screenshot(chat, "5-agent-reply")

            # 6. Ana stops sharing from her dashboard; what the core posts next stays put.
            dashboard = person()
            dashboard.goto(f"{base}/my/{BANK_SLUG}/")
            dashboard.get_by_label("Username").fill(ANA.username)
            dashboard.get_by_label("Password").fill(CUSTOMER_PASSWORD)
            dashboard.get_by_role("button", name="Log in").click()
            expect(
                dashboard.get_by_role("heading", name="What you share with Messenger")
            ).to_be_visible()
            screenshot(dashboard, "6-dashboard")
            dashboard.get_by_role("link", name="Stop sharing").click()
            dashboard.get_by_role("button", name="Stop sharing").click()
            expect(
                dashboard.get_by_role("heading", name="You have stopped sharing")
            ).to_be_visible()
            screenshot(dashboard, "6-revoked")

            expect(bubble(chat, "has stopped sending updates here")).to_be_visible()
            messages = chat.locator("li.sb-msg")
            before = messages.count()
            posted = simulate(customers=2, count=4, mix="transaction.posted=1", seed=2)
            for_ana = [e for e in posted if e["customer_id"] == ANA.id]
            for_ben = [e for e in posted if e["customer_id"] == BEN.id]
            assert for_ana and for_ben
            # Ben, still linked, gets his: the worker is delivering, and Ana's stay away.
            last = for_ben[-1]["data"].get("merchant") or for_ben[-1]["data"]["description"]
            assert wait_for(lambda: _in_thread(base, BEN.name, last))
            chat.reload()
            expect(messages).to_have_count(before)
            screenshot(chat, "6-no-more-updates")

            # 7. The auditor finds Ana's link and its timeline; the audit chain verifies intact.
            auditor = person()
            staff_sign_in(auditor, base, "demo-auditor")
            auditor.get_by_role("link", name="Linked accounts").click()
            auditor.get_by_label("Customer").fill(ANA.username)
            auditor.get_by_role("button", name="Search").click()
            auditor.get_by_role("link", name=ANA.name).first.click()
            timeline = auditor.locator("table.timeline")
            expect(timeline).to_contain_text("Withdrawn by the customer")
            screenshot(auditor, "7-link-timeline")
            # Verifying the chain now is an admin's action; the auditor sees its outcome.
            admin = person()
            staff_sign_in(admin, base, "demo-admin")
            admin.get_by_role("link", name="Audit integrity").click()
            admin.get_by_role("button", name="Verify now").click()
            expect(admin.get_by_text("chain(s): intact")).to_be_visible()
            auditor.get_by_role("link", name="Audit integrity").click()
            expect(auditor.locator("#integrity-state .pill.ok")).to_have_text("Intact")
            screenshot(auditor, "7-integrity")
    finally:
        for context in people:
            context.close()


def _last4(event: dict) -> str:
    return next(a.last4 for a in ANA.accounts if a.id == event["account_id"])


def _in_thread(base: str, name: str, text: str) -> bool:
    users = httpx.get(f"{base}/sandbox/api/pages/{PAGE_ID}/users", timeout=10).json()["users"]
    psid = next(u["psid"] for u in users if u["name"] == name)
    thread = httpx.get(
        f"{base}/sandbox/api/pages/{PAGE_ID}/users/{psid}/thread", timeout=10
    ).json()["messages"]
    return any(text in (m["body"].get("text") or "") for m in thread if m["direction"] == "out")
