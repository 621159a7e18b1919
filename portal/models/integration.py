"""A bank's Messenger integration, retention, and its notification policies and templates."""

from datetime import datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxLengthValidator,
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models

from core.encryption import EncryptedTextField
from portal.events import DataScope, EventType
from portal.models.banks import Bank, locale_validator
from portal.policies import PolicyRules
from portal.tenancy import BankScopedQuerySet

SEND_RATE_LIMIT_MAX = 300  # the Send API's calls per second per Page (messenger-platform §4)
SEND_RATE_LIMIT_ERROR = (
    "Enter a whole number of calls per second from 1 to 300: Meta allows at most 300 "
    "Send API calls per second per Page."
)

PAGE_TAKEN = (
    "This Page is already connected to another bank. A Page can serve one bank only: check "
    "the Page ID, or ask the platform team to release the Page first."
)


class MessengerIntegration(models.Model):
    """A bank's connection to its Facebook Page. The Page token and secrets are encrypted.

    A Page serves one bank only: Messenger's webhooks, PSIDs and Send API calls are keyed
    by the Page, so a Page two banks could name would let one bank speak for the other and
    reach its customers. The database holds that rule (`one_bank_per_page`).

    `send_rate_limit` is the share of the Page's Send API limit bankside may use: a bank
    lowers it to leave room for other systems that send from the same Page, and can never
    raise it past the platform's 300 calls per second.
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
    # The Meta app bankside sends as: an echo from any other app is a person answering in
    # Meta's Page inbox (or another tool on the Page). Blank: only our reference in an
    # echo's metadata tells our messages apart.
    app_id = models.CharField(
        "App ID",
        max_length=32,
        blank=True,
        validators=[RegexValidator(r"^\d{1,32}$", "An App ID is all digits.")],
        help_text="The ID of the Meta app whose secret is entered here (App Dashboard, "
        "Settings, Basic). Messages that other apps or people in Meta's Page inbox send from "
        "the Page are then shown in the agent inbox as theirs.",
    )
    verify_token = models.CharField(max_length=128)
    callback_url = models.URLField(blank=True)
    callback_signing_secret = EncryptedTextField(blank=True)
    # The secret before the last rotation, which still signs callbacks (beside the new one)
    # until `..._previous_until`, so the bank's receiver can switch without missing any.
    callback_signing_secret_previous = EncryptedTextField(blank=True)
    callback_signing_secret_previous_until = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    status_reason = models.CharField(max_length=300, blank=True)
    paused_from = models.CharField(max_length=16, choices=Status.choices, blank=True)
    page_name = models.CharField(max_length=200, blank=True)
    checked_at = models.DateTimeField(null=True, blank=True)
    # The Page's webhook subscription for the app, as last set: made on going live and
    # again on each check of a live integration (`integration_subscribe`).
    subscribed_fields = models.JSONField(default=list, blank=True)
    subscribed_at = models.DateTimeField(null=True, blank=True)
    subscribed_by = models.CharField(max_length=200, blank=True)
    send_rate_limit = models.PositiveSmallIntegerField(
        "Send API calls per second",
        default=SEND_RATE_LIMIT_MAX,
        validators=[
            MinValueValidator(1, SEND_RATE_LIMIT_ERROR),
            MaxValueValidator(SEND_RATE_LIMIT_MAX, SEND_RATE_LIMIT_ERROR),
        ],
        help_text="Send API calls per second for this Page. Meta allows 300; set less if "
        "other systems send from this Page.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    send_rate_limit__gte=1, send_rate_limit__lte=SEND_RATE_LIMIT_MAX
                ),
                name="send_rate_limit_1_to_300",
                violation_error_message=SEND_RATE_LIMIT_ERROR,
            ),
            models.UniqueConstraint(
                fields=["page_id"],
                condition=~models.Q(page_id=""),
                name="one_bank_per_page",
                violation_error_message=PAGE_TAKEN,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bank} → Page {self.page_id}"

    def callback_signing_secrets(self, at: datetime) -> list[str]:
        """The secrets that sign a callback sent `at`: the current one, and the previous
        one while its overlap lasts (Standard Webhooks lets a header carry both)."""
        secrets = [self.callback_signing_secret] if self.callback_signing_secret else []
        until = self.callback_signing_secret_previous_until
        if self.callback_signing_secret_previous and until is not None and at < until:
            secrets.append(self.callback_signing_secret_previous)
        return secrets


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


HAND_BACK_GRACE_MAX_MINUTES = 1440  # a day: a routine update older than that is stale


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
    # How long a routine update Messenger cannot carry waits for it (the window may open,
    # the integration resume) before it is handed back to the bank's own channels. Urgent
    # ones are handed back at once.
    hand_back_grace_minutes = models.PositiveSmallIntegerField(
        default=60,
        validators=[MinValueValidator(0), MaxValueValidator(HAND_BACK_GRACE_MAX_MINUTES)],
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
            models.CheckConstraint(
                condition=models.Q(hand_back_grace_minutes__lte=HAND_BACK_GRACE_MAX_MINUTES),
                name="hand_back_grace_at_most_a_day",
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

    `urgent` marks the type's notifications urgent: they go out before routine ones
    whenever both are due. Fraud alerts are urgent whatever the row says (`is_urgent`);
    an urgent type other than fraud alerts still keeps its quiet hours.
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
    urgent = models.BooleanField(
        "Urgent",
        default=False,
        help_text="Urgent notifications go out before routine ones, even when a large "
        "backlog of routine updates is waiting. Fraud alerts are always urgent.",
    )
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

    @property
    def is_urgent(self) -> bool:
        return self.urgent or self.event_type == EventType.FRAUD_ALERT

    def rules(self) -> PolicyRules:
        """This policy as the plain values `portal.policies.decide` works on."""
        return PolicyRules(
            event_type=self.event_type,
            enabled=self.enabled,
            min_amount=self.min_amount,
            low_balance_below=self.low_balance_below,
            quiet_start=self.quiet_hours_start,
            quiet_end=self.quiet_hours_end,
            urgent=self.urgent,
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
