"""A customer changes what a live link shares: updates queued for what is no longer shared
are cancelled with the change (audited), what stays shared still goes out, and new events
follow the new terms. The Send API is faked at the client boundary."""

import pytest

from linking import services as linking_services
from notifications import services
from notifications.models import Notification
from notifications.tests.factories import event_payload
from portal.models import AuditEvent

pytestmark = pytest.mark.django_db
State, Reason = Notification.State, Notification.Reason
EVENTS = "/api/v1/events"


def post(api, *events):
    response = api.post(EVENTS, {"events": list(events)}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def change(linked, *, accounts, scopes):
    return linking_services.consent_change(
        consent=linked.consent,
        actor=linking_services.customer_actor(linked.customer),
        accounts=accounts,
        scopes=scopes,
        text="Change what you share",
        language="en",
    )


def states() -> dict[tuple[str, str], tuple[str, str]]:
    return {
        (n.event_type, n.account.external_id): (n.state, n.reason)
        for n in Notification.objects.select_related("account")
    }


def test_queued_updates_no_longer_shared_are_cancelled_with_the_change(linked, linked_api):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("transaction.posted", account=linked.card),
        event_payload("balance.updated", account=linked.checking),
        event_payload("transaction.posted", account=linked.checking),
    )
    Notification.objects.filter(event_type="transaction.posted").update(state=State.HELD)

    change(linked, accounts=[linked.checking], scopes=["balances", "fraud_alerts"])

    assert states() == {
        ("fraud.alert", "visa-001"): (State.CANCELLED, Reason.NO_LONGER_SHARED),
        ("transaction.posted", "visa-001"): (State.CANCELLED, Reason.NO_LONGER_SHARED),
        ("balance.updated", "chk-001"): (State.PENDING, Reason.QUEUED),
        ("transaction.posted", "chk-001"): (State.CANCELLED, Reason.NO_LONGER_SHARED),
    }
    (entry,) = AuditEvent.objects.filter(action="notifications.cancelled")
    assert entry.details["cancelled"] == 3 and entry.details["reason"] == "no_longer_shared"
    assert entry.target_id == str(linked.consent.pk)


def test_what_stays_shared_is_still_sent(linked, linked_api, graph):
    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("balance.updated", account=linked.checking),
    )
    change(linked, accounts=[linked.checking], scopes=["balances"])

    services.deliveries_run(seconds=0)

    (body,) = graph.sent
    assert body["recipient"] == {"id": linked.consent.psid}
    sent = Notification.objects.get(state=State.SENT)
    assert sent.event_type == "balance.updated"


def test_new_events_follow_the_new_terms(linked, linked_api):
    change(linked, accounts=[linked.checking], scopes=["balances"])

    post(
        linked_api,
        event_payload("fraud.alert", account=linked.card),
        event_payload("balance.updated", account=linked.card),
        event_payload("transaction.posted", account=linked.checking),
        event_payload("balance.updated", account=linked.checking),
    )

    assert list(Notification.objects.values_list("event_type", "account__external_id")) == [
        ("balance.updated", "chk-001")
    ]


def test_adding_what_is_shared_cancels_nothing(linked, linked_api):
    change(linked, accounts=[linked.checking], scopes=["balances"])
    post(linked_api, event_payload("balance.updated", account=linked.checking))

    change(linked, accounts=[linked.checking, linked.card], scopes=["balances", "fraud_alerts"])

    assert states() == {("balance.updated", "chk-001"): (State.PENDING, Reason.QUEUED)}
    assert not AuditEvent.objects.filter(action="notifications.cancelled").exists()
