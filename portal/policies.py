"""Whether an event becomes a notification under the bank's policy: a pure decision.

The delivery engine calls `decide` for every event and consented link; nothing here
touches the database, so the rules are tested on their own, time zones and all.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from zoneinfo import ZoneInfo

from portal.events import EventType
from portal.rendering import to_decimal


class Reason(StrEnum):
    SEND = "send"
    DISABLED = "disabled"
    BELOW_MINIMUM = "below_minimum_amount"
    BALANCE_NOT_LOW = "balance_not_low"
    MISSING_AMOUNT = "missing_amount"
    QUIET_HOURS = "quiet_hours"


@dataclass(frozen=True)
class PolicyRules:
    """One event type's policy at one bank, as plain values.

    `quiet_start`/`quiet_end` are wall-clock times in `timezone`; a start later than the
    end wraps midnight (22:00 to 07:00). Fraud alerts ignore quiet hours whatever is set.
    `urgent` is the bank's mark; fraud alerts are urgent without it (`is_urgent`).
    """

    event_type: str
    enabled: bool = True
    min_amount: Decimal | None = None
    low_balance_below: Decimal | None = None
    quiet_start: time | None = None
    quiet_end: time | None = None
    urgent: bool = False
    timezone: str = "UTC"

    @property
    def is_urgent(self) -> bool:
        return self.urgent or self.event_type == EventType.FRAUD_ALERT

    @property
    def has_quiet_hours(self) -> bool:
        return (
            self.quiet_start is not None
            and self.quiet_end is not None
            and self.quiet_start != self.quiet_end
            and self.event_type != EventType.FRAUD_ALERT
        )


@dataclass(frozen=True)
class Decision:
    """Send now or not, why (a `Reason` value), and when quiet hours end if they hold it."""

    send: bool
    reason: str
    defer_until: datetime | None = None


def decide(policy, event_type: str, data: Mapping[str, object], now: datetime) -> Decision:
    """Whether an `event_type` event with `data` is sent now under `policy`.

    `policy` is a `PolicyRules` or anything with a `rules()` method giving one (a
    `NotificationPolicy` row). Checks run in order: switched off; the large-transaction
    minimum (on the amount's absolute value: debits may be negative); the low-balance
    ceiling (on `balance`); then quiet hours in the bank's time zone, which never hold
    back a fraud alert. A threshold with no usable amount in `data` does not send: the
    bank asked for a filter that cannot be shown to pass. `now` must be timezone-aware.
    """
    rules: PolicyRules = policy if isinstance(policy, PolicyRules) else policy.rules()
    if rules.event_type != event_type:
        raise ValueError(f"policy is for “{rules.event_type}”, not “{event_type}”")
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    if not rules.enabled:
        return Decision(False, Reason.DISABLED)
    if event_type == EventType.TRANSACTION_POSTED and rules.min_amount is not None:
        amount = to_decimal(data.get("amount"))
        if amount is None:
            return Decision(False, Reason.MISSING_AMOUNT)
        if abs(amount) < rules.min_amount:
            return Decision(False, Reason.BELOW_MINIMUM)
    if event_type == EventType.BALANCE_UPDATED and rules.low_balance_below is not None:
        balance = to_decimal(data.get("balance"))
        if balance is None:
            return Decision(False, Reason.MISSING_AMOUNT)
        if balance >= rules.low_balance_below:
            return Decision(False, Reason.BALANCE_NOT_LOW)
    if rules.has_quiet_hours:
        until = quiet_hours_end(rules, now)
        if until is not None:
            return Decision(False, Reason.QUIET_HOURS, defer_until=until)
    return Decision(True, Reason.SEND)


def in_quiet_hours(start: time, end: time, local: time) -> bool:
    """Whether wall-clock `local` lies in [start, end), a window that may wrap midnight."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_end(rules: PolicyRules, now: datetime) -> datetime | None:
    """When the quiet hours holding `now` end (an aware UTC time), or None if not quiet.

    Times are compared on the local wall clock, so a window means the same hours in
    summer and winter. An end time that a DST change skips maps forward, one that it
    repeats means its next occurrence.
    """
    if not rules.has_quiet_hours:
        return None
    zone = ZoneInfo(rules.timezone)
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    if not in_quiet_hours(rules.quiet_start, rules.quiet_end, wall):
        return None
    day: date = local.date()
    if wall >= rules.quiet_end:  # the window started today and ends tomorrow
        day += timedelta(days=1)
    utc = ZoneInfo("UTC")
    candidates = [
        datetime.combine(day, rules.quiet_end, tzinfo=zone).replace(fold=fold).astimezone(utc)
        for fold in (0, 1)
    ]
    # In a repeated hour the first occurrence may already be past: take the next one.
    later = [moment for moment in candidates if moment > now]
    return min(later) if later else max(candidates)
