"""The bank staff's pages that belong to linking, drawn inside the portal's shell."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from linking import oidc, services
from linking.forms import IdentityProviderForm
from linking.models import IdentityProvider
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor


@bank_staff(view=(ADMIN, AUDITOR), change=(ADMIN,))
def identity_provider(request, bank):
    """Where the bank's customers sign in: its OpenID Connect provider."""
    provider = IdentityProvider.objects.for_bank(bank).first()
    form = IdentityProviderForm.for_provider(
        provider, data=request.POST if request.method == "POST" else None
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            saved = services.identity_provider_configure(
                actor=Actor.staff(request.user),
                bank=bank,
                issuer=data["issuer"],
                client_id=data["client_id"],
                client_secret=data["client_secret"] or None,
                customer_claim=data["customer_claim"],
                scopes=data["scopes"],
                enabled=data["enabled"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            try:
                oidc.discovery(saved)
            except oidc.OIDCError as exc:
                messages.warning(request, f"Saved, but the provider did not answer: {exc}")
            else:
                messages.success(request, "Saved. The provider's discovery document answered.")
            return redirect("linking:identity_provider", bank=bank.slug)
    return render(
        request,
        "linking/staff/identity_provider.html",
        {
            "bank": bank,
            "form": form,
            "provider": provider,
            "redirect_uri": services_redirect_uri(bank),
        },
    )


def services_redirect_uri(bank) -> str:
    from django.conf import settings
    from django.urls import reverse

    return settings.PUBLIC_BASE_URL + reverse("linking:oidc-callback", args=[bank.slug])
