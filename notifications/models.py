"""Core-banking events, their outcomes and the outbox: who gets what, and every attempt
to deliver it."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from linking.models import Account, Consent, Customer
from portal.events import EventType
from portal.models import Bank
from portal.tenancy import BankScopedQuerySet


class Event(models.Model):
    """One account event posted by the bank's core, stored once per (bank, event id).

    The bank's `event_id` makes a post idempotent: a second post of the same id changes
    nothing (`EventKey` holds each id once). Only validated data is stored; anything that
    looked like a full card or account number was refused before reaching this table.

    On PostgreSQL the table is partitioned by month of its id, like `Outcome`: an event's
    id begins with the month it was received, and its notifications' ids with the same
    month, so that one month of events and their notifications are dropped together
    (`services.partitions`). No foreign key is kept in the database; the ORM cascades.
    """

    class Type(models.TextChoices):
        TRANSACTION_POSTED = "transaction.posted", "Transaction posted"
        BALANCE_UPDATED = "balance.updated", "Balance updated"
        FRAUD_ALERT = "fraud.alert", "Fraud alert"
        RECEIPT_ISSUED = "receipt.issued", "Receipt issued"
        SHIPMENT_UPDATED = "shipment.updated", "Shipment updated"

    class Status(models.TextChoices):
        ACCEPTED = "accepted", "Accepted"  # stored; the delivery rules have not run yet
        PROCESSED = "processed", "Processed"  # the rules ran and wrote its notifications

    # Led by the `event_by_bank` index. No foreign keys in the database (partitioned).
    bank = models.ForeignKey(
        Bank, on_delete=models.CASCADE, related_name="events", db_index=False, db_constraint=False
    )
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=32, choices=Type.choices)
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="events", db_constraint=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="events", db_constraint=False
    )
    occurred_at = models.DateTimeField()
    data = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        # A bank's events by month of receipt (the retention purge's look-up).
        indexes = [models.Index(fields=["bank", "id"], name="event_by_bank")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class EventKey(models.Model):
    """A bank's event id, held once: what makes posting an event idempotent.

    A partitioned table cannot hold a unique constraint without its partition key, so the
    bank's ids are kept unique here, in a plain table of small rows keyed by the event
    they name. The ingest inserts the key first (`INSERT … ON CONFLICT DO NOTHING`), and
    only the events whose keys went in (`services.events`). A key lives as long as its
    event: keys are deleted just before their month of events is dropped, and an id
    posted again after that is a new event.
    """

    event = models.OneToOneField(
        Event, primary_key=True, on_delete=models.CASCADE, related_name="key", db_constraint=False
    )
    bank = models.ForeignKey(
        Bank, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    reference = models.CharField(max_length=64)  # the bank's `event_id`

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "reference"], name="one_event_per_bank_id"),
        ]

    def __str__(self) -> str:
        return self.reference


class Outcome(models.Model):
    """One entry of a bank's outcome feed (`GET /api/v1/outcomes`), read with a cursor.

    An outcome is something the core may want to know without polling: an event was
    accepted or rejected, and (with the delivery engine) a notification was sent,
    delivered, read or failed. `id` orders the feed: rows of one bank are written only
    while holding that bank's `OutcomeFeed` row, so they commit in id order and a reader
    past id N never misses a row that commits later with a smaller id.

    On PostgreSQL the table is partitioned by month of its id (`core.db.partitions`): an
    id begins with the month of its INSERT, taken from the clock at that moment (not the
    transaction's start), so ids written under the feed's lock keep increasing across a
    month's end too. Whole months are dropped past a horizon
    (`services.partitions`); no foreign key is kept in the database, the ORM cascades.
    """

    class Type(models.TextChoices):
        EVENT_ACCEPTED = "event.accepted", "Event accepted"
        EVENT_REJECTED = "event.rejected", "Event rejected"
        NOTIFICATION_SENT = "notification.sent", "Notification sent"
        NOTIFICATION_DELIVERED = "notification.delivered", "Notification delivered"
        NOTIFICATION_READ = "notification.read", "Notification read"
        NOTIFICATION_FAILED = "notification.failed", "Notification failed"
        NOTIFICATION_DEAD = "notification.dead", "Notification dead-lettered"
        NOTIFICATION_HANDED_BACK = "notification.handed_back", "Notification handed back"

    # Led by the `outcome_feed` index, which serves the bank's look-ups too.
    # No foreign keys in the database: the table is partitioned by month (migration 0016),
    # and dropping a month with one would lock the table it references. Cascades are the
    # ORM's.
    bank = models.ForeignKey(
        Bank, on_delete=models.CASCADE, related_name="outcomes", db_index=False, db_constraint=False
    )
    type = models.CharField(max_length=40, choices=Type.choices)
    event = models.ForeignKey(
        Event,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outcomes",
        db_constraint=False,
    )
    notification = models.ForeignKey(
        "Notification",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        db_constraint=False,
    )
    # The bank's ids as posted, also for events that were refused and never stored.
    event_ref = models.CharField(max_length=64, blank=True)
    event_type = models.CharField(max_length=32, blank=True)
    details = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["bank", "id"], name="outcome_feed")]

    def __str__(self) -> str:
        return f"{self.type} {self.event_ref}"


class Recipient(models.Model):
    """A person on one Page as the outbox sees them: the order of their notifications.

    `last_sequence` numbers the person's notifications. Writing notifications upserts this
    row and keeps its lock until commit, so two transactions queueing for the same person
    take turns and sequence order is commit order: a worker never sees number 6 before 5.
    `unreachable_at` is set when the platform says the person cannot be reached (error
    551 and kin) and cleared when they next write to the Page; until then nothing more is
    sent to them. On PostgreSQL the table's pages keep half their room free (migration
    0006), so raising the counter updates the row in place, touching no index.

    Unlike links, contacts and conversations, the row is keyed by the Page and PSID alone:
    it holds no bank's data, only the order of what reaches that person from that Page and
    whether the platform can reach them, and a Page serves one bank.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+", db_index=False)
    page_id = models.CharField(max_length=32)
    psid = models.CharField(max_length=32)
    last_sequence = models.PositiveBigIntegerField(default=0)
    unreachable_at = models.DateTimeField(null=True, blank=True)
    unreachable_reason = models.CharField(max_length=300, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["page_id", "psid"], name="one_recipient_per_person"),
        ]

    def __str__(self) -> str:
        return f"{self.psid} on Page {self.page_id}"


