"""The audit log: hash chains of entries, their integrity checks and checkpoints."""

from django.db import models
from django.utils import timezone

from portal.models.banks import Bank
from portal.tenancy import BankScopedQuerySet


class AuditChain(models.Model):
    """The head of one hash chain of audit entries: one per bank, and one for the platform.

    Writers lock this row to append, so concurrent writers never fork a chain; the head
    also lets verification notice entries cut off the end of the chain.
    """

    PLATFORM_KEY = "platform"

    key = models.CharField(max_length=40, unique=True)
    bank = models.OneToOneField(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_chain"
    )
    head_seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def key_for(bank: Bank | None) -> str:
        return AuditChain.key_of(bank.pk if bank else None)

    @staticmethod
    def key_of(bank_id: int | None) -> str:
        return AuditChain.PLATFORM_KEY if bank_id is None else f"bank:{bank_id}"


class AuditEvent(models.Model):
    """One append-only entry of the audit log, hash-chained to the previous entry of its chain.

    A database trigger refuses UPDATE and DELETE on this table; `hash` covers every field
    and `prev_hash`, so an edited, removed or reordered entry breaks the chain.
    """

    class ActorType(models.TextChoices):
        STAFF = "staff", "Staff user"
        API_KEY = "api_key", "API key"
        CUSTOMER = "customer", "Customer"
        PLATFORM = "platform", "Messaging platform"
        SYSTEM = "system", "System"

    # Both foreign keys lead composite indexes below, which also serve their look-ups.
    chain = models.ForeignKey(
        AuditChain, on_delete=models.PROTECT, related_name="events", db_index=False
    )
    seq = models.PositiveBigIntegerField()
    bank = models.ForeignKey(
        Bank,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="audit_events",
        db_index=False,
    )
    occurred_at = models.DateTimeField()
    actor_type = models.CharField(max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=80)
    target_type = models.CharField(max_length=80, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    source_ip = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    data_categories = models.JSONField(default=list, blank=True)
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["chain_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="one_entry_per_chain_position"),
            # A constraint rather than `unique=True`: no second, pattern-matching index.
            models.UniqueConstraint(fields=["hash"], name="one_entry_per_hash"),
        ]
        indexes = [
            models.Index(fields=["bank", "-occurred_at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["action"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label or self.actor_type}"


class AuditIntegrityCheck(models.Model):
    """The outcome of recomputing one audit chain: intact, or where and why it first broke.

    Written by the daily beat task and by "Verify now"; the newest row of a chain is what
    the integrity page and the dashboard alarm show.
    """

    class Trigger(models.TextChoices):
        SCHEDULED = "scheduled", "Daily check"
        MANUAL = "manual", "Verify now"

    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="checks")
    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_checks"
    )
    checked_at = models.DateTimeField(default=timezone.now)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    requested_by = models.CharField(max_length=200, blank=True)
    intact = models.BooleanField()
    entries = models.PositiveBigIntegerField()
    broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at", "-pk"]
        indexes = [models.Index(fields=["chain", "-checked_at"])]

    def __str__(self) -> str:
        state = "intact" if self.intact else f"broken at #{self.broken_seq}"
        return f"{self.chain.key} {state} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class AuditCheckpoint(models.Model):
    """A signed statement of one chain's head (key, seq, hash, time).

    Anyone holding an exported checkpoint and the public key can later prove that no entry
    up to `head_seq` changed: the chain must still reach `head_hash` at that position.
    """

    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="checkpoints")
    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_checkpoints"
    )
    head_seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    signed_at = models.DateTimeField()
    algorithm = models.CharField(max_length=16, default="Ed25519")
    public_key = models.CharField(max_length=64)  # base64 of the raw 32-byte key
    signature = models.CharField(max_length=128)  # base64 of the 64-byte signature

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-signed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.chain.key} #{self.head_seq} at {self.signed_at:%Y-%m-%d %H:%M:%S}"
