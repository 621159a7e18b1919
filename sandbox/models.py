"""The sandbox's own state: what Meta would hold for a Page, its users and its threads.

Nothing here is read by the rest of bankside: the portal talks to the sandbox over HTTP
exactly as it talks to Meta.
"""

import secrets
from datetime import timedelta

from django.db import models
from django.utils import timezone

DEFAULT_FIELDS = [
    "messages",
    "messaging_postbacks",
    "messaging_referrals",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "messaging_account_linking",
    "messaging_optins",
    "message_template_status_update",
]


def new_psid() -> str:
    return str(secrets.randbelow(9 * 10**15) + 10**15)


PAGE_INBOX_APP_ID = "263902037430900"  # the Page Inbox app, as libraries know it (U)


def new_mid() -> str:
    return f"m_{secrets.token_urlsafe(24)}"


class Page(models.Model):
    """A Facebook Page with its app: the credentials the bank must present, and its webhook."""

    page_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    access_token = models.CharField(max_length=255, unique=True)
    app_id = models.CharField(max_length=32, default="1000000000000001")
    app_secret = models.CharField(max_length=255)
    webhook_url = models.URLField(max_length=500, blank=True)
    verify_token = models.CharField(max_length=255, blank=True)
    subscribed_fields = models.JSONField(default=list, blank=True)
    # The Page's Messenger profile as the Messenger Profile API keeps it (get_started,
    # persistent_menu, greeting, ...).
    messenger_profile = models.JSONField(default=dict, blank=True)
    rate_limit_per_second = models.PositiveIntegerField(default=300)
    faults = models.JSONField(default=dict, blank=True)
    webhook_failing_since = models.DateTimeField(null=True, blank=True)
    webhook_alerted_at = models.DateTimeField(null=True, blank=True)
    webhook_disabled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.page_id})"


class User(models.Model):
    """A simulated Messenger user, known to one Page by a page-scoped id (PSID)."""

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="users")
    psid = models.CharField(max_length=32, default=new_psid)
    name = models.CharField(max_length=100)
    locale = models.CharField(max_length=10, default="en_GB")
    last_inbound_at = models.DateTimeField(null=True, blank=True)
    linked = models.BooleanField(default=False)
    # Sender actions from the Page: the typing indicator and "seen" on the user's messages.
    typing_until = models.DateTimeField(null=True, blank=True)
    page_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["page", "psid"], name="one_psid_per_page")]

    def __str__(self) -> str:
        return f"{self.name} ({self.psid})"

    @property
    def typing(self) -> bool:
        return self.typing_until is not None and self.typing_until > timezone.now()

    def within(self, window: timedelta) -> bool:
        return self.last_inbound_at is not None and timezone.now() - self.last_inbound_at < window


class Message(models.Model):
    """One message of a thread, from the user (inbound) or from the Page (outbound)."""

    class Direction(models.TextChoices):
        INBOUND = "in", "From the user"
        OUTBOUND = "out", "From the Page"

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="messages")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="messages")
    direction = models.CharField(max_length=3, choices=Direction.choices)
    mid = models.CharField(max_length=64, unique=True, default=new_mid)
    body = models.JSONField(default=dict)
    messaging_type = models.CharField(max_length=20, blank=True)
    tag = models.CharField(max_length=40, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.get_direction_display()}: {self.mid}"


class LinkingToken(models.Model):
    """The `account_linking_token` Messenger hands the bank's Log In page: 5 minutes, once."""

    LIFETIME = timedelta(minutes=5)

    token = models.CharField(max_length=128, unique=True)
    page = models.ForeignKey(Page, on_delete=models.CASCADE)
    user = models.ForeignKey(User, on_delete=models.CASCADE)
    link_url = models.URLField(max_length=1000)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)
    authorization_code = models.CharField(max_length=500, blank=True)

    def __str__(self) -> str:
        return f"linking token for {self.user}"

    @property
    def expired(self) -> bool:
        return timezone.now() - self.created_at > self.LIFETIME


class Template(models.Model):
    """A utility message template registered by a Page, approved after a short review."""

    class Status(models.TextChoices):
        PENDING = "PENDING"
        APPROVED = "APPROVED"
        REJECTED = "REJECTED"

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="templates")
    template_id = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=512)
    language = models.CharField(max_length=16)
    category = models.CharField(max_length=20)
    body_text = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rejected_reason = models.CharField(max_length=200, blank=True)
    review_due_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["page", "name", "language"], name="one_template_per_language"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} [{self.language}] {self.status}"


class Call(models.Model):
    """One Graph API request as it reached the sandbox, and what it answered."""

    page_id = models.CharField(max_length=32, blank=True, db_index=True)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=500)
    query = models.JSONField(default=dict)
    body = models.JSONField(null=True, blank=True)
    status = models.PositiveSmallIntegerField()
    response = models.JSONField(null=True, blank=True)
    error_code = models.IntegerField(null=True, blank=True)
    error_subcode = models.IntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status}"


class WebhookDelivery(models.Model):
    """One webhook POST to the bank, signed with the Page's app secret and retried like Meta."""

    class Status(models.TextChoices):
        PENDING = "pending"
        DELIVERED = "delivered"
        ABANDONED = "abandoned"

    page = models.ForeignKey(Page, on_delete=models.CASCADE, related_name="webhooks")
    field = models.CharField(max_length=60)
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.field} webhook #{self.pk} {self.status}"