class HandBackReason(models.TextChoices):
    """Why Messenger could not carry a notification handed back to the bank (the `reason`
    of a `notification.undeliverable` callback)."""

    OUTSIDE_WINDOW_NO_TEMPLATE = (
        "outside_window_no_template",
        "Outside the 24-hour window, with no approved utility template",
    )
    PERSON_UNREACHABLE = "person_unreachable", "The person cannot be reached on Messenger"
    CONSENT_ENDED = "consent_ended", "The customer's consent ended"
    DEAD_LETTERED = "dead_lettered", "Dead-lettered"
    INTEGRATION_PAUSED = "integration_paused", "The Messenger integration is paused"


class Notification(models.Model):
    """One message to one linked person about one event: the outbox row and its fate.

    Written in the transaction that accepts the event, once per (event, link): the unique
    pair is the dedupe key. A worker claims it with a lease (`lease_owner` until
    `lease_expires_at`); a lease that runs out is taken over. Per person (`page_id`,
    `psid`) notifications go out in `sequence` order, and a partial unique index keeps
    at most one of them in flight (on PostgreSQL, `InFlight`). `send_started_at` marks a
    claim whose message was handed to the Send API: if its worker dies before recording
    the answer, the message may have been sent: the notification is flagged `uncertain`
    and waits for the message's echo (`awaiting_echo`, up to
    `NOTIFICATIONS_ECHO_WAIT_SECONDS`), which makes it sent; without an echo it is sent
    again once, flagged `resent` (`services.echoes`).

    `urgency` is its class, fixed when the row is written (fraud alerts, and the types
    the bank's policy marks urgent, are `urgent`), so a later change of policy does not
    reclassify what is queued. Claims serve due urgent notifications first, and a
    person's urgent message goes before their routine ones; within a class their
    `sequence` order holds (`services.queue`).

    `digest` is set on each of the notifications a digest carried (a Page under backlog
    sends one person's several routine updates as one message, `services.delivery.
    digest`): the id of the notification whose claim sent it, the same for every original
    of one digest. While that message is on its way, the other originals are in flight
    beside it, so the one-in-flight rule counts only rows without `digest`.

    What Messenger cannot carry (held outside the window, the person unreachable, the
    consent ended, dead-lettered, or waiting on a paused integration) is `handed_back` to
    the bank's own channels: a signed `notification.undeliverable` callback, urgent ones at
    once, routine ones after the bank's grace period (`services.hand_back`). That state is
    final: `reason` keeps why, and nothing is sent on Messenger afterwards.

    On PostgreSQL the table is partitioned by month of its id, and an id begins with its
    *event's* month (`services.outbox.write`; a check refuses any other): all of an
    event's notifications sit in one partition, so the pair (event, link) is kept unique
    by an index on each partition
    (`services.partitions`). The one-in-flight rule spans months, so there it is kept by
    `InFlight` rows that triggers maintain. No foreign key is kept in the database.
    """

    class Urgency(models.TextChoices):
        URGENT = "urgent", "Urgent"
        ROUTINE = "routine", "Routine"

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        HELD = "held", "Held"
        IN_FLIGHT = "in_flight", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        READ = "read", "Read"
        FAILED = "failed", "Failed"
        DEAD = "dead", "Dead-lettered"
        CANCELLED = "cancelled", "Cancelled"
        SUPERSEDED = "superseded", "Superseded"
        HANDED_BACK = "handed_back", "Handed back to the bank"

    class Form(models.TextChoices):
        RESPONSE = "response", "Free-form reply (RESPONSE)"
        UPDATE = "update", "Free-form update (UPDATE)"
        UTILITY = "utility", "Utility template"
        HUMAN = "human", "Human agent (HUMAN_AGENT tag)"

    class Reason(models.TextChoices):
        QUEUED = "queued", "Queued"
        QUIET_HOURS = "quiet_hours", "Waiting for the end of quiet hours"
        RATE_LIMITED = "rate_limited", "Waiting for the Page's rate limit"
        RETRYING = "retrying", "Messenger was unavailable; retrying"
        THROTTLED = "throttled", "Messenger throttled the Page; retrying"
        OUTSIDE_WINDOW = "outside_window", "The 24-hour window closed; using the utility template"
        NO_ALLOWED_FORM = "no_allowed_form", "Outside the 24-hour window, no approved template"
        NO_TEMPLATE = "no_template", "No message template for this kind of update"
        INTEGRATION_PAUSED = "integration_paused", "The Messenger integration was paused"
        PERSON_UNAVAILABLE = "person_unavailable", "The person cannot be reached on Messenger"
        LINK_ENDED = "link_ended", "The customer's consent ended"
        NO_LONGER_SHARED = "no_longer_shared", "The customer stopped sharing this account or update"
        SUPERSEDED = "superseded", "A newer balance update replaced it"
        BUDGET_EXHAUSTED = "budget_exhausted", "The retry budget ran out"
        REFUSED = "refused", "Messenger refused the message"
        UNCERTAIN = "uncertain", "It may have been sent: check before replaying"
        AWAITING_ECHO = "awaiting_echo", "It may have been sent: waiting for its echo"
        WORKER_LOST = "worker_lost", "Its worker died mid-send; resent, maybe twice"
        PAGE_CHANGED = "page_changed", "The bank's Facebook Page changed"
        RENDER_FAILED = "render_failed", "The message could not be built"
        REPLAYED = "replayed", "Replayed by staff"

    OPEN = (State.PENDING, State.HELD)
    SENT_STATES = (State.SENT, State.DELIVERED, State.READ)

    # No foreign keys in the database: the table is partitioned by month (migration 0017).
    bank = models.ForeignKey(
        Bank,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    # Both looked up through the indexes below: (event, consent) and open ones by consent.
    event = models.ForeignKey(
        Event,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    consent = models.ForeignKey(
        Consent,
        on_delete=models.CASCADE,
        related_name="notifications",
        db_index=False,
        db_constraint=False,
    )
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    urgency = models.CharField(max_length=8, choices=Urgency.choices, default=Urgency.ROUTINE)
    page_id = models.CharField(max_length=32)
    psid = models.CharField(max_length=32)
    sequence = models.PositiveBigIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    reason = models.CharField(
        max_length=24, choices=Reason.choices, default=Reason.QUEUED, blank=True
    )
    detail = models.CharField(max_length=300, blank=True)
    locale = models.CharField(max_length=10)
    text = models.TextField(blank=True)
    data_categories = models.JSONField(default=list)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    lease_owner = models.CharField(max_length=100, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    send_started_at = models.DateTimeField(null=True, blank=True)
    # Behind an earlier open notification of the same person: out of the due index until
    # that one is done (see `services.delivery.claim.claim_due`).
    waiting = models.BooleanField(default=False)
    window_closed = models.BooleanField(default=False)
    uncertain = models.BooleanField(default=False)
    # Sent again because no echo came for a send that may have gone out: it may have
    # reached the person twice.
    resent = models.BooleanField(default=False)
    form = models.CharField(max_length=16, choices=Form.choices, blank=True)
    message_id = models.CharField(max_length=128, blank=True)
    # Set when handed back to the bank: why Messenger could not carry it (`HandBackReason`).
    hand_back_reason = models.CharField(
        max_length=32, choices=HandBackReason.choices, blank=True, db_default=""
    )
    # The notification whose message carried this one in a digest (itself included).
    digest = models.PositiveBigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # When it (re-)entered the queue: the retry budget's hours count from here.
    queued_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["event", "consent"], name="one_notification_per_link"),
            models.UniqueConstraint(
                fields=["page_id", "psid"],
                condition=Q(state="in_flight", digest__isnull=True),
                name="one_in_flight_per_person",
            ),
        ]
        indexes = [
            # The claim: due pending rows, urgent ones first, oldest first…
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(state="pending", waiting=False, urgency="urgent"),
                name="notification_due_urgent",
            ),
            models.Index(
                fields=["next_attempt_at", "id"],
                condition=Q(state="pending", waiting=False),
                name="notification_due",
            ),
            models.Index(
                fields=["page_id", "psid", "sequence"],
                condition=Q(waiting=True, urgency="urgent"),
                name="notification_waiting_urgent",
            ),
            models.Index(
                fields=["page_id", "psid", "sequence"],
                condition=Q(waiting=True),
                name="notification_waiting",
            ),
            # …that no earlier open notification of the same person holds back.
            models.Index(
                fields=["page_id", "psid", "sequence"],
                condition=Q(state__in=["pending", "in_flight"]),
                name="notification_queue",
            ),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state="in_flight"),
                name="notification_lease",
            ),
            models.Index(
                fields=["page_id", "psid", "sent_at"],
                condition=Q(state__in=["sent", "delivered"]),
                name="notification_unread",
            ),
            models.Index(
                fields=["message_id"], condition=~Q(message_id=""), name="notification_mid"
            ),
            models.Index(
                fields=["consent"],
                condition=Q(state__in=["pending", "held"]),
                name="notification_open_by_link",
            ),
            # The dashboard. Each row passes through several states and every index on it
            # is rewritten each time, so these cover only the rows they are for.
            models.Index(
                fields=["bank", "sent_at"],
                condition=Q(sent_at__isnull=False),
                name="notification_sent",
            ),
            models.Index(
                fields=["bank", "finished_at"],
                condition=Q(state__in=["failed", "dead", "handed_back"]),
                name="notification_failed",
            ),
            models.Index(
                fields=["bank", "queued_at"], condition=Q(resent=True), name="notification_resent"
            ),
            # What Messenger cannot carry, by age: the hand-back's sweep (`services.
            # hand_back`) and the dashboard's warning. Pending ones of a paused
            # integration are found through `notification_queue` instead.
            models.Index(
                fields=["bank", "created_at"],
                condition=Q(state__in=["held", "failed", "dead"])
                | Q(state="cancelled", reason="link_ended"),
                name="notification_hand_back",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} to {self.psid} ({self.get_state_display()})"


