"""The version history of what customers read, and its maker-checker states."""

from django.conf import settings
from django.db import models

from portal.models.banks import Bank
from portal.tenancy import BankScopedQuerySet


class TextVersion(models.Model):
    """One version of a text customers read (a message template, a conversation text) or
    of the rules that decide what they are sent (a notification policy, as JSON).

    A text is named by its `subject` (what kind of text: "message_template") and its `key`
    within the bank ("transaction.posted:fr"), so its history outlives the live row and a
    text in a new language can be a draft before any live row exists. A version is written
    as a draft by one staff member and goes live only when an admin who did not write it
    approves it (`portal.services.text_version_approve`): that service alone changes the
    live row, in the transaction that marks the version approved and the one before it
    superseded, with an audit entry. The database keeps at most one draft and one
    approved (live) version per text. `live_from` is set once a version was approved, so a
    superseded version that was once live can be drafted again as a rollback.
    """

    class State(models.TextChoices):
        DRAFT = "draft", "Waiting for approval"
        APPROVED = "approved", "Live"
        REJECTED = "rejected", "Rejected"
        SUPERSEDED = "superseded", "Superseded"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="text_versions")
    subject = models.CharField(max_length=40)
    key = models.CharField(max_length=100)
    number = models.PositiveIntegerField()
    body = models.TextField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.DRAFT)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    author_label = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewer_label = models.CharField(max_length=150, blank=True)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    live_from = models.DateTimeField(null=True, blank=True)
    live_until = models.DateTimeField(null=True, blank=True)
    rollback_of = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "subject", "key", "number"], name="one_text_version_per_number"
            ),
            models.UniqueConstraint(
                fields=["bank", "subject", "key"],
                condition=models.Q(state="draft"),
                name="one_draft_per_text",
            ),
            models.UniqueConstraint(
                fields=["bank", "subject", "key"],
                condition=models.Q(state="approved"),
                name="one_live_version_per_text",
            ),
            models.CheckConstraint(
                condition=models.Q(state="draft") | models.Q(reviewed_at__isnull=False),
                name="text_version_reviewed_unless_draft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.subject} {self.key} v{self.number} ({self.state}) at {self.bank}"

    @property
    def was_live(self) -> bool:
        return self.live_from is not None
