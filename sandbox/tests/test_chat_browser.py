"""The chat view in headless Chromium: what a person demoing bankside clicks through."""

import os
from pathlib import Path

import pytest

from messenger import builders
from sandbox.tests.conftest import PAGE_ID

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
# `make screenshots` points this at docs/screenshots; ordinary runs keep them under var/.
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))


def test_a_typed_message_appears_in_the_thread_and_replies_arrive_live(
    live, page, control, sandbox_page, graph, creds
):
    user = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Ana Souza"}).json()
    page.goto(f"{live.url}/sandbox/chat/{PAGE_ID}/{user['psid']}/")

    page.get_by_label("Message").fill("What's my balance?")
    page.get_by_role("button", name="Send").click()

    outgoing = page.locator(".sb-msg.in .sb-bubble")
    outgoing.filter(has_text="What's my balance?").wait_for()
    assert outgoing.count() == 1

    graph.send(
        creds,
        builders.text_message(
            user["psid"],
            "Checking •••• 4821: €1,204.50 available.",
            quick_replies=[builders.quick_reply("Recent transactions", "TXNS")],
        ),
    )
    page.locator(".sb-msg.out .sb-bubble", has_text="€1,204.50").wait_for()
    page.get_by_role("button", name="Recent transactions").wait_for()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "sandbox-chat.png"))

    page.get_by_role("button", name="Recent transactions").click()
    page.locator(".sb-msg.in .sb-bubble", has_text="Recent transactions").wait_for()
    thread = control.get(f"/pages/{PAGE_ID}/users/{user['psid']}/thread").json()["messages"]
    assert thread[-1]["body"] == {"text": "Recent transactions", "quick_reply": {"payload": "TXNS"}}


def test_the_log_in_button_runs_the_linking_flow(live, page, control, sandbox_page, graph, creds):
    user = control.post(f"/pages/{PAGE_ID}/users", json={"name": "Li Wei"}).json()
    control.post(f"/pages/{PAGE_ID}/users/{user['psid']}/messages", json={"text": "link me"})
    graph.send(
        creds,
        builders.button_template(
            user["psid"],
            "Log in to get balance and card updates here.",
            [builders.login_button(f"{live.url}/test-bank/login")],
        ),
    )
    page.goto(f"{live.url}/sandbox/chat/{PAGE_ID}/{user['psid']}/")

    page.get_by_role("button", name="Log In").click()

    page.get_by_role("heading", name="Account linked").wait_for()
    page.get_by_role("link", name="Back to the chat").click()
    page.get_by_role("button", name="Log Out").first.wait_for()
