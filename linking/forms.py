from django import forms

from linking.models import IdentityProvider


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
