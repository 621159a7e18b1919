"""The audit log: hash chains of entries, their integrity checks and checkpoints."""

from django.db import models
from django.utils import timezone

from portal.models.banks import Bank
from portal.tenancy import BankScopedQuerySet


class AuditChain(models.Model):
    """The head of one lane of an audit log: a hash chain of its own.

    Each bank's audit log, and the platform's, is a `scope` spread over lanes numbered
    from 0 (up to `AUDIT_CHAIN_LANES`, portal.services.audit), so that concurrent writers
    of one bank each lock a lane of their own and never wait on each other. Lane 0's key
    is the scope's ("bank:5", "platform", the one chain a scope had before lanes); lane n's
    is "bank:5/n". A writer locks a lane's head to append, so a lane never forks; the
    heads let verification notice entries cut off the end of a lane, and a checkpoint
    signs every lane's head of its scope together.
    """

    PLATFORM_KEY = "platform"

    key = models.CharField(max_length=40, unique=True)
    scope = models.CharField(max_length=40)
    lane = models.PositiveSmallIntegerField(default=0)
    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_chains"
    )
    head_seq = models.PositiveBigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, default="0" * 64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "lane"], name="one_chain_per_scope_lane"),
        ]

    def __str__(self) -> str:
        return self.key

    @staticmethod
    def scope_for(bank: Bank | None) -> str:
        """The scope (lane 0's key) of `bank`'s audit log, the platform's for None."""
        return AuditChain.scope_of(bank.pk if bank else None)

    @staticmethod
    def scope_of(bank_id: int | None) -> str:
        return AuditChain.PLATFORM_KEY if bank_id is None else f"bank:{bank_id}"

    @staticmethod
    def lane_key(scope: str, lane: int) -> str:
        """The key of lane `lane` of `scope`: the scope's own for lane 0."""
        return scope if lane == 0 else f"{scope}/{lane}"


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
        # Each lane is in `seq` order; across lanes, entries are in the order they were
        # made, then stored.
        ordering = ["occurred_at", "id"]
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
    """The outcome of recomputing one audit log (every lane of a scope; `chain` is its
    lane 0): intact, or the lane, entry and reason where it first broke.

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
    broken_lane = models.PositiveSmallIntegerField(null=True, blank=True)
    broken_seq = models.PositiveBigIntegerField(null=True, blank=True)
    broken_event_id = models.BigIntegerField(null=True, blank=True)
    reason = models.TextField(blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-checked_at", "-pk"]
        indexes = [models.Index(fields=["chain", "-checked_at"])]

    def __str__(self) -> str:
        state = "intact" if self.intact else f"broken at #{self.broken_seq}"
        return f"{self.chain.scope} {state} at {self.checked_at:%Y-%m-%d %H:%M:%S}"


class AuditCheckpoint(models.Model):
    """A signed statement of the heads of one audit log (`chain` is its lane 0).

    Since lanes (format v2, portal.checkpoints), `lanes` lists every lane's key, head_seq
    and head_hash as signed; `head_seq` is then the entries of all lanes together and
    `head_hash` the digest of that list. A v1 checkpoint, signed before lanes, has no
    `lanes`: its `head_seq` and `head_hash` are lane 0's head. Anyone holding an exported
    checkpoint and the public key can later prove that no entry up to a signed head
    changed, and that no lane signed went missing.
    """

    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="checkpoints")
    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_checkpoints"
    )
    head_seq = models.PositiveBigIntegerField()
    head_hash = models.CharField(max_length=64)
    lanes = models.JSONField(default=list, blank=True)
    signed_at = models.DateTimeField()
    algorithm = models.CharField(max_length=16, default="Ed25519")
    public_key = models.CharField(max_length=64)  # base64 of the raw 32-byte key
    signature = models.CharField(max_length=128)  # base64 of the 64-byte signature

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-signed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.chain.scope} #{self.head_seq} at {self.signed_at:%Y-%m-%d %H:%M:%S}"
