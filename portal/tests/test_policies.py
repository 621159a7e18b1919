from datetime import UTC, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from portal.events import EventType
from portal.policies import Decision, PolicyRules, Reason, decide, in_quiet_hours

TXN = EventType.TRANSACTION_POSTED
BALANCE = EventType.BALANCE_UPDATED
FRAUD = EventType.FRAUD_ALERT
LONDON = "Europe/London"
NOON = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def rules(event_type=TXN, **values):
    return PolicyRules(event_type=event_type, **values)


def at(zone: str, *args) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone))


def night(event_type=TXN, zone=LONDON, **values):
    return rules(event_type, quiet_start=time(22), quiet_end=time(7), timezone=zone, **values)


def test_an_enabled_policy_without_conditions_sends():
    assert decide(rules(), TXN, {"amount": "1"}, NOON) == Decision(True, Reason.SEND)


def test_a_disabled_policy_never_sends():
    decision = decide(rules(enabled=False), TXN, {"amount": "5000"}, NOON)

    assert (decision.send, decision.reason) == (False, Reason.DISABLED)


@pytest.mark.parametrize(
    ("amount", "sent"),
    [("99.99", False), ("100", True), ("250.00", True), ("-150", True), ("-20", False)],
)
def test_the_large_transaction_minimum_compares_the_amounts_size(amount, sent):
    decision = decide(rules(min_amount=Decimal("100")), TXN, {"amount": amount}, NOON)

    assert decision.send is sent
    assert decision.reason == (Reason.SEND if sent else Reason.BELOW_MINIMUM)


@pytest.mark.parametrize("data", [{}, {"amount": "lots"}, {"amount": None}])
def test_a_minimum_without_a_usable_amount_does_not_send(data):
    decision = decide(rules(min_amount=Decimal("100")), TXN, data, NOON)

    assert (decision.send, decision.reason) == (False, Reason.MISSING_AMOUNT)


@pytest.mark.parametrize(
    ("balance", "sent"), [("49.99", True), ("50", False), ("1200", False), ("-10", True)]
)
def test_the_low_balance_threshold_sends_only_under_it(balance, sent):
    policy = rules(BALANCE, low_balance_below=Decimal("50"))

    decision = decide(policy, BALANCE, {"balance": balance}, NOON)

    assert decision.send is sent
    assert decision.reason == (Reason.SEND if sent else Reason.BALANCE_NOT_LOW)


def test_a_threshold_of_another_event_type_is_ignored():
    policy = rules(FRAUD, min_amount=Decimal("1000"), low_balance_below=Decimal("1"))

    assert decide(policy, FRAUD, {"amount": "5"}, NOON).send


@pytest.mark.parametrize(
    ("local", "quiet"),
    [
        ((2026, 1, 15, 21, 59), False),
        ((2026, 1, 15, 22, 0), True),
        ((2026, 1, 15, 23, 30), True),
        ((2026, 1, 16, 0, 0), True),
        ((2026, 1, 16, 6, 59), True),
        ((2026, 1, 16, 7, 0), False),
        ((2026, 1, 16, 12, 0), False),
    ],
)
def test_quiet_hours_that_wrap_midnight(local, quiet):
    decision = decide(night(), TXN, {}, at(LONDON, *local))

    assert decision.send is not quiet
    assert decision.reason == (Reason.QUIET_HOURS if quiet else Reason.SEND)


@pytest.mark.parametrize(("hour", "quiet"), [(12, False), (13, True), (14, True), (15, False)])
def test_quiet_hours_within_one_day(hour, quiet):
    policy = rules(quiet_start=time(13), quiet_end=time(15), timezone=LONDON)

    assert decide(policy, TXN, {}, at(LONDON, 2026, 7, 1, hour)).send is not quiet


def test_quiet_hours_are_the_banks_wall_clock_in_summer_and_winter():
    winter_23h = datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # 23:00 GMT in London
    summer_21h30 = datetime(2026, 7, 15, 21, 30, tzinfo=UTC)  # 22:30 BST in London
    summer_6h30 = datetime(2026, 7, 16, 6, 30, tzinfo=UTC)  # 07:30 BST: over

    assert not decide(night(), TXN, {}, winter_23h).send
    assert not decide(night(), TXN, {}, summer_21h30).send
    assert decide(night(), TXN, {}, summer_6h30).send


