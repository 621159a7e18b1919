"""Banks, the tenants every other row belongs to, and their staff."""

import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import (
    MaxValueValidator,
    MinValueValidator,
    RegexValidator,
)
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.plugins.otp_totp.models import TOTPDevice, default_key, key_validator

from core.digests import sha256_hex
from core.encryption import EncryptedTextField
from portal.countries import countries, country_name
from portal.tenancy import BankScopedQuerySet


def validate_timezone(value: str) -> None:
    if value not in zoneinfo.available_timezones():
        raise ValidationError(f"“{value}” is not a known time zone (for example Europe/London).")


def validate_country(value: str) -> None:
    if value not in countries():
        raise ValidationError(
            f"“{value}” is not a country code: use ISO 3166-1's two capital letters "
            "(for example DE, GB or US)."
        )


locale_validator = RegexValidator(
    r"^[a-z]{2,3}(?:[_-][A-Za-z]{2,4})?$", "Use a locale such as en, fr or pt_BR."
)


DEFAULT_IDLE_TIMEOUT_MINUTES = 15

# Where the law requires a bot to say it is automated (Meta names California and Germany):
# a bank there starts with the disclosure on. Germany is a country; California is a state,
# so a bank in the United States is read by its time zone, and so is a bank whose country
# is not set.
DISCLOSURE_REQUIRED_COUNTRIES = frozenset({"DE"})
CALIFORNIA_TIMEZONES = frozenset({"America/Los_Angeles", "US/Pacific"})
DISCLOSURE_REQUIRED_TIMEZONES = CALIFORNIA_TIMEZONES | {"Europe/Berlin"}


def disclosure_required(timezone_name: str, country: str = "") -> bool:
    """Whether a bank in this country (ISO 3166-1 alpha-2, blank when not known) and time
    zone is in a region that requires the disclosure."""
    if not country:
        return timezone_name in DISCLOSURE_REQUIRED_TIMEZONES
    if country == "US":
        return timezone_name in CALIFORNIA_TIMEZONES
    return country in DISCLOSURE_REQUIRED_COUNTRIES


class Bank(models.Model):
    """A bank using bankside: the tenant every other row belongs to."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=50, unique=True)
    timezone = models.CharField(max_length=64, default="UTC", validators=[validate_timezone])
    country = models.CharField(
        max_length=2,
        blank=True,
        default="",
        db_default="",
        validators=[validate_country],
        help_text="Where the bank and its customers are, as an ISO 3166-1 code (DE, GB, US). "
        "Decides the defaults that depend on the law there; without it, the time zone does.",
    )
    default_locale = models.CharField(max_length=10, default="en", validators=[locale_validator])
    support_email = models.EmailField(blank=True)
    support_phone = models.CharField(max_length=40, blank=True)
    require_2fa_for_all = models.BooleanField(
        "Require two-factor sign-in for all staff",
        default=False,
        help_text="Admins always need it; this extends it to operators and auditors.",
    )
    idle_timeout_minutes = models.PositiveSmallIntegerField(
        "Sign staff out after this many idle minutes",
        default=DEFAULT_IDLE_TIMEOUT_MINUTES,
        # Also the column's default: code written against an older schema (a migration's
        # historical models) can still insert a bank.
        db_default=DEFAULT_IDLE_TIMEOUT_MINUTES,
        validators=[MinValueValidator(1), MaxValueValidator(480)],
        help_text="1 to 480 (15 if left empty). A staff session with no activity for this "
        "long is signed out; the absolute session limit applies as well.",
    )
    disclose_automation = models.BooleanField(
        "Tell customers the chat is automated",
        default=False,
        db_default=False,
        help_text="The assistant says it is automated at the start of a conversation, after "
        "7 days without contact, and when a person hands the conversation back to it. "
        "Required by law in some regions (California, Germany), where it starts on.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    bank_path = "pk"
    objects = BankScopedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def country_name(self) -> str:
        """The country's English name; blank when it is not set."""
        return country_name(self.country) if self.country else ""


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


RECOVERY_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i


def recovery_code_normalise(code: str) -> str:
    """A recovery code as stored: lowercase, without the spaces and dashes typed around it."""
    return "".join(ch for ch in code.lower() if ch not in " -\t")


class StaffRecoveryDevice(TimestampMixin, ThrottlingMixin, Device):  # type: ignore[misc]  # untyped library
    """A staff member's recovery codes, for signing in when the authenticator is lost.

    django-otp's static device, except that a code is kept only as its SHA-256 (the codes
    are 16 random characters, about 79 bits, shown once at enrolment or regeneration): a
    dump of the database yields none of them. Each code signs in once: it is deleted by
    the same statement that matches it, so two requests racing with one code cannot both
    win. Wrong codes are throttled like the authenticator's.
    """

    def verify_token(self, token: object) -> bool:
        if not self.verify_is_allowed()[0]:
            return False
        code_hash = sha256_hex(recovery_code_normalise(str(token)))
        used, _ = StaffRecoveryCode.objects.filter(device=self, code_hash=code_hash).delete()
        if used:
            self.throttle_reset()
            self.set_last_used_timestamp(commit=True)
            return True
        self.throttle_increment()
        return False

    def get_throttle_factor(self) -> int:
        return 1

    class Meta(Device.Meta):  # type: ignore[misc]  # untyped library
        verbose_name = "set of recovery codes"


class StaffRecoveryCode(models.Model):
    """One unused recovery code of a `StaffRecoveryDevice`, as its SHA-256."""

    device = models.ForeignKey(StaffRecoveryDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "code_hash"], name="one_recovery_code_once")
        ]

    def __str__(self) -> str:
        return f"recovery code of {self.device.user}"


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


class WorkerHeartbeat(models.Model):
    """The last time each Celery worker ran the periodic heartbeat task."""

    hostname = models.CharField(max_length=255, unique=True)
    last_seen = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.hostname} at {self.last_seen:%Y-%m-%d %H:%M:%S}"
