"""An operator's walk through the dead letters in headless Chromium: filter, read the
attempts, replay after a confirmation, and see a replay refused with its reason.

Screenshots go to `BANKSIDE_SCREENSHOT_DIR` (`make screenshots` points it at docs/screenshots).
"""

import os
from pathlib import Path

import pytest

from linking import services as linking_services
from notifications import services
from notifications.models import Notification
from notifications.tests.conftest import graph_error
from notifications.tests.factories import event_payload
from portal.audit import Actor
from portal.models import AuditEvent, StaffMembership
from portal.tests.factories import PASSWORD, StaffMembershipFactory, TOTPDeviceFactory, totp_code

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("BANKSIDE_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
State = Notification.State


def screenshot(tab, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_an_operator_filters_reads_and_replays_dead_letters(
    live_server, browser, linked, linked_api, graph
):
    type(linked.bank).objects.filter(pk=linked.bank.pk).update(name="Harbour Bank")
    people = [linked.person(name=name) for name in ("Ada Lovelace", "Alan Turing", "Grace Hopper")]
    kinds = ["fraud.alert", "fraud.alert", "shipment.updated"]
    linked_api.post(
        "/api/v1/events",
        {"events": [event_payload(k, account=a) for k, (a, _) in zip(kinds, people, strict=True)]},
        format="json",
    )
    graph.answers = [
        graph_error(100, message="(#100) Invalid parameter"),
        graph_error(100, message="(#100) Invalid parameter"),
        graph_error(100, message="(#100) Invalid parameter"),
    ]
    services.deliveries_run(seconds=0)
    first, second, _ = Notification.objects.order_by("id")
    assert {first.state, second.state} == {State.DEAD}
    linking_services.consent_revoke(
        consent=second.consent, actor=Actor.system("test"), reason="Customer asked"
    )
    operator = StaffMembershipFactory(bank=linked.bank, role=StaffMembership.Role.OPERATOR).user
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(10_000)
    try:
        device = TOTPDeviceFactory(user=operator)  # every staff member signs in with a code
        tab.goto(f"{live_server.url}/staff/login/")
        tab.get_by_label("Username").fill(operator.username)
        tab.get_by_label("Password").fill(PASSWORD)
        tab.get_by_role("button", name="Continue").click()
        tab.get_by_label("6-digit code").fill(totp_code(device))
        tab.get_by_role("button", name="Sign in").click()
        tab.get_by_role("button", name="Sign out").wait_for()

        tab.get_by_role("link", name="Dead letters").first.click()
        tab.get_by_role("heading", name="Dead letters").wait_for()
        tab.get_by_label("Event type").select_option("fraud.alert")
        tab.get_by_role("button", name="Filter").click()
        rows = tab.locator("table.dead-letters > tbody > tr")
        rows.first.wait_for()
        assert rows.count() == 2
        tab.locator(f"#dead-{first.pk} summary").click()
        attempts = tab.locator(f"#dead-{first.pk} table.attempts")
        assert "Bad request" in attempts.inner_text()
        screenshot(tab, "staff-dead-letters")

        tab.get_by_label(f"Select notification {first.pk}").check()
        tab.get_by_role("button", name="Replay ticked").click()
        tab.get_by_role("heading", name="Replay 1 dead-lettered notification?").wait_for()
        tab.get_by_role("button", name="Replay 1").click()
        tab.get_by_text("1 notification queued again.").wait_for()
        assert tab.get_by_label("Event type").input_value() == "fraud.alert"

        tab.locator(f"#dead-{second.pk}").get_by_role("button", name="Replay").click()
        tab.get_by_text(f"Notification {second.pk} was not replayed").wait_for()
        assert "consent was revoked" in tab.locator("body").inner_text()
    finally:
        context.close()

    states = dict(Notification.objects.values_list("pk", "state"))
    assert (states[first.pk], states[second.pk]) == (State.PENDING, State.DEAD)
    assert AuditEvent.objects.filter(action="notification.replayed").count() == 1
