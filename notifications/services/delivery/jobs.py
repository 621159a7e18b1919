"""What every stage of delivery passes along: a claimed notification and what became of it."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import messenger
from notifications.models import DeliveryAttempt, Notification
from notifications.page_limits import Grant
from portal.audit import Actor
from portal.models import SEND_RATE_LIMIT_MAX

ENGINE = Actor.system("delivery engine")
State, Reason, Form = Notification.State, Notification.Reason, Notification.Form
Urgency = Notification.Urgency
AttemptOutcome = DeliveryAttempt.Outcome


@dataclass
class Job:
    """A claimed notification on its way out."""

    id: int
    bank_id: int
    event_id: int
    event_ref: str
    event_type: str
    consent_id: int
    account_id: int
    page_id: str
    psid: str
    locale: str
    text: str
    attempts: int
    window_closed: bool
    queued_at: datetime
    data_categories: list[str]
    event_data: dict[str, Any]
    customer_name: str
    last4: str
    currency: str
    account_name: str
    urgency: str
    reason: str  # why it was queued: `awaiting_echo` when its last send may have gone out
    resent: bool  # sent again once already, for want of an echo
    form: str = ""
    payload: dict[str, Any] | None = None
    creds: messenger.PageCredentials | None = None
    send_until: float = 0.0  # monotonic: not handed to the Send API after this
    send_rate_limit: int = SEND_RATE_LIMIT_MAX  # the Page's setting, read with the claim
    # A digest (`digest`): on the notification whose claim sends it, the others it carries…
    digest: list["Job"] = field(default_factory=list)
    # …and on each of those, the id of the one that carries it.
    digest_lead: int | None = None
    resending: bool = False  # no echo came for its uncertain send: this is the one resend
    holds_back_urgent: bool = False  # the person's urgent notification waits for this one
    # Its Page's token, taken with its group's as it entered the pool (a grant, and the
    # monotonic moment its take began): the sending thread calls without taking one.
    token: tuple[Grant, float] | None = None

    @property
    def urgent_lane(self) -> bool:
        """Sent as urgent: urgent itself, or holding back the person's urgent one."""
        return self.urgency == Urgency.URGENT or self.holds_back_urgent


@dataclass
class Result:
    """What became of one claimed notification; `outcome` is set when a call was made."""

    job: Job
    state: str
    reason: str
    detail: str = ""
    next_attempt_at: datetime | None = None
    outcome: str = ""
    started_at: datetime | None = None
    latency_ms: int | None = None
    error_code: int | None = None
    error_subcode: int | None = None
    message_id: str = ""
    window_closed: bool | None = None
    uncertain: bool = False
    reached_platform: bool = False
    unreachable: bool = False
    digest_id: int | None = None  # sent in the digest of this notification
    echo_settled: bool = False  # made sent by the message's echo, whatever the call said

    @property
    def attempted(self) -> bool:
        return bool(self.outcome)


@dataclass
class RunReport:
    """What one `deliveries_run` did, for the task and the benchmarks."""

    batches: int = 0
    claimed: int = 0
    outcomes: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    more_due: bool = False

    def count(self, state: str) -> int:
        return self.outcomes.get(state, 0)
