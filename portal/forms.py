"""Staff forms: they check the shape of the input; the services hold the rules."""

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from core.api.scopes import SCOPES, networks_parse
from portal.countries import country_choices
from portal.events import DataScope, EventType
from portal.models import (
    DEFAULT_IDLE_TIMEOUT_MINUTES,
    HAND_BACK_GRACE_MAX_MINUTES,
    SEND_RATE_LIMIT_ERROR,
    SEND_RATE_LIMIT_MAX,
    AuditEvent,
    Bank,
    NotificationPolicy,
    StaffMembership,
    locale_validator,
)
from portal.rendering import TEMPLATE_MAX_LENGTH


def _timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def apply_errors(form: forms.Form, error: ValidationError, *, rename: dict | None = None) -> None:
    """Attach a service's ValidationError to the form fields it names (else to the form)."""
    rename = rename or {}
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.message_dict.items():
        field = rename.get(field, field)
        form.add_error(field if field in form.fields else None, errors)


class StaffForm(forms.Form):
    """The portal's forms: labels without a trailing colon."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


EARLIEST_DAY, LATEST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)


def _plausible_day(value: dt.date) -> None:
    """A day staff could mean: 9999-12-31 has no day after it to end the range, and year 1 is
    a typo."""
    if not EARLIEST_DAY <= value <= LATEST_DAY:
        raise ValidationError(f"Give a date from {EARLIEST_DAY.year} to {LATEST_DAY.year}.")


class DateRangeForm(StaffForm):
    """A list page's filters, read from the query string, ending in an optional range of days.

    `date_from` and `date_to` are the query's names on every page (bookmarked URLs keep
    working); both are optional and `date_to` is inclusive. A page subclasses this form to
    add its own filters before the range and names the dates in its own words.
    """

    date_from_label = "From (UTC)"
    date_to_label = "To (UTC)"

    date_from = forms.DateField(required=False, help_text="YYYY-MM-DD", validators=[_plausible_day])
    date_to = forms.DateField(
        required=False, help_text="YYYY-MM-DD, inclusive", validators=[_plausible_day]
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Declared here, the dates would come first; the pages have always shown them last.
        for name, label in (("date_from", self.date_from_label), ("date_to", self.date_to_label)):
            self.fields[name] = self.fields.pop(name)
            self.fields[name].label = label

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date must not be before the start date.")
        return data

    def filters(self) -> dict:
        """The filters given, without the empty ones (valid forms only)."""
        return {name: value for name, value in self.cleaned_data.items() if value}


class StaffLoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        "invalid_login": "The username or password is not correct.",
        "inactive": "This account is disabled.",
    }

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["username"].widget.attrs.update({"autocomplete": "username"})
        self.fields["password"].widget.attrs.update({"autocomplete": "current-password"})


class RecoveryCodeForm(StaffForm):
    code = forms.CharField(
        label="Recovery code",
        max_length=40,
        help_text="One of the codes you saved when you set up two-factor sign-in, "
        "for example abcd-efgh-jkmn-pqrs.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


class PasskeyNameForm(StaffForm):
    name = forms.CharField(
        label="Passkey name",
        max_length=64,
        error_messages={"required": "Give the passkey a name, such as the device it is on."},
        help_text="A name you will recognise, such as the device or password manager it is on.",
        widget=forms.TextInput(attrs={"autocomplete": "off", "autofocus": True}),
    )


class OneTimeCodeForm(StaffForm):
    code = forms.RegexField(
        label="6-digit code",
        regex=r"^\d{6}$",
        error_messages={"invalid": "Enter the 6 digits shown in your authenticator app."},
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": r"\d{6}",
                "maxlength": "6",
                "autofocus": True,
            }
        ),
    )

    def clean_code(self) -> str:
        return self.cleaned_data["code"].strip()


class InvitationAcceptForm(StaffForm):
    username = forms.CharField(
        max_length=150,
        help_text="Letters, digits and @ . + - _ only.",
        widget=forms.TextInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password1 = forms.CharField(
        label="Password",
        strip=False,
        help_text="At least 12 characters, not a common or all-numeric password.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    password2 = forms.CharField(
        label="Password again",
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords do not match.")
        return cleaned


class BankSettingsForm(StaffForm):
    name = forms.CharField(max_length=200)
    timezone = forms.ChoiceField(choices=_timezone_choices, initial="UTC")
    country = forms.ChoiceField(
        choices=country_choices,
        required=False,
        help_text=Bank._meta.get_field("country").help_text,
    )
    default_locale = forms.CharField(
        max_length=10, initial="en", help_text="The customers' default language, e.g. en or pt_BR."
    )
    support_email = forms.EmailField(required=False, label="Support email")
    support_phone = forms.CharField(max_length=40, required=False, label="Support phone")
    require_2fa_for_all = forms.BooleanField(
        required=False,
        label=Bank._meta.get_field("require_2fa_for_all").verbose_name.capitalize(),
        help_text=Bank._meta.get_field("require_2fa_for_all").help_text,
    )
    idle_timeout_minutes = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=480,
        initial=15,
        label=Bank._meta.get_field("idle_timeout_minutes").verbose_name.capitalize(),
        help_text=Bank._meta.get_field("idle_timeout_minutes").help_text,
    )
    disclose_automation = forms.BooleanField(
        required=False,
        label=Bank._meta.get_field("disclose_automation").verbose_name.capitalize(),
        help_text=Bank._meta.get_field("disclose_automation").help_text,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if settings.STAFF_TWO_FACTOR_FOR_ALL:
            # Every staff member needs it already: the box would promise a choice there is not.
            del self.fields["require_2fa_for_all"]

    def clean_idle_timeout_minutes(self) -> int:
        value = self.cleaned_data.get("idle_timeout_minutes")
        return DEFAULT_IDLE_TIMEOUT_MINUTES if value is None else int(value)


class BankCreateForm(BankSettingsForm):
    slug = forms.SlugField(
        max_length=50,
        help_text="Lowercase letters, digits and hyphens. It is part of the webhook and Log In "
        "URLs, so it cannot change later.",
    )
    field_order = ["name", "slug"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # A new bank starts with the disclosure its region requires; admins change it later.
        del self.fields["disclose_automation"]


class IntegrationCredentialsForm(StaffForm):
    page_id = forms.RegexField(
        label="Facebook Page ID",
        regex=r"^\d{5,32}$",
        error_messages={"invalid": "A Page ID is all digits."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "off"}),
    )
    page_access_token = forms.CharField(
        label="Page access token",
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
    app_secret = forms.CharField(
        label="App secret",
        required=False,
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}, render_value=False),
    )
    callback_url = forms.URLField(
        label="Callback URL",
        required=False,
        assume_scheme="https",
        help_text="Where bankside relays customers' answers (for example to fraud alerts). "
        "Calls are signed with the signing secret.",
    )
    send_rate_limit = forms.IntegerField(
        label="Send API calls per second",
        required=False,
        min_value=1,
        max_value=SEND_RATE_LIMIT_MAX,
        error_messages={
            "invalid": SEND_RATE_LIMIT_ERROR,
            "min_value": SEND_RATE_LIMIT_ERROR,
            "max_value": SEND_RATE_LIMIT_ERROR,
        },
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
        help_text="Send API calls per second for this Page. Meta allows 300; set less if "
        "other systems send from this Page.",
    )
    app_id = forms.RegexField(
        label="App ID",
        required=False,
        regex=r"^\d{1,32}$",
        max_length=32,
        strip=True,
        error_messages={"invalid": "An App ID is all digits."},
        help_text="The ID of the Meta app whose secret is entered above (App Dashboard, "
        "Settings, Basic). Messages that people send from Meta's Page inbox are then shown "
        "in the agent inbox.",
    )

    def __init__(self, *args, stored: bool = False, masked: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        masked = masked or {}
        for name in ("page_access_token", "app_secret"):
            field = self.fields[name]
            if stored:
                field.help_text = (
                    f"Stored: {masked.get(name, '')}. Leave blank to keep it, or paste a "
                    "new value to replace it."
                )
            else:
                field.required = True


class PauseForm(StaffForm):
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="Reason (shown on the dashboard)",
        widget=forms.TextInput(attrs={"placeholder": "For example: incident 1432"}),
    )


API_KEY_EXPIRY_CHOICES = [
    ("", "Never"),
    ("30", "In 30 days"),
    ("90", "In 90 days"),
    ("180", "In 180 days"),
    ("365", "In a year"),
]
ROLL_OVERLAP_CHOICES = [
    ("1h", "1 hour"),
    ("24h", "24 hours"),
    ("3d", "3 days"),
    ("7d", "7 days"),
    ("30d", "30 days"),
]
ROLL_OVERLAPS = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "3d": dt.timedelta(days=3),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}


class ApiKeyCreateForm(StaffForm):
    name = forms.CharField(
        max_length=100,
        label="Key name",
        help_text="What uses this key, for example “Core banking (production)”.",
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope, f"{scope}: {label}") for scope, label in SCOPES.items()],
        initial=list(SCOPES),
        widget=forms.CheckboxSelectMultiple,
        help_text="What the key may call; anything else is refused with 403.",
        error_messages={"required": "Choose at least one scope."},
    )
    expires_after = forms.ChoiceField(
        choices=API_KEY_EXPIRY_CHOICES,
        required=False,
        label="Expires",
        help_text="After it expires the key is refused with 401; roll it before then.",
    )
    allowed_networks = forms.CharField(
        required=False,
        label="Allowed source addresses (optional)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="IP addresses or CIDR blocks, one per line, such as 203.0.113.0/24. Calls "
        "from anywhere else are refused with 403. Empty allows any address.",
    )

    def clean_allowed_networks(self) -> list[str]:
        raw = self.cleaned_data.get("allowed_networks") or ""
        try:
            return networks_parse(raw.replace(",", "\n").splitlines())
        except ValueError as exc:
            raise ValidationError(str(exc)) from None

    def clean_expires_after(self) -> dt.timedelta | None:
        days = self.cleaned_data.get("expires_after")
        return dt.timedelta(days=int(days)) if days else None


SIGNING_OVERLAPS = {
    "0": dt.timedelta(0),
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "3d": dt.timedelta(days=3),
    "7d": dt.timedelta(days=7),
}


class SigningSecretRotateForm(StaffForm):
    overlap = forms.ChoiceField(
        choices=[
            ("0", "No overlap: the old secret stops at once"),
            ("1h", "1 hour"),
            ("24h", "24 hours"),
            ("3d", "3 days"),
            ("7d", "7 days"),
        ],
        initial="24h",
        label="Keep signing with the old secret too for",
    )

    def clean_overlap(self) -> dt.timedelta:
        return SIGNING_OVERLAPS[self.cleaned_data["overlap"]]


class ApiKeyRollForm(StaffForm):
    overlap = forms.ChoiceField(
        choices=ROLL_OVERLAP_CHOICES,
        initial="24h",
        label="Keep the old key working for",
    )

    def clean_overlap(self) -> dt.timedelta:
        return ROLL_OVERLAPS[self.cleaned_data["overlap"]]


ROLE_DESCRIPTIONS = {
    StaffMembership.Role.ADMIN: "Bank admin: everything for this bank, including Page "
    "credentials, API keys and staff",
    StaffMembership.Role.OPERATOR: "Bank operator: runs the integration day to day; no "
    "credentials or API keys",
    StaffMembership.Role.AUDITOR: "Bank auditor: reads everything except secrets; changes nothing",
}


class InvitationCreateForm(StaffForm):
    role = forms.ChoiceField(
        choices=list(ROLE_DESCRIPTIONS.items()),
        widget=forms.RadioSelect,
        initial=StaffMembership.Role.OPERATOR,
    )
    email = forms.EmailField(
        required=False,
        label="Their email (optional, for your records)",
        help_text="No email is sent: you will copy the link and pass it on yourself.",
    )

    def __init__(self, *args, first_admin: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if first_admin:
            self.fields["role"].initial = StaffMembership.Role.ADMIN


def _policy_label(name: str) -> str:
    return NotificationPolicy._meta.get_field(name).verbose_name


class NotificationPolicyForm(StaffForm):
    """One event type's policy; only the fields that apply to that event type are shown."""

    enabled = forms.BooleanField(required=False, label=_policy_label("enabled"))
    min_amount = forms.DecimalField(
        required=False,
        min_value=Decimal("0.01"),
        max_digits=18,
        decimal_places=2,
        label=_policy_label("min_amount"),
        help_text="Large transactions only. In the account's currency; leave blank to send "
        "every transaction.",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    low_balance_below = forms.DecimalField(
        required=False,
        max_digits=18,
        decimal_places=2,
        label=_policy_label("low_balance_below"),
        help_text="Low-balance warnings only. In the account's currency; leave blank to send "
        "every balance update.",
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
    )
    quiet_hours_start = forms.TimeField(
        required=False,
        label="Quiet hours start",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    quiet_hours_end = forms.TimeField(
        required=False,
        label="Quiet hours end",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    urgent = forms.BooleanField(
        required=False,
        label="Urgent: send before routine updates",
        help_text="Urgent notifications overtake any backlog of routine ones, such as a "
        "daily balance run. Keep it for what a customer must see at once: if everything is "
        "urgent, nothing is. Quiet hours still apply.",
    )

    def __init__(self, *args, event_type: str, timezone_name: str, **kwargs):
        super().__init__(*args, **kwargs)
        if event_type != EventType.TRANSACTION_POSTED:
            del self.fields["min_amount"]
        if event_type != EventType.BALANCE_UPDATED:
            del self.fields["low_balance_below"]
        if event_type == EventType.FRAUD_ALERT:
            del self.fields["quiet_hours_start"]
            del self.fields["quiet_hours_end"]
            del self.fields["urgent"]  # always urgent
        else:
            self.fields["quiet_hours_end"].help_text = (
                f"Times in the bank's time zone ({timezone_name}). A start after the end "
                "spans midnight, e.g. 22:00 to 07:00. Leave both blank for none."
            )


class NotificationSettingsForm(StaffForm):
    essential_scopes = forms.MultipleChoiceField(
        choices=DataScope.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Essential scopes",
        help_text="Pre-selected on the consent screen. Customers can still untick them.",
    )
    consent_duration_days = forms.IntegerField(
        min_value=1,
        max_value=365,
        label="Consent lasts (days)",
        help_text="From 1 to 365. Customers are asked to confirm again when it runs out.",
    )


class HandBackForm(StaffForm):
    hand_back_grace_minutes = forms.IntegerField(
        min_value=0,
        max_value=HAND_BACK_GRACE_MAX_MINUTES,
        label="Hand back routine updates after (minutes)",
        help_text=(
            f"From 0 to {HAND_BACK_GRACE_MAX_MINUTES} (a day). How long a routine update that "
            "Messenger cannot carry waits for it (the customer may write and open the 24-hour "
            "window, the integration may resume) before it is handed back to your own "
            "channels. Urgent updates are handed back at once."
        ),
    )


class MessageTemplateForm(StaffForm):
    body = forms.CharField(
        label="Message text",
        max_length=TEMPLATE_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 6, "spellcheck": "true"}),
    )


class MessageTemplateCreateForm(MessageTemplateForm):
    event_type = forms.ChoiceField(choices=EventType.choices, label="Event type")
    locale = forms.CharField(
        max_length=10,
        validators=[locale_validator],
        label="Language",
        help_text="A locale such as en, fr, de or pt_BR.",
    )
    field_order = ["event_type", "locale", "body"]


class DateInput(forms.DateInput):
    """A date picker (`<input type="date">`): it sends YYYY-MM-DD, what DateField reads."""

    input_type = "date"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%Y-%m-%d")


def _action_choices() -> list[Any]:
    from portal.timeline import action_choices

    return list(action_choices())


class AuditLogFilterForm(DateRangeForm):
    """The audit log's filters, read from the query string; every field is optional.

    The action is picked from the known actions (a family such as every consent action, or
    one action); any other well-formed action or prefix is still accepted, so bookmarked
    URLs and exports keep working, and shown as picked.
    """

    actor = forms.CharField(
        required=False,
        max_length=200,
        label="Who",
        help_text="A customer's or staff member's name, or part of it, or an id.",
    )
    actor_type = forms.ChoiceField(
        required=False,
        label="Kind of actor",
        choices=[("", "Anyone"), *AuditEvent.ActorType.choices],
    )
    action = forms.CharField(required=False, max_length=80, widget=forms.Select)
    psid = forms.CharField(
        required=False,
        max_length=64,
        label="Messenger id (PSID)",
        help_text="Finds the entries about this person (they hold it as a pseudonym).",
    )
    target_type = forms.CharField(required=False, max_length=80, label="Target type")
    target_id = forms.CharField(required=False, max_length=64, label="Target id")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = _action_choices()
        known = {value for _, group in choices[1:] for value, _ in group} | {""}
        current = (self.data.get("action") or "").strip() if self.is_bound else ""
        if current not in known:
            choices.append((current, current))
        self.fields["action"].widget.choices = choices
        for name in ("date_from", "date_to"):
            self.fields[name].widget = DateInput()
            self.fields[name].help_text = "Inclusive" if name == "date_to" else ""

    def clean_action(self) -> str:
        action = str(self.cleaned_data["action"]).strip()
        if action and not all(ch.isalnum() or ch in "._" for ch in action):
            raise ValidationError("Use letters, digits, dots and underscores only.")
        return action

    def clean_psid(self) -> str:
        psid = str(self.cleaned_data["psid"]).strip()
        if psid and not psid.isdigit():
            raise ValidationError("A PSID is made of digits only.")
        return psid
