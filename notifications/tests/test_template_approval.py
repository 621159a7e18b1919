"""A template's draft never reaches customers: updates are written with the live text until
an admin other than the author approves the draft, and with the new text from then on."""

import pytest

from notifications.models import Notification
from notifications.tests.factories import event_payload
from notifications.tests.test_delivery import post
from portal import services as portal_services
from portal.audit import Actor
from portal.models import MessageTemplate, StaffMembership
from portal.tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db

TXN = "transaction.posted"


def coffee(linked, n: int) -> dict:
    payload = event_payload(
        TXN,
        account=linked.card,
        data={"amount": "-4.61", "currency": "EUR", "merchant": "Corner Coffee"},
    )
    payload["id"] = f"evt-approval-{n}"
    return payload


def test_an_update_uses_the_live_text_until_the_draft_is_approved(linked, linked_api):
    bank = linked.bank
    operator = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.OPERATOR).user
    admin = StaffMembershipFactory(bank=bank, role=StaffMembership.Role.ADMIN).user
    live = MessageTemplate.objects.get(bank=bank, event_type=TXN, locale="en").body
    draft = portal_services.message_template_draft(
        actor=Actor.staff(operator), bank=bank, event_type=TXN, locale="en", body="Spent {amount}."
    )

    post(linked_api, coffee(linked, 1))
    before = Notification.objects.get(event__event_id="evt-approval-1").text
    portal_services.message_template_approve(actor=Actor.staff(admin), version=draft)
    post(linked_api, coffee(linked, 2))
    after = Notification.objects.get(event__event_id="evt-approval-2").text

    assert live != "Spent {amount}."
    assert "Corner Coffee" in before and "Spent" not in before
    assert after == "Spent -€4.61."
