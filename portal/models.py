import zoneinfo
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from core.encryption import EncryptedTextField
from portal.events import DataScope, EventType
from portal.policies import PolicyRules
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


class StaffTOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A staff member's authenticator app: django-otp's TOTP device, its seed encrypted.

    The seed is all it takes to produce every future code, so it is stored like the other
    secrets (`EncryptedTextField`, rotated by `rotate_encryption_keys`): a dump of the
    database does not yield anyone's second factor. Verification, drift, replay protection
    and throttling are django-otp's own TOTP device's.
    """

    key = EncryptedTextField(
        validators=[key_validator],
        default=default_key,
        help_text="A hex-encoded secret key of up to 40 bytes.",
    )
    step = models.PositiveSmallIntegerField(default=30)
    t0 = models.BigIntegerField(default=0)
    digits = models.PositiveSmallIntegerField(choices=[(6, 6), (8, 8)], default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1)

    bin_key = TOTPDevice.bin_key
    verify_token = TOTPDevice.verify_token
    get_throttle_factor = TOTPDevice.get_throttle_factor
    config_url = TOTPDevice.config_url
    _read_str_from_settings = TOTPDevice._read_str_from_settings

    class Meta(Device.Meta):
        verbose_name = "authenticator app"


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


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the periodic heartbeat task."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"


PAGE_TAKEN = (
    "This Page is already connected to another bank. A Page can serve one bank only: check "
    "the Page ID, or ask the platform team to release the Page first."
)


class MessengerIntegration(models.Model):
    """A bank's connection to its Facebook Page. The Page token and secrets are encrypted.

    A Page serves one bank only: Messenger's webhooks, PSIDs and Send API calls are keyed
    by the Page, so a Page two banks could name would let one bank speak for the other and
    reach its customers. The database holds that rule (`one_bank_per_page`).
    """

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

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["page_id"],
                condition=~models.Q(page_id=""),
                name="one_bank_per_page",
                violation_error_message=PAGE_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank} → Page {self.page_id}"


class RetentionPolicy(models.Model):
    """How long a bank keeps message bodies and event data before the daily purge.

    Past `months`, the purge blanks what was said (message texts, event data) and deletes
    what only served delivery (last-contact times); delivery outcomes, consents and audit
    entries stay. A bank without a row keeps the default.
    """

    DEFAULT_MONTHS = 13
    MIN_MONTHS = 1
    MAX_MONTHS = 120

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="retention")
    months = models.PositiveSmallIntegerField(
        "Keep message bodies and events for (months)",
        default=DEFAULT_MONTHS,
        validators=[MinValueValidator(MIN_MONTHS), MaxValueValidator(MAX_MONTHS)],
        help_text="From 1 to 120 months; 13 keeps a year at hand plus a month.",
    )
    last_purged_at = models.DateTimeField(null=True, blank=True)
    last_purge_counts = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.bank}: {self.months} months"


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


class NotificationSettings(models.Model):
    """A bank's settings for customer consent: the scopes pre-selected and how long it lasts."""

    bank = models.OneToOneField(
        Bank, on_delete=models.CASCADE, related_name="notification_settings"
    )
    essential_scopes = models.JSONField(
        default=list,
        blank=True,
        help_text="Scopes pre-selected on the consent screen; the customer can still untick them.",
    )
    consent_duration_days = models.PositiveSmallIntegerField(
        default=90, validators=[MinValueValidator(1), MaxValueValidator(365)]
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "notification settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(consent_duration_days__gte=1, consent_duration_days__lte=365),
                name="consent_duration_1_to_365_days",
            ),
        ]

    def __str__(self) -> str:
        return f"Notification settings of {self.bank}"

    def clean(self) -> None:
        scopes = self.essential_scopes
        if not isinstance(scopes, list) or any(s not in DataScope.values for s in scopes):
            raise ValidationError(
                {"essential_scopes": f"Choose among: {', '.join(DataScope.values)}."}
            )
        # One spelling of the same choice: each scope once, in the consent screen's order.
        self.essential_scopes = [s for s in DataScope.values if s in scopes]


