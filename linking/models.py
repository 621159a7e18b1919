"""Customers and their accounts (from the bank's core), consents and Messenger links."""

from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext_lazy as _

from core.encryption import EncryptedTextField
from portal.events import DataScope
from portal.models import Bank
from portal.tenancy import BankScopedQuerySet

external_id_validator = RegexValidator(
    r"^[A-Za-z0-9._:-]{1,64}$", "Use 1 to 64 letters, digits, dots, colons, dashes or underscores."
)
last4_validator = RegexValidator(r"^\d{4}$", "Exactly the last 4 digits, never a full number.")
currency_validator = RegexValidator(r"^[A-Z]{3}$", "An ISO 4217 currency code such as EUR.")


class Customer(models.Model):
    """A bank customer as the core knows them; never more than bankside needs to notify."""

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="customers")
    external_id = models.CharField(max_length=64, validators=[external_id_validator])
    name = models.CharField(max_length=200)
    locale = models.CharField(max_length=10, default="en")
    # NULL, not "", for customers without a demo login: the unique constraint skips NULLs.
    directory_username = models.CharField(max_length=150, null=True, blank=True)  # noqa: DJ001
    directory_password = models.CharField(max_length=256, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Set when the customer's personal data was erased on their request (see
    # `linking.services.subject_requests`); the row stays so consents and audit entries
    # keep a target.
    erased_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["bank", "external_id"], name="one_customer_per_id"),
            models.UniqueConstraint(
                fields=["bank", "directory_username"], name="one_directory_login_per_bank"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """One of a customer's accounts or cards: only its last 4 digits are ever stored."""

    class Kind(models.TextChoices):
        CHECKING = "checking", _("Current account")
        SAVINGS = "savings", _("Savings account")
        CREDIT_CARD = "credit_card", _("Credit card")

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="accounts")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="accounts")
    external_id = models.CharField(max_length=64, validators=[external_id_validator])
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=100)
    last4 = models.CharField(max_length=4, validators=[last4_validator])
    currency = models.CharField(max_length=3, validators=[currency_validator])
    balance = models.DecimalField(max_digits=18, decimal_places=2)
    active = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "external_id"], name="one_account_per_id"),
        ]

    def __str__(self) -> str:
        return f"{self.name} •••• {self.last4}"


class Consent(models.Model):
    """What a customer agreed to share with Messenger, for how long, and its Messenger link.

    The lifecycle follows UK Open Banking: awaiting authorisation, then authorised or
    rejected; an authorised consent ends revoked or expired. While authorised and bound to
    a PSID it is the link: at most one per (bank, Page, PSID). The bank is part of every
    look-up by Page and PSID: a Page that once served another bank leaves that bank's
    rows for the same person behind, and they stay that bank's.
    """

    class Status(models.TextChoices):
        AWAITING_AUTHORISATION = "awaiting_authorisation", _("Awaiting authorisation")
        AUTHORISED = "authorised", _("Authorised")
        REJECTED = "rejected", _("Rejected")
        REVOKED = "revoked", _("Revoked")
        EXPIRED = "expired", _("Expired")

    # What a customer can agree to share: one list, kept with the bank's policies.
    Scope = DataScope

    FINAL = {Status.REJECTED, Status.REVOKED, Status.EXPIRED}

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="consents")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    accounts = models.ManyToManyField(Account, related_name="consents", blank=True)
    scopes = models.JSONField(default=list)
    status = models.CharField(
        max_length=24, choices=Status.choices, default=Status.AWAITING_AUTHORISATION
    )
    purpose = models.TextField()
    duration_days = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    granted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    page_id = models.CharField(max_length=32, blank=True)
    psid = models.CharField(max_length=32, blank=True)
    linked_at = models.DateTimeField(null=True, blank=True)
    # The Messenger account's name as the consent screen showed it before Allow, minimised
    # to a first name and an initial ("Ana S."); blank where the platform did not tell.
    messenger_name = models.CharField(max_length=80, blank=True, default="", db_default="")
    platform_unlinked_at = models.DateTimeField(null=True, blank=True)
    expiry_reminded_at = models.DateTimeField(null=True, blank=True)
    # The words the customer agreed to, as the consent screen showed them (GDPR art. 7:
    # proof of consent); NULL for consents given before texts were kept.
    text = models.ForeignKey(
        "ConsentText", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "page_id", "psid"],
                condition=Q(status="authorised") & ~Q(psid=""),
                name="one_active_link_per_person",
            ),
        ]
        indexes = [models.Index(fields=["status", "expires_at"])]

    def __str__(self) -> str:
        return f"Consent #{self.pk} of {self.customer} ({self.get_status_display()})"

    @property
    def is_linked(self) -> bool:
        return self.status == self.Status.AUTHORISED and bool(self.psid)