class InFlight(models.Model):
    """The one notification in flight to a person (`page_id`, `psid`), on PostgreSQL.

    `Notification`'s partial unique index `one_in_flight_per_person` could only hold
    within one partition, and a person's notifications span months. Triggers on the
    notifications table keep this row instead: a
    row entering `in_flight` (outside a digest) inserts it, leaving deletes it, so a
    second claim of the same person fails with a unique violation, as the index made it
    fail. Nothing else writes here. Elsewhere (SQLite for the demo) the index stays and
    this table stays empty. The triggers are migration 0017's.
    """

    pk = models.CompositePrimaryKey("page_id", "psid")
    page_id = models.CharField(max_length=32)
    psid = models.CharField(max_length=32)
    notification_id = models.BigIntegerField()

    def __str__(self) -> str:
        return f"{self.psid} on Page {self.page_id}: {self.notification_id}"


class OpenFloor(models.Model):
    """The first id of the oldest month that may hold an open notification (pending or
    in flight), on PostgreSQL: one row.

    Statements on open notifications that do not name their ids (the claims, the look-ups
    of a person's queue, the sweeps) say `id >= first_id`, written into their SQL, so that
    PostgreSQL plans and locks only the partitions of months that can hold open ones
    (`services.queue.open_floor`), not a year of closed months. It is lowered by
    triggers (migration 0018), in the transaction that opens a row older than yesterday's
    month (a replay, a held notification released, an event's notifications written late),
    and raised by the outbox sweep (`services.queue.open_floor_raise`) past months with no
    open row left, never beyond the month of two days ago. Elsewhere (SQLite for the demo)
    it stays 0.
    """

    first_id = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"open notifications from id {self.first_id}"