class NotificationPolicy(models.Model):
    """Whether, and when, one kind of event is sent to a bank's customers.

    Thresholds belong to one event type each: a minimum amount to large transactions, a
    low-balance ceiling to balance updates. Quiet hours are wall-clock times in the
    bank's time zone and may wrap midnight. Fraud alerts can never be held by quiet
    hours: the database refuses them on that row, and `portal.policies.decide` ignores
    them for fraud alerts whatever it is given.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="notification_policies")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    enabled = models.BooleanField("Send these notifications", default=True)
    min_amount = models.DecimalField(
        "Only for amounts of at least",
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text="In the account's currency. Leave blank to send every transaction.",
    )
    low_balance_below = models.DecimalField(
        "Only when the balance is below",
        max_digits=18,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="In the account's currency. Leave blank to send every balance update.",
    )
    quiet_hours_start = models.TimeField(null=True, blank=True)
    quiet_hours_end = models.TimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["bank", "event_type"]
        verbose_name_plural = "notification policies"
        constraints = [
            models.UniqueConstraint(fields=["bank", "event_type"], name="one_policy_per_event"),
            models.CheckConstraint(
                condition=models.Q(min_amount__isnull=True)
                | models.Q(event_type=EventType.TRANSACTION_POSTED, min_amount__gt=0),
                name="min_amount_only_for_transactions",
            ),
            models.CheckConstraint(
                condition=models.Q(low_balance_below__isnull=True)
                | models.Q(event_type=EventType.BALANCE_UPDATED),
                name="low_balance_only_for_balances",
            ),
            models.CheckConstraint(
                condition=models.Q(quiet_hours_start__isnull=True, quiet_hours_end__isnull=True)
                | (
                    models.Q(quiet_hours_start__isnull=False, quiet_hours_end__isnull=False)
                    & ~models.Q(quiet_hours_start=models.F("quiet_hours_end"))
                    & ~models.Q(event_type=EventType.FRAUD_ALERT)
                ),
                name="quiet_hours_whole_and_never_for_fraud",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} at {self.bank}"

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.min_amount is not None and self.event_type != EventType.TRANSACTION_POSTED:
            errors["min_amount"] = "A minimum amount applies to transactions only."
        if self.low_balance_below is not None and self.event_type != EventType.BALANCE_UPDATED:
            errors["low_balance_below"] = "A low-balance threshold applies to balance updates only."
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is not None or end is not None:
            if self.event_type == EventType.FRAUD_ALERT:
                errors["quiet_hours_start"] = (
                    "Fraud alerts are always sent at once: they have no quiet hours."
                )
            elif start is None or end is None:
                errors["quiet_hours_start" if start is None else "quiet_hours_end"] = (
                    "Give both the start and the end of the quiet hours, or neither."
                )
            elif start == end:
                errors["quiet_hours_end"] = "The quiet hours must end at a different time."
        if errors:
            raise ValidationError(errors)

    @property
    def has_quiet_hours(self) -> bool:
        return self.quiet_hours_start is not None and self.quiet_hours_end is not None

    def rules(self) -> PolicyRules:
        """This policy as the plain values `portal.policies.decide` works on."""
        return PolicyRules(
            event_type=self.event_type,
            enabled=self.enabled,
            min_amount=self.min_amount,
            low_balance_below=self.low_balance_below,
            quiet_start=self.quiet_hours_start,
            quiet_end=self.quiet_hours_end,
            timezone=self.bank.timezone,
        )


class MessageTemplate(models.Model):
    """The text a bank sends for one event type in one language, with `{placeholder}` fields.

    Every event type has a template in the bank's default locale (it cannot be deleted);
    other locales are optional. The text is checked against the placeholders of its
    event type when it is saved (`portal.rendering.validate_template`).
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="message_templates")
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    locale = models.CharField(max_length=10, validators=[locale_validator])
    body = models.TextField(validators=[MaxLengthValidator(2000)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["event_type", "locale"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "event_type", "locale"],
                name="one_template_per_event_and_locale",
                violation_error_message="This event type already has a template in that language.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_event_type_display()} ({self.locale}) at {self.bank}"


class DeliveryRulesStamp(models.Model):
    """Which version of a bank's delivery rules (its notification policies and message
    templates) is current: a number never used before, set by the database whenever one
    of those rows is inserted, changed or deleted, by any means.

    A post of events reads the stamp with the customers and accounts it names
    (`notifications.services.events`), and its events are planned with the rules kept for
    that stamp, read again only when the stamp has moved (`notifications.services.outbox`).
    On PostgreSQL triggers write it (migration 0010), from a sequence, so even a change
    rolled back never brings an old stamp back. Elsewhere (SQLite, the demo) there are
    no stamps and rules are read for every post. The application never writes it.
    """

    bank = models.OneToOneField(
        Bank,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="+",
        # No constraint: the triggers may stamp a bank in the statement that deletes it.
        db_constraint=False,
    )
    stamp = models.BigIntegerField()

    def __str__(self) -> str:
        return f"Delivery rules of bank {self.bank_id}: stamp {self.stamp}"


class UtilityTemplate(models.Model):
    """A message template registered with Meta as a UTILITY template, for out-of-window sends.

    Meta keeps the text with numbered parameters (`{{1}}`…); `param_names` says which
    placeholder each number is, so the delivery engine sends the values in order. A
    registration is frozen: an edited message template is registered again under a new
    version of the name, and the newest approved registration is the one used.
    """

    class Status(models.TextChoices):
        PENDING = "PENDING", "Pending review"
        APPROVED = "APPROVED", "Approved"
        REJECTED = "REJECTED", "Rejected"
        PAUSED = "PAUSED", "Paused by Meta"
        DISABLED = "DISABLED", "Disabled by Meta"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="utility_templates")
    message_template = models.ForeignKey(
        MessageTemplate, on_delete=models.CASCADE, related_name="utility_templates"
    )
    event_type = models.CharField(max_length=32, choices=EventType.choices)
    locale = models.CharField(max_length=10)
    version = models.PositiveIntegerField()
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=10)
    platform_template_id = models.CharField(max_length=64)
    source_body = models.TextField()
    platform_body = models.TextField()
    param_names = models.JSONField(default=list)
    status = models.CharField(max_length=24, default=Status.PENDING)
    rejected_reason = models.CharField(max_length=300, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)
    status_checked_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-submitted_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "event_type", "locale", "version"],
                name="one_utility_template_per_version",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language}, {self.status})"

    def get_status_display(self) -> str:
        return self.Status(self.status).label if self.status in self.Status.values else self.status

    @property
    def is_approved(self) -> bool:
        return self.status == self.Status.APPROVED

    @property
    def numbered_params(self) -> list[tuple[str, str]]:
        """`[("{{1}}", "amount"), …]`: which placeholder each of Meta's numbers stands for."""
        return [(f"{{{{{n}}}}}", name) for n, name in enumerate(self.param_names, start=1)]

    @property
    def is_current(self) -> bool:
        """Whether the message template still reads as it did when this was registered."""
        return self.source_body == self.message_template.body
