"""Core-banking events and their outcomes, and the API's edge: idempotency records,
request-signing settings, seen signed-request ids and per-key rate limits."""

from django.db import models
from django.utils import timezone

from bankside.encryption import EncryptedTextField
from linking.models import Account, Customer
from portal.models import ApiKey, Bank
from portal.tenancy import BankScopedQuerySet


class Event(models.Model):
    """One account event posted by the bank's core, stored once per (bank, event id).

    The bank's `event_id` makes a post idempotent: a second post of the same id changes
    nothing. Only validated data is stored; anything that looked like a full card or
    account number was refused before reaching this table.
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

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="events")
    event_id = models.CharField(max_length=64)
    type = models.CharField(max_length=32, choices=Type.choices)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="events")
    occurred_at = models.DateTimeField()
    data = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACCEPTED)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["bank", "event_id"], name="one_event_per_bank_id"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.event_id}"


class Outcome(models.Model):
    """One entry of a bank's outcome feed (`GET /api/v1/outcomes`), read with a cursor.

    An outcome is something the core may want to know without polling: an event was
    accepted or rejected, and (with the delivery engine) a notification was sent,
    delivered, read or failed. `id` orders the feed: rows of one bank are written only
    while holding that bank's `OutcomeFeed` row, so they commit in id order and a reader
    past id N never misses a row that commits later with a smaller id.
    """

    class Type(models.TextChoices):
        EVENT_ACCEPTED = "event.accepted", "Event accepted"
        EVENT_REJECTED = "event.rejected", "Event rejected"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="outcomes")
    type = models.CharField(max_length=40, choices=Type.choices)
    event = models.ForeignKey(
        Event, null=True, blank=True, on_delete=models.CASCADE, related_name="outcomes"
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


class OutcomeFeed(models.Model):
    """The lock that orders one bank's outcome feed; see `Outcome`."""

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="outcome_feed")
    touched_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"outcome feed of {self.bank}"


class IdempotencyRecord(models.Model):
    """The first response to a write sent with an `Idempotency-Key`, replayed for 24 hours.

    Unique per (bank, key, endpoint). The row is inserted in the same transaction as the
    write it guards, so a concurrent identical request waits on the unique index and then
    replays the committed response; `fingerprint` (SHA-256 of the body) tells a retry from
    a different request reusing the key.
    """

    LIFETIME_HOURS = 24

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    content_type = models.CharField(max_length=100)
    body = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "key", "endpoint"], name="one_response_per_idempotency_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint} [{self.key}]"


class ApiSigning(models.Model):
    """A bank's settings for signed API requests (Standard Webhooks style).

    With a secret, requests carrying `webhook-signature` are verified; with `required`,
    unsigned requests are refused too. The secret is encrypted at rest and shown once.
    """

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="api_signing")
    secret = EncryptedTextField(blank=True)
    required = models.BooleanField(default=False)
    rotated_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"API signing of {self.bank} ({'required' if self.required else 'optional'})"


class SignedRequestId(models.Model):
    """A `webhook-id` already seen from a bank: a signed request cannot be replayed.

    Kept for twice the timestamp tolerance; older requests fail the timestamp check anyway.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+")
    webhook_id = models.CharField(max_length=255)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "webhook_id"], name="one_use_per_webhook_id"),
        ]

    def __str__(self) -> str:
        return self.webhook_id


class ApiKeyRateLimit(models.Model):
    """A per-key override of the API rate limit (`API_RATE_LIMIT_PER_SECOND`/`_BURST`)."""

    api_key = models.OneToOneField(ApiKey, on_delete=models.CASCADE, related_name="rate_limit")
    per_second = models.FloatField()
    burst = models.PositiveIntegerField()

    bank_path = "api_key__bank"
    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.api_key}: {self.per_second:g}/s, burst {self.burst}"