class DeliveryAttempt(models.Model):
    """One call to the Send API for a notification, with what came of it.

    Partitioned by month of its id on PostgreSQL, like `Outcome`, and dropped by month.
    """

    class Outcome(models.TextChoices):
        SENT = "sent", "Sent"
        TRANSIENT = "transient", "Transient error"
        THROTTLED = "throttled", "Throttled"
        OUTSIDE_WINDOW = "outside_window", "Outside the 24-hour window"
        PERSON_UNAVAILABLE = "person_unavailable", "Person unavailable"
        BAD_TOKEN = "bad_token", "Bad Page token"
        PAGE_RESTRICTED = "page_restricted", "Page restricted"
        CONFIG = "config", "Configuration error"
        BAD_REQUEST = "bad_request", "Bad request"
        UNCERTAIN = "uncertain", "Unknown: may have been sent"
        WORKER_LOST = "worker_lost", "Worker died mid-send: may have been sent"

    # Outcomes after which the message may have reached the person without us knowing.
    UNKNOWN = (Outcome.UNCERTAIN, Outcome.WORKER_LOST)

    # No foreign key in the database: partitioned by month, as `Outcome`.
    notification = models.ForeignKey(
        Notification,
        on_delete=models.CASCADE,
        related_name="delivery_attempts",
        db_constraint=False,
    )
    number = models.PositiveIntegerField()
    form = models.CharField(max_length=16, choices=Notification.Form.choices, blank=True)
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    outcome = models.CharField(max_length=24, choices=Outcome.choices)
    error_code = models.IntegerField(null=True, blank=True)
    error_subcode = models.IntegerField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)

    bank_path = "notification__bank"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt {self.number} of notification {self.notification_id}: {self.outcome}"


