"""The README tour's step 8 in headless Chromium: linking a customer from the bank's own
app, as a bank must where Messenger's Log In is unavailable (Europe, Japan).

The demo bank is seeded by `seed_demo`; the bank's app asks for an invitation through the
real API with the demo's key; the customer allows on the consent screen and the m.me
link opens the sandbox's chat, standing in for Messenger, where a real Celery worker
delivers the bank's confirmation. Screenshots go to `BANKSIDE_SCREENSHOT_DIR` as
`tour-8-<step>.png`.
"""

import io

import httpx
import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from demo import keyfile
from demo.roster import BANK_NAME, PAGE_ID, roster
from demo.tests.test_demo_seed import settled
from demo.tests.test_tour_browser import WAIT_MS, bubble, patient_expect, screenshot  # noqa: F401
from linking.models import Consent
from linking.tests.conftest import celery_worker

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CHLOE = roster(3)[2]


def linked_psid(customer_id: str) -> str:
    return Consent.objects.get(customer__external_id=customer_id, status="authorised").psid


def test_the_tour_links_a_customer_through_an_m_me_invitation(
    live_server,
    browser,
    settings,
    tmp_path,
    patient_expect,  # noqa: F811
):
    settings.MESSENGER_GRAPH_API_URL = f"{live_server.url}/sandbox/graph"
    settings.PUBLIC_BASE_URL = live_server.url
    settings.MESSENGER_ME_URL = f"{live_server.url}/sandbox/m.me"
    base = live_server.url
    key_file = tmp_path / "core-api-key"
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        with celery_worker():
            call_command(
                "seed_demo", url=base, key_file=str(key_file), no_summary=True, stdout=io.StringIO()
            )
            settled()

            # 8. Chloe is signed in to the bank's app, which asks for an invitation for her.
            answer = httpx.post(
                f"{base}/api/v1/customers/{CHLOE.id}/link-invitations",
                headers={"Authorization": f"Bearer {keyfile.read(key_file)}"},
                timeout=20,
            )
            assert answer.status_code == 201, answer.text
            tab = context.new_page()
            tab.set_default_timeout(WAIT_MS)
            tab.goto(answer.json()["url"])
            expect(
                tab.get_by_role("heading", name=f"Link {BANK_NAME} to Messenger?")
            ).to_be_visible()
            expect(tab.get_by_text(f"Hello {CHLOE.name}")).to_be_visible()
            for choice in tab.locator("input[name=accounts], input[name=scopes]").all():
                choice.check()
            screenshot(tab, "8-invitation-consent")
            tab.get_by_role("button", name="Allow").click()

            # The m.me link opens Messenger (the sandbox): someone new taps Get Started.
            expect(
                tab.get_by_role("heading", name=f"Open {BANK_NAME} in Messenger")
            ).to_be_visible()
            assert f"/sandbox/m.me/{PAGE_ID}?ref=link_" in tab.url
            m_me_link = tab.url
            newcomer = tab.locator("section.sb-card", has_text="Someone new")
            newcomer.get_by_label("Name").fill(CHLOE.name)
            screenshot(tab, "8-m-me")
            newcomer.get_by_role("button", name="Open and tap Get Started").click()
            # Chloé reads French: the bank confirms in her language.
            expect(bubble(tab, f"Votre compte {BANK_NAME} est associé")).to_be_visible()
            screenshot(tab, "8-linked")

            # Ben, who has a thread already, opens the same link: it is Chloé's, used.
            chloe_psid = linked_psid(CHLOE.id)
            other = context.new_page()
            other.goto(m_me_link)
            other.get_by_role("button", name="Open as Ben Carter").click()
            expect(bubble(other, "Sorry, this link was already used")).to_be_visible()
            assert linked_psid(CHLOE.id) == chloe_psid

            # The invitation's URL opened once: a second visit shares nothing.
            again = context.new_page()
            again.goto(answer.json()["url"])
            expect(again.get_by_role("heading", name="This link was already used")).to_be_visible()
            linked = Consent.objects.get(customer__external_id=CHLOE.id, status="authorised")
            assert (linked.psid, linked.page_id) == (chloe_psid, PAGE_ID)
    finally:
        context.close()
