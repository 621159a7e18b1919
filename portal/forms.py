"""Staff forms: they check the shape of the input; the services hold the rules."""

import zoneinfo

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError

from portal.models import Bank, StaffMembership


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

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


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


class BankCreateForm(BankSettingsForm):
    slug = forms.SlugField(
        max_length=50,
        help_text="Lowercase letters, digits and hyphens. It is part of the webhook and Log In "
        "URLs, so it cannot change later.",
    )
    field_order = ["name", "slug"]


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


class ApiKeyCreateForm(StaffForm):
    name = forms.CharField(
        max_length=100,
        label="Key name",
        help_text="What uses this key, for example “Core banking (production)”.",
    )


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
