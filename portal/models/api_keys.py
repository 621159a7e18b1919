"""API keys of the banks' core systems, and what the API keeps for them: request
signing, rate limits, idempotent responses and the signed-request ids already seen.

All but `ApiKey` keep the tables notifications created for them (`db_table`).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from core.api.scopes import ALL_SCOPES
from core.encryption import EncryptedTextField
from portal.models.banks import Bank
from portal.tenancy import BankScopedQuerySet


def all_scopes() -> list[str]:
    return list(ALL_SCOPES)


class ApiKey(models.Model):
    """A credential one bank's core systems use to call `/api/v1/`.

    The key is `bsk_<prefix>_<secret>`: the prefix finds the row, and only the SHA-256 of
    the 32-byte random secret is stored, compared in constant time. The full key is shown
    once, when it is created.

    A key holds the scopes of what it may call (`core.api.scopes`), may expire, and may be
    limited to some source addresses. Rolling a key issues its successor (`rolled_from`
    names the old key) with the same name, scopes and addresses; the old key (`rolled_at`)
    keeps working until the end of the overlap chosen (`expires_at`).
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    scopes = models.JSONField(default=all_scopes)
    expires_at = models.DateTimeField(null=True, blank=True)
    allowed_networks = models.JSONField(
        default=list, blank=True, help_text="Addresses and CIDR blocks; empty allows any."
    )
    rolled_at = models.DateTimeField(null=True, blank=True)
    rolled_from = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="successor"
    )

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["revoked_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "name"],
                condition=models.Q(revoked_at__isnull=True, rolled_at__isnull=True),
                name="one_active_api_key_name_per_bank",
                violation_error_message="An active API key with this name already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return f"bsk_{self.prefix}…"

    @property
    def is_active(self) -> bool:
        """Not revoked and not expired: requests made with it are accepted."""
        return self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def is_rolling_over(self) -> bool:
        """Replaced by a successor, and still working until `expires_at`."""
        return self.rolled_at is not None and self.is_active


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
        db_table = "notifications_idempotencyrecord"
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

    class Meta:
        db_table = "notifications_apisigning"

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
        db_table = "notifications_signedrequestid"
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

    class Meta:
        db_table = "notifications_apikeyratelimit"

    def __str__(self) -> str:
        return f"{self.api_key}: {self.per_second:g}/s, burst {self.burst}"