class ConsentText(models.Model):
    """The exact text a customer was shown when they agreed, kept once per distinct text.

    Proof of consent (GDPR art. 7(1)): each consent and each change of what it shares
    points to the words the customer read, in their language. `digest` is the SHA-256 of
    `body` (UTF-8), so the same words are stored once and a stored text can be checked
    against its digest.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="consent_texts")
    digest = models.CharField(max_length=64)
    body = models.TextField()
    language = models.CharField(max_length=10)
    created_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["bank", "digest"], name="one_consent_text_per_digest")
        ]

    def __str__(self) -> str:
        return f"Consent text {self.digest[:12]} ({self.language})"


class ConsentVersion(models.Model):
    """What one consent shared from a moment on: version 1 when it was given, one more
    each time the customer changed its accounts or updates without linking again."""

    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    scopes = models.JSONField(default=list)
    accounts = models.ManyToManyField(Account, related_name="+", blank=True)
    text = models.ForeignKey(
        ConsentText, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    bank_path = "consent__bank"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["consent", "number"]
        constraints = [
            models.UniqueConstraint(fields=["consent", "number"], name="one_consent_version_number")
        ]

    def __str__(self) -> str:
        return f"Consent #{self.consent_id}, version {self.number}"


class DashboardPass(models.Model):
    """A short-lived, single-use sign-in to the sharing dashboard, sent in the chat when the
    customer taps *Manage sharing*.

    The chat is the customer's own (the link's PSID), so the pass signs them in to look at
    and change what they share, and to stop; renewing still asks for the bank's sign-in.
    Only a keyed digest of the token is kept: it is a credential while it lives.
    """

    SALT = "bankside.linking.dashboard_pass"
    LIFETIME_MINUTES = 10

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+")
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="+")
    token_digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Dashboard pass for consent #{self.consent_id}"

    @classmethod
    def digest(cls, token: str) -> str:
        return salted_hmac(cls.SALT, token, algorithm="sha256").hexdigest()


class ConsentEvent(models.Model):
    """One transition of a consent: from which state to which, by whom, when and why."""

    class Actor(models.TextChoices):
        CUSTOMER = "customer", "Customer"
        STAFF = "staff", "Bank staff"
        PLATFORM = "platform", "Messenger"
        SYSTEM = "system", "bankside"

    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=24, blank=True)
    to_status = models.CharField(max_length=24)
    actor = models.CharField(max_length=10, choices=Actor.choices)
    actor_label = models.CharField(max_length=200, blank=True)
    reason = models.CharField(max_length=300)
    occurred_at = models.DateTimeField(default=timezone.now)

    bank_path = "consent__bank"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["occurred_at", "id"]

    def __str__(self) -> str:
        return f"{self.from_status or '∅'} → {self.to_status} by {self.actor}"


class AuthorizationCode(models.Model):
    """The single-use code handed to Messenger on Allow; only its hash is kept.

    `linking_token_hash` is the keyed digest of the Log In's `account_linking_token`
    (`LinkingTokenUse`); codes issued before that rule hold a plain SHA-256 of it.
    """

    LIFETIME_MINUTES = 10

    consent = models.OneToOneField(Consent, on_delete=models.CASCADE, related_name="code")
    bank = models.ForeignKey(Bank, on_delete=models.CASCADE)
    code_hash = models.CharField(max_length=64, unique=True)
    linking_token_hash = models.CharField(max_length=64)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"code for consent #{self.consent_id}"


class LinkingTokenUse(models.Model):
    """An `account_linking_token` that has completed a Log In, with Allow or Deny.

    Messenger hands out one token per Log In of one person: a second flow with it (the link
    URL replayed after it linked, or opened twice and finished twice) is refused. The
    unique digest lets only one of two concurrent flows finish. Only a keyed hash is kept
    (`digest`): the token is a credential while it lives, and a plain hash could be matched
    by anyone who holds it.
    """

    DIGEST_SALT = "bankside.linking.account_linking_token"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="+")
    token_digest = models.CharField(max_length=64, unique=True)
    used_at = models.DateTimeField(default=timezone.now)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Log In completed at {self.used_at:%Y-%m-%d %H:%M}"

    @classmethod
    def digest(cls, token: str) -> str:
        return salted_hmac(cls.DIGEST_SALT, token, algorithm="sha256").hexdigest()


class IdentityProvider(models.Model):
    """The bank's OpenID Connect provider, where customers sign in to link and manage sharing.

    `customer_claim` names the ID-token claim that carries the bank's customer id.
    """

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="identity_provider")
    issuer = models.URLField(max_length=300)
    client_id = models.CharField(max_length=200)
    client_secret = EncryptedTextField()
    scopes = models.CharField(max_length=200, default="openid")
    customer_claim = models.CharField(max_length=64, default="sub")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"{self.bank}: {self.issuer}"


class Contact(models.Model):
    """A Messenger user as one Page knows them, with when they last acted.

    The platform allows free-form messages for 24 hours after the person's last action
    and `HUMAN_AGENT` replies for 7 days: both windows are measured from `last_inbound_at`.
    """

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="contacts")
    page_id = models.CharField(max_length=32)
    psid = models.CharField(max_length=32)
    last_inbound_at = models.DateTimeField()

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "page_id", "psid"], name="one_contact_per_person"
            )
        ]

    def __str__(self) -> str:
        return f"{self.psid} on Page {self.page_id}"


class PlatformUnlink(models.Model):
    """Messenger still to be told that a link ended on the bank's side (`unlink_accounts`),
    written in the transaction that revoked or expired the consent.

    The broker message that nudges a worker is only a nudge: a worker killed between the
    commit and the call, or a flushed broker, loses it. This row is not lost: the beat
    sweeper finds it again once its grace period is over, and retries with backoff until
    Messenger was told. One row per consent, claimed under a row lock before the call, so
    the nudge, the sweeper and an erasure tell Messenger once between them.
    """

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to tell Messenger"
        DONE = "done", "Messenger was told"
        SKIPPED = "skipped", "Not told: the bank has no running integration"
        FAILED = "failed", "Gave up after too many attempts"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="platform_unlinks")
    consent = models.OneToOneField(
        Consent, on_delete=models.CASCADE, related_name="platform_unlink"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweeper may try next: the nudge's head start first, then the backoff.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # The goodbye message is said once, even when the unlink itself is retried.
    farewell_sent_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="platform_unlinks_due",
            )
        ]

    def __str__(self) -> str:
        return f"Unlink of consent #{self.consent_id} ({self.get_state_display()})"


class LinkMessage(models.Model):
    """A message bankside owes a linked customer about their link, written in the
    transaction of the consent event that calls for it: the confirmation when the link is
    bound, the reminder when the expiry scan finds the consent ending soon, the notice to
    each of the customer's other linked chats that a new Messenger account was linked
    (`about` is that new link), and the answer to that chat's "That wasn't me".

    As with `PlatformUnlink`, the broker message after the commit is only a nudge; this row
    is what the beat sweeper finds again when the nudge was lost or the call failed. One
    row per message (a renewed consent is reminded again, of its new end date), claimed
    under a row lock for the call and marked sent with its audit entry, so it goes out at
    most once. `last_error` holds error kinds and codes, never the message or its recipient.
    """

    class Kind(models.TextChoices):
        CONFIRMATION = "confirmation", "Link confirmation"
        EXPIRY_REMINDER = "expiry_reminder", "Expiry reminder"
        NEW_LINK_NOTICE = "new_link_notice", "Another Messenger account was linked"
        NOT_ME_ANSWER = "not_me_answer", "Answer to “That wasn't me”"
        MANAGE_LINK = "manage_link", "Link to manage sharing"

    class State(models.TextChoices):
        PENDING = "pending", "Waiting to be sent"
        SENT = "sent", "Sent"
        SKIPPED = "skipped", "Not sent: no longer due, or not allowed"
        UNCERTAIN = "uncertain", "May have been sent: never sent again"
        FAILED = "failed", "Refused, or gave up after too many attempts"

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="link_messages")
    consent = models.ForeignKey(Consent, on_delete=models.CASCADE, related_name="link_messages")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    # The other link a message is about: the new link a notice announces or that the
    # customer said was not theirs.
    about = models.ForeignKey(
        Consent, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    # The consent's end date when the message became due: the one a reminder is about.
    expires_at = models.DateTimeField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # When the sweeper may try next: the nudge's head start first, then the backoff.
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = BankScopedQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["consent", "kind", "expires_at"], name="one_link_message_per_expiry"
            ),
            models.UniqueConstraint(
                fields=["consent"],
                condition=Q(kind="confirmation"),
                name="one_link_confirmation_per_consent",
            ),
            models.UniqueConstraint(
                fields=["consent", "kind", "about"],
                condition=Q(about__isnull=False),
                name="one_link_message_per_other_link",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(state="pending"),
                name="link_messages_due",
            )
        ]

    def __str__(self) -> str:
        kind, state = self.get_kind_display(), self.get_state_display()
        return f"{kind} for consent #{self.consent_id} ({state})"


class LinkingFlows(models.Model):
    """Which ways of linking a bank offers its customers.

    Messenger's Log In linking starts from a button in the chat; Meta lists it as
    unavailable for people and Pages in Europe (EEA, UK) and Japan. There a bank links from
    its own signed-in channel instead: an invitation its app opens, whose consent screen
    sends the customer to the Page through an m.me link with a single-use `ref`. A bank
    without a row offers both.
    """

    bank = models.OneToOneField(Bank, on_delete=models.CASCADE, related_name="linking_flows")
    log_in = models.BooleanField(
        "Log In linking from Messenger",
        default=True,
        help_text="The Log In button in the chat. Unavailable for people and Pages in the "
        "EEA, the UK and Japan.",
    )
    invitations = models.BooleanField(
        "m.me invitations from the bank's app",
        default=True,
        help_text="Your online banking or app asks for an invitation for a signed-in "
        "customer; after the consent screen, an m.me link opens the chat and links it.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    objects = BankScopedQuerySet.as_manager()

    def __str__(self) -> str:
        return f"Linking flows of {self.bank}"


class LinkInvitation(models.Model):
    """A link started from the bank's own channel: the invitation, then its m.me `ref`.

    The bank's backend asks for it for a customer already signed in to its app, and the
    URL it gets back is the bank's word that this browser is that customer: it opens the
    consent screen once (`opened_at`), within at most 15 minutes. *Allow* records the
    consent and mints the `ref` of the m.me link, bound to the Page it was issued for; the
    first person to bring it to the Page (`messaging_referrals`, or the *Get Started*
    postback's `referral`) links their PSID, once, before `ref_expires_at`.

    Both secrets are credentials while they live: only keyed digests are stored, and the
    unique digests are the look-ups. The invitation's token is derived from `token_seed`
    with the server's secret key, so that a retry with the same `Idempotency-Key` can be
    answered the same URL without the URL itself being stored anywhere.
    """

    TOKEN_SALT = "bankside.linking.invitation_token"
    REF_SALT = "bankside.linking.invitation_ref"
    MAX_LIFETIME_SECONDS = 15 * 60

    bank = models.ForeignKey(Bank, on_delete=models.CASCADE, related_name="link_invitations")
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, related_name="link_invitations"
    )
    token_digest = models.CharField(max_length=64, unique=True)
    token_seed = models.CharField(max_length=64)
    # The bank's `Idempotency-Key` and what it was sent with: a retry within
    # `IDEMPOTENCY_HOURS` answers this invitation again.
    idempotency_key = models.CharField(max_length=255, blank=True)
    request_fingerprint = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    opened_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    consent = models.OneToOneField(
        Consent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="invitation",
    )
    page_id = models.CharField(max_length=32, blank=True)
    # NULL until Allow: the unique constraint skips NULLs.
    ref_digest = models.CharField(max_length=64, unique=True, null=True, blank=True)
    ref_expires_at = models.DateTimeField(null=True, blank=True)
    bound_at = models.DateTimeField(null=True, blank=True)
    bound_psid = models.CharField(max_length=32, blank=True)

    objects = BankScopedQuerySet.as_manager()

    IDEMPOTENCY_HOURS = 24

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="one_invitation_per_idempotency_key",
            )
        ]

    def __str__(self) -> str:
        return f"Link invitation #{self.pk} for customer #{self.customer_id}"

    @classmethod
    def token_from_seed(cls, seed: str) -> str:
        return salted_hmac(cls.TOKEN_SALT + ".seed", seed, algorithm="sha256").hexdigest()

    @classmethod
    def token_digest_of(cls, token: str) -> str:
        return salted_hmac(cls.TOKEN_SALT, token, algorithm="sha256").hexdigest()

    @classmethod
    def ref_digest_of(cls, ref: str) -> str:
        return salted_hmac(cls.REF_SALT, ref, algorithm="sha256").hexdigest()
