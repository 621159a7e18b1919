from django import forms

from linking.models import Consent, IdentityProvider
from portal.forms import DateRangeForm


class IdentityProviderForm(forms.Form):
    issuer = forms.URLField(
        max_length=300,
        assume_scheme="https",
        help_text="The provider's issuer, e.g. https://login.bank.example",
    )
    client_id = forms.CharField(max_length=200, label="Client ID")
    client_secret = forms.CharField(
        max_length=500,
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Stored encrypted and never shown again. Leave blank to keep the current one.",
    )
    customer_claim = forms.RegexField(
        regex=r"^[A-Za-z0-9_.:-]{1,64}$",
        max_length=64,
        initial="sub",
        help_text="The ID-token claim that carries your customer id, as the core sends it.",
    )
    scopes = forms.CharField(max_length=200, initial="openid")
    enabled = forms.BooleanField(
        required=False, initial=True, label="Customers sign in here to link and manage sharing"
    )

    @classmethod
    def for_provider(cls, provider: IdentityProvider | None, data=None):
        initial = {}
        if provider is not None:
            initial = {
                "issuer": provider.issuer,
                "client_id": provider.client_id,
                "customer_claim": provider.customer_claim,
                "scopes": provider.scopes,
                "enabled": provider.enabled,
            }
        return cls(data=data, initial=initial)


class LinkFilterForm(DateRangeForm):
    """The linked accounts console's filters, read from the query string; all optional."""

    customer = forms.CharField(
        required=False, max_length=200, help_text="Part of a name, or a customer id."
    )
    psid = forms.RegexField(
        required=False,
        regex=r"^\d{1,32}$",
        label="PSID",
        error_messages={"invalid": "A PSID is digits only."},
    )
    account = forms.CharField(
        required=False, max_length=64, help_text="The last 4 digits, or the account id."
    )
    scope = forms.ChoiceField(required=False, choices=[("", "Any"), *Consent.Scope.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any"), *Consent.Status.choices])
    date_from_label = "Created from (UTC)"
    date_to_label = "Created to (UTC)"


class RevokeAllForm(forms.Form):
    reason = forms.CharField(max_length=300, help_text="Recorded on every link revoked.")


class LinkingFlowsForm(forms.Form):
    log_in = forms.BooleanField(
        required=False,
        label="Log In linking from Messenger",
        help_text="Customers tap Log In in the chat. Unavailable for people and Pages in the "
        "EEA, the UK and Japan.",
    )
    invitations = forms.BooleanField(
        required=False,
        label="m.me invitations from your app",
        help_text="Your online banking or app asks for an invitation for a signed-in customer "
        "(POST /api/v1/customers/{id}/link-invitations); after the consent screen an m.me link "
        "opens the chat and links it. Works everywhere, Europe and Japan included.",
    )
