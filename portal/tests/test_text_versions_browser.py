"""Maker-checker on a message template in headless Chromium: an operator drafts a text, an
admin approves it, then the operator drafts a return to the first version and the admin
approves that too. Customers' text changes only at each approval; axe-core checks every
page visited."""

import pytest

from core.tests.accessibility import axe_violations, describe
from portal import services
from portal.models import MessageTemplate, StaffMembership, TextVersion
from portal.tests.factories import SEED, StaffMembershipFactory, TOTPDeviceFactory, totp_code
from portal.tests.test_staff_browser import new_tab, screenshot, sign_in  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NEW_TEXT = "{amount} at {merchant}. Not you? Answer here."


def accessible(tab) -> None:
    violations = axe_violations(tab)
    assert violations == [], describe(violations)


def test_an_operator_drafts_an_admin_approves_and_a_rollback_is_approved(live_server, new_tab):  # noqa: F811
    bank = services.bank_create(actor=SEED, name="Harbour Bank", slug="harbour")
    template = MessageTemplate.objects.get(bank=bank, event_type="transaction.posted", locale="en")
    original = template.body
    people = {}
    for role in (StaffMembership.Role.OPERATOR, StaffMembership.Role.ADMIN):
        user = StaffMembershipFactory(bank=bank, role=role, user__username=f"{role}.one").user
        tab = new_tab()
        sign_in(
            tab,
            live_server.url,
            user.username,
            "correct horse battery staple",
            code=totp_code(TOTPDeviceFactory(user=user)),
        )
        people[role] = tab
    operator, admin = people["operator"], people["admin"]

    # The operator drafts: the live text stays what customers read.
    operator.get_by_role("link", name="Message templates").click()
    operator.get_by_role("link", name="Edit Card and account transactions in en").click()
    accessible(operator)
    operator.get_by_role("textbox", name="Message text").fill(NEW_TEXT)
    operator.locator("#template-form[data-preview-state=ready]").wait_for()
    operator.get_by_role("button", name="Save draft").click()
    operator.get_by_text("Draft saved as version 2.").wait_for()
    operator.get_by_text("You wrote this draft: another admin approves it.").wait_for()
    assert operator.get_by_role("button", name="Approve and make live").count() == 0
    accessible(operator)
    template.refresh_from_db()
    assert template.body == original

    # The admin finds it waiting, reads the diff and approves it.
    admin.get_by_role("link", name="Message templates").click()
    admin.get_by_role(
        "link", name="Review Card and account transactions · English (en), version 2"
    ).click()
    admin.locator("#version-diff ins", has_text="Not you?").wait_for()
    accessible(admin)
    admin.get_by_role("button", name="Approve and make live").click()
    admin.get_by_text("Version 2 is approved: customers read it from now on.").wait_for()
    admin.locator("#version-state", has_text="Live").wait_for()
    template.refresh_from_db()
    assert template.body == NEW_TEXT

    # The operator drafts a return to version 1; it is live only once the admin approves.
    operator.reload()
    operator.get_by_role("link", name="Version 1", exact=True).click()
    operator.get_by_role("button", name="Draft a return to this version").click()
    operator.get_by_text("Version 3 drafts a return to version 1").wait_for()
    accessible(operator)
    template.refresh_from_db()
    assert template.body == NEW_TEXT

    admin.get_by_role("link", name="Message templates").click()
    admin.get_by_role(
        "link", name="Review Card and account transactions · English (en), version 3"
    ).click()
    admin.get_by_role("button", name="Approve and make live").click()
    admin.get_by_text("Version 3 is approved").wait_for()
    row = admin.locator('#version-history tr[data-version="3"]')
    row.get_by_text("back to 1").wait_for()
    row.get_by_text("admin.one").wait_for()
    accessible(admin)
    screenshot(admin, "staff-template-versions")
    template.refresh_from_db()
    assert template.body == original
    states = dict(
        TextVersion.objects.filter(bank=bank, key="transaction.posted:en").values_list(
            "number", "state"
        )
    )
    assert states == {1: "superseded", 2: "superseded", 3: "approved"}
