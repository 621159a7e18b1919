from typing import cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from portal import selectors, services
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.forms import ApiKeyCreateForm, ApiKeyRollForm
from portal.models import Bank
from portal.staff_forms import handle_staff_form
from portal.views._shared import reveal_once, take_reveal

KEY_NOTE = (
    "Store it in your core system's secret store now: it is not shown again. Send it as "
    "“Authorization: Bearer <key>”."
)


@bank_staff(view=[ADMIN, AUDITOR], change=[ADMIN])
def api_keys(request, bank):
    form = ApiKeyCreateForm(request.POST or None)

    def create(data):
        expires_after = data["expires_after"]
        issued = services.api_key_create(
            actor=Actor.staff(request.user),
            bank=bank,
            name=data["name"],
            created_by=request.user,
            scopes=data["scopes"],
            expires_at=timezone.now() + expires_after if expires_after else None,
            allowed_networks=data["allowed_networks"],
        )
        reveal_once(
            request, title=f"API key “{issued.api_key.name}”", value=issued.secret, note=KEY_NOTE
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
            "roll_form": ApiKeyRollForm(),
            "keys": selectors.api_key_list(bank=bank),
            "reveal": take_reveal(request),
        },
    )


@bank_staff(change=[ADMIN])  # type: ignore[untyped-decorator]
def api_key_roll(request: HttpRequest, bank: Bank, key: int) -> HttpResponse:
    api_key = selectors.api_key_get(bank=bank, pk=key)
    form = ApiKeyRollForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long the old key keeps working: 1 hour to 30 days.")
        return redirect("portal:api_keys", bank=bank.slug)
    try:
        issued = services.api_key_roll(
            actor=Actor.staff(request.user),
            api_key=api_key,
            overlap=form.cleaned_data["overlap"],
            created_by=cast("User", request.user),  # a staff page: signed in
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:api_keys", bank=bank.slug)
    old = selectors.api_key_get(bank=bank, pk=key)
    reveal_once(
        request,
        title=f"New API key “{issued.api_key.name}”",
        value=issued.secret,
        note=f"The old key {old.display_prefix} keeps working until "
        f"{timezone.localtime(old.expires_at):%d %b %Y %H:%M %Z}: deploy the new one before "
        "then. " + KEY_NOTE,
    )
    return redirect("portal:api_keys", bank=bank.slug)


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
