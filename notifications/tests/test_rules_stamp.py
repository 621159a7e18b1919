"""A bank's delivery rules are kept per API process while their stamp holds, and every
change to a policy or template, by whatever means, is obeyed by the very next post."""

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from notifications.models import Notification
from notifications.services.outbox import rules as outbox_rules
from notifications.tests.factories import event_payload
from portal.models import DeliveryRulesStamp, MessageTemplate, NotificationPolicy
from portal.tests.factories import BankFactory

pytestmark = pytest.mark.django_db

EVENTS = "/api/v1/events"
TEMPLATES = MessageTemplate._meta.db_table


def post(api, payload):
    response = api.post(EVENTS, payload, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def stamp_of(bank) -> int | None:
    return DeliveryRulesStamp.objects.filter(bank=bank).values_list("stamp", flat=True).first()


def fraud_alert(linked):
    return event_payload("fraud.alert", account=linked.card)


@pytest.fixture
def reads(monkeypatch):
    """The banks whose rules were read from the database, one entry per read."""
    read, banks = outbox_rules._rules_and_templates_read, []

    def counted(bank, event_types):
        banks.append(bank.pk)
        return read(bank, event_types)

    monkeypatch.setattr(outbox_rules, "_rules_and_templates_read", counted)
    return banks


# --- the stamp ------------------------------------------------------------------------


def test_a_new_bank_with_templates_has_a_stamp():
    bank = BankFactory(notification_defaults=True)

    assert stamp_of(bank) is not None


@pytest.mark.parametrize(
    "change",
    [
        lambda bank: NotificationPolicy.objects.filter(bank=bank).update(enabled=False),
        lambda bank: NotificationPolicy.objects.filter(bank=bank).delete(),
        lambda bank: MessageTemplate.objects.filter(bank=bank, locale="en").update(body="Hi"),
        lambda bank: MessageTemplate.objects.create(
            bank=bank, event_type="fraud.alert", locale="pt", body="Alerta"
        ),
        lambda bank: MessageTemplate.objects.filter(bank=bank).first().save(),
    ],
    ids=["policy-update", "policy-delete", "template-update", "template-insert", "save"],
)
def test_every_change_to_policies_or_templates_moves_the_stamp(change):
    bank = BankFactory(notification_defaults=True)
    before = stamp_of(bank)

    change(bank)

    assert stamp_of(bank) not in (None, before)


def test_plain_sql_moves_the_stamp_too():
    bank = BankFactory(notification_defaults=True)
    before = stamp_of(bank)

    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TEMPLATES} SET body = body || '.' WHERE bank_id = %s", [bank.pk])

    assert stamp_of(bank) != before


def test_a_change_rolled_back_never_brings_an_old_stamp_back():
    bank = BankFactory(notification_defaults=True)
    first = stamp_of(bank)
    with pytest.raises(RuntimeError), transaction.atomic():
        NotificationPolicy.objects.filter(bank=bank).update(enabled=False)
        rolled_back = stamp_of(bank)
        raise RuntimeError
    assert stamp_of(bank) == first

    NotificationPolicy.objects.filter(bank=bank, event_type="fraud.alert").update(enabled=True)

    assert stamp_of(bank) not in (first, rolled_back)


def test_another_banks_changes_leave_this_ones_stamp_alone():
    bank, other = BankFactory(notification_defaults=True), BankFactory(notification_defaults=True)
    before = stamp_of(bank)

    NotificationPolicy.objects.filter(bank=other).update(enabled=False)

    assert stamp_of(bank) == before


# --- the rules kept per process -------------------------------------------------------


def test_posts_at_the_same_stamp_read_the_rules_once(linked, linked_api, reads):
    post(linked_api, fraud_alert(linked))
    post(linked_api, fraud_alert(linked))

    assert reads == [linked.bank.pk]
    assert Notification.objects.count() == 2


def test_a_post_at_a_kept_stamp_runs_one_query_fewer(linked, linked_api):
    def queries_of_a_post() -> int:
        with CaptureQueriesContext(connection) as queries:
            post(linked_api, fraud_alert(linked))
        return len(queries)  # now: the log is read lazily, and each request clears it

    DeliveryRulesStamp.objects.filter(bank=linked.bank).delete()
    post(linked_api, fraud_alert(linked))
    unstamped = queries_of_a_post()
    NotificationPolicy.objects.filter(bank=linked.bank).update(enabled=True)  # a stamp again
    post(linked_api, fraud_alert(linked))

    assert queries_of_a_post() == unstamped - 1


def test_a_policy_disabled_after_the_rules_were_kept_is_obeyed_at_once(linked, linked_api):
    post(linked_api, fraud_alert(linked))

    NotificationPolicy.objects.filter(bank=linked.bank, event_type="fraud.alert").update(
        enabled=False
    )
    post(linked_api, fraud_alert(linked))

    assert Notification.objects.count() == 1


def test_a_template_edited_after_the_rules_were_kept_is_used_at_once(linked, linked_api):
    post(linked_api, fraud_alert(linked))

    MessageTemplate.objects.filter(bank=linked.bank, event_type="fraud.alert").update(
        body="Card {last4} was used at {merchant}. Was this you?"
    )
    post(linked_api, fraud_alert(linked))

    latest = Notification.objects.latest("id")
    assert latest.text.startswith("Card 9012 was used at ELECTRO-WORLD ONLINE.")


def test_a_template_deleted_after_the_rules_were_kept_is_no_longer_used(linked, linked_api):
    post(linked_api, fraud_alert(linked))

    MessageTemplate.objects.filter(bank=linked.bank, event_type="fraud.alert").delete()
    post(linked_api, fraud_alert(linked))

    latest = Notification.objects.latest("id")
    assert (latest.state, latest.reason) == (
        Notification.State.HELD,
        Notification.Reason.NO_TEMPLATE,
    )


def test_a_new_time_zone_is_used_at_once(linked, linked_api):
    post(linked_api, fraud_alert(linked))
    linked.bank.timezone = "Asia/Tokyo"
    linked.bank.save(update_fields=["timezone"])

    post(linked_api, fraud_alert(linked))

    (_, zone, (rules, _)) = outbox_rules._kept_rules[linked.bank.pk]
    assert zone == "Asia/Tokyo" and rules["fraud.alert"].timezone == "Asia/Tokyo"


def test_without_a_stamp_the_rules_are_read_for_every_post(linked, linked_api, reads):
    DeliveryRulesStamp.objects.filter(bank=linked.bank).delete()

    post(linked_api, fraud_alert(linked))
    post(linked_api, fraud_alert(linked))

    assert reads == [linked.bank.pk, linked.bank.pk]
    assert linked.bank.pk not in outbox_rules._kept_rules


def test_the_rules_of_at_most_so_many_banks_are_kept(monkeypatch, linked, linked_api):
    monkeypatch.setattr(outbox_rules, "KEPT_RULES_BANKS", 2)
    monkeypatch.setattr(
        outbox_rules, "_kept_rules", {-1: (0, "UTC", ({}, {})), -2: (0, "UTC", ({}, {}))}
    )

    post(linked_api, fraud_alert(linked))

    assert list(outbox_rules._kept_rules) == [-2, linked.bank.pk]
