from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse

from portal import selectors, services
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.forms import ApiKeyCreateForm
from portal.staff_forms import handle_staff_form
from portal.views._shared import reveal_once, take_reveal


@bank_staff(view=[ADMIN, AUDITOR], change=[ADMIN])
def api_keys(request, bank):
    form = ApiKeyCreateForm(request.POST or None)

    def create(data):
        issued = services.api_key_create(
            actor=Actor.staff(request.user), bank=bank, name=data["name"], created_by=request.user
        )
        reveal_once(
            request,
            title=f"API key “{issued.api_key.name}”",
            value=issued.secret,
            note="Store it in your core system's secret store now: it is not shown "
            "again. Send it as “Authorization: Bearer <key>”.",
        )

    done = handle_staff_form(
        request,
        form,
        action=create,
        redirect_to=reverse("portal:api_keys", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/api_keys/list.html",
        {
            "bank": bank,
            "form": form,
            "keys": selectors.api_key_list(bank=bank),
            "reveal": take_reveal(request),
        },
    )


@bank_staff(change=[ADMIN])
def api_key_revoke(request, bank, key: int):
    api_key = selectors.api_key_get(bank=bank, pk=key)
    try:
        services.api_key_revoke(actor=Actor.staff(request.user), api_key=api_key)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, f"The key “{api_key.name}” is revoked.")
    return redirect("portal:api_keys", bank=bank.slug)
