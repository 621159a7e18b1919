"""API keys of the banks' core systems."""

from django.conf import settings
from django.db import models

from portal.models.banks import Bank
from portal.tenancy import BankScopedQuerySet


class ApiKey(models.Model):
    """A credential one bank's core systems use to call `/api/v1/`.

    The key is `bsk_<prefix>_<secret>`: the prefix finds the row, and only the SHA-256 of
    the 32-byte random secret is stored, compared in constant time. The full key is shown
    once, when it is created.
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

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["revoked_at", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "name"],
                condition=models.Q(revoked_at__isnull=True),
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
        return self.revoked_at is None
