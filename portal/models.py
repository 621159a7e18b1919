import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone

from bankside.encryption import EncryptedTextField
from portal.tenancy import BankScopedQuerySet


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (for example Europe/London).")


locale_validator = RegexValidator(
    r"^[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?$", "Use a locale such as en, fr or pt_BR."
)


class Bank(models.Model):
    """A bank using bankside: the tenant every other row belongs to."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    default_locale = models.CharField(max_length=10, default="en", validators=[locale_validator])
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)
    require_2fa_for_all = models.BooleanField(
        "Require two-factor sign-in for all staff",
        default=False,
        help_text="Admins always need it; this extends it to operators and auditors.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    bank_path = "pk"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class StaffMembership(models.Model):
    """A staff user's role at one bank. Platform admins are superusers and need none."""

    class Role(models.TextChoices):
        ADMIN = "admin", "Bank admin"
        OPERATOR = "operator", "Bank operator"
        AUDITOR = "auditor", "Bank auditor"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "bank"], name="one_membership_per_bank"),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.get_role_display()}) at {self.bank}"


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
        return f"bank:{bank.pk}" if bank else AuditChain.PLATFORM_KEY


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

    chain = models.ForeignKey(AuditChain, on_delete=models.PROTECT, related_name="events")
    seq = models.PositiveBigIntegerField()
    bank = models.ForeignKey(
        Bank, null=True, blank=True, on_delete=models.PROTECT, related_name="audit_events"
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
    hash = models.CharField(max_length=64, unique=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["chain_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["chain", "seq"], name="one_entry_per_chain_position"),
        ]
        indexes = [
            models.Index(fields=["bank", "-occurred_at"]),
            models.Index(fields=["target_type", "target_id"]),
            models.Index(fields=["action"]),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} by {self.actor_label or self.actor_type}"


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the periodic heartbeat task."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"


class MessengerIntegration(models.Model):
    """A bank's connection to its Facebook Page. The Page token and secrets are encrypted."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        VERIFIED = "verified", "Verified"
        LIVE = "live", "Live"
        PAUSED = "paused", "Paused"

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="integration")
    page_id = models.CharField(
        max_length=32, validators=[RegexValidator(r"^\d{5,32}$", "A Page ID is all digits.")]
    )
    page_access_token = EncryptedTextField()
    app_secret = EncryptedTextField()
    verify_token = models.CharField(max_length=128)
    callback_url = models.URLField(blank=True)
    callback_signing_secret = EncryptedTextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.CharField(max_length=300, blank=True)
    paused_from = models.CharField(max_length=16, choices=Status.choices, blank=True)
    page_name = models.CharField(max_length=200, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.bank} → Page {self.page_id}"


class StaffInvitation(models.Model):
    """An invitation to join one bank's staff with a role.

    Single use and valid for 72 hours. Only the SHA-256 of the token is stored: the link
    is shown once, to the person who created it, and cannot be recovered afterwards.
    """

    LIFETIME = timedelta(hours=72)

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ACCEPTED = "accepted", "Accepted"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=StaffMembership.Role.choices)
    email = models.EmailField("Invitee's email", blank=True)
    token_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation to {self.bank} as {self.get_role_display()}"

    @property
    def state(self) -> str:
        if self.accepted_at:
            return self.State.ACCEPTED
        if self.revoked_at:
            return self.State.REVOKED
        if self.expires_at <= timezone.now():
            return self.State.EXPIRED
        return self.State.PENDING

    def get_state_display(self) -> str:
        return self.State(self.state).label


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