class DeliveryReceipt(models.Model):
    """A delivery receipt for a message id that no notification carries yet.

    Messenger can confirm delivery before the worker that sent the message has committed
    its id; the receipt waits here and is applied when the id lands. Kept for an hour.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+", db_index=False)
    message_id = models.CharField(max_length=128, unique=True)
    delivered_at = models.DateTimeField()
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return self.message_id


class MessageEcho(models.Model):
    """A copy of a message the bank's Page sent, as Meta echoes it (`message_echoes`).

    Stored once per (bank, `mid`): webhooks are retried, and a retried echo changes
    nothing. The metadata carries bankside's reference (`messenger.references`), which
    says which notification or reply the echo is the copy of; the echo proves that
    message went out, whatever its worker recorded (`services.echoes`). The person is
    held as a pseudonym of their PSID, never the PSID; no message text is kept.
    """

    class Source(models.TextChoices):
        BANKSIDE = "bankside", "bankside"
        PAGE_INBOX = "page_inbox", "Page inbox or another app"

    class Outcome(models.TextChoices):
        SETTLED = "settled", "Settled a send that may have gone out"
        CONFIRMED = "confirmed", "Confirmed a recorded send"
        EARLY = "early", "Arrived before its send was recorded"
        EXTRA = "extra", "A second copy of a message already sent"
        REPLY = "reply", "A conversation reply"
        LINK = "link", "A link message"
        PAGE_INBOX = "page_inbox", "Written in Meta's Page inbox"
        UNKNOWN = "unknown", "No message of ours has this reference"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+", db_index=False)
    page_id = models.CharField(max_length=32)
    recipient_ref = models.CharField(max_length=64)  # `portal.pseudonyms.pseudonym(psid)`
    app_id = models.CharField(max_length=32, blank=True)
    metadata = models.CharField(max_length=1000, blank=True)
    mid = models.CharField(max_length=128)
    source = models.CharField(max_length=12, choices=Source.choices)
    outcome = models.CharField(max_length=12, choices=Outcome.choices)
    notification = models.ForeignKey(
        Notification,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="echoes",
        db_constraint=False,
    )
    sent_at = models.DateTimeField()  # the echo's timestamp: when the Page sent it
    received_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["bank", "mid"], name="one_echo_per_mid"),
        ]
        indexes = [models.Index(fields=["bank", "received_at"], name="echo_received")]

    def __str__(self) -> str:
        return f"echo {self.mid} ({self.get_outcome_display()})"


class OutcomeFeed(models.Model):
    """The lock that orders one bank's outcome feed; see `Outcome`."""

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="outcome_feed")
    touched_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"outcome feed of {self.bank}"


# Conversation: what customers write to the bank's Page, the answers, and the agent inbox.