def test_quiet_hours_follow_the_banks_time_zone_not_utc():
    tokyo_night = night(zone="Asia/Tokyo")

    assert not decide(tokyo_night, TXN, {}, NOON.replace(hour=15)).send  # 00:00 in Tokyo
    assert decide(tokyo_night, TXN, {}, NOON.replace(hour=3)).send  # 12:00 in Tokyo


def test_a_held_update_is_deferred_until_the_quiet_hours_end():
    decision = decide(night(), TXN, {}, at(LONDON, 2026, 1, 15, 23, 0))

    assert decision.defer_until == datetime(2026, 1, 16, 7, 0, tzinfo=UTC)


def test_the_end_of_quiet_hours_survives_the_spring_dst_change():
    # London moves from GMT to BST at 01:00 UTC on 29 March 2026.
    decision = decide(night(), TXN, {}, at(LONDON, 2026, 3, 28, 23, 0))

    assert decision.defer_until == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)  # 07:00 BST


def test_the_end_of_quiet_hours_survives_the_autumn_dst_change():
    # London moves from BST back to GMT at 01:00 UTC on 25 October 2026.
    decision = decide(night(), TXN, {}, at(LONDON, 2026, 10, 24, 23, 0))

    assert decision.defer_until == datetime(2026, 10, 25, 7, 0, tzinfo=UTC)  # 07:00 GMT


def test_an_end_in_a_repeated_hour_means_its_next_occurrence():
    # New York repeats 01:00-02:00 on 1 November 2026; 01:15 EST is the second 01:15.
    policy = rules(quiet_start=time(0, 30), quiet_end=time(1, 30), timezone="America/New_York")
    second_quarter_past_one = datetime(2026, 11, 1, 6, 15, tzinfo=UTC)

    decision = decide(policy, TXN, {}, second_quarter_past_one)

    assert decision.reason == Reason.QUIET_HOURS
    assert decision.defer_until == datetime(2026, 11, 1, 6, 30, tzinfo=UTC)


def test_an_end_in_a_skipped_hour_maps_forward():
    # New York skips 02:00-03:00 on 8 March 2026.
    policy = rules(quiet_start=time(1), quiet_end=time(2, 30), timezone="America/New_York")

    decision = decide(policy, TXN, {}, datetime(2026, 3, 8, 6, 30, tzinfo=UTC))  # 01:30 EST

    assert decision.defer_until == datetime(2026, 3, 8, 7, 30, tzinfo=UTC)  # 03:30 EDT
    assert decision.defer_until > datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def test_fraud_alerts_are_sent_in_quiet_hours_whatever_the_rules_say():
    decision = decide(night(FRAUD), FRAUD, {}, at(LONDON, 2026, 1, 15, 23, 0))

    assert (decision.send, decision.reason) == (True, Reason.SEND)


def test_other_conditions_are_checked_before_quiet_hours():
    policy = night(min_amount=Decimal("100"))

    decision = decide(policy, TXN, {"amount": "5"}, at(LONDON, 2026, 1, 15, 23, 0))

    assert decision.reason == Reason.BELOW_MINIMUM and decision.defer_until is None


def test_equal_start_and_end_mean_no_quiet_hours():
    assert not in_quiet_hours(time(8), time(8), time(8))
    assert decide(rules(quiet_start=time(8), quiet_end=time(8)), TXN, {}, NOON).send


def test_now_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        decide(rules(), TXN, {}, datetime(2026, 1, 15, 12, 0))


def test_a_policy_for_another_event_type_is_refused():
    with pytest.raises(ValueError, match=r"fraud\.alert"):
        decide(rules(TXN), FRAUD, {}, NOON)


def test_a_model_row_works_through_its_rules():
    class Row:
        def rules(self):
            return rules(enabled=False)

    assert decide(Row(), TXN, {}, NOON).reason == Reason.DISABLED


def test_fraud_alerts_are_urgent_and_other_types_only_when_the_bank_marks_them():
    assert rules(FRAUD).is_urgent and rules(FRAUD, urgent=False).is_urgent
    assert not rules(TXN).is_urgent and rules(TXN, urgent=True).is_urgent


def test_quiet_hours_hold_a_type_the_bank_marked_urgent_but_never_a_fraud_alert():
    late = at(LONDON, 2026, 1, 15, 23, 30)

    held = decide(night(TXN, urgent=True), TXN, {"amount": "1"}, late)
    fraud = decide(night(FRAUD), FRAUD, {}, late)

    assert (held.send, held.reason) == (False, Reason.QUIET_HOURS)
    assert held.defer_until == at(LONDON, 2026, 1, 16, 7, 0)
    assert fraud == Decision(True, Reason.SEND)
