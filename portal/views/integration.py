from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

import messenger
from portal import selectors, services
from portal.access import ADMIN, EVERYONE, OPERATOR, bank_staff
from portal.audit import Actor
from portal.forms import IntegrationCredentialsForm, PauseForm, SigningSecretRotateForm
from portal.models import SEND_RATE_LIMIT_MAX, MessengerIntegration
from portal.staff_forms import handle_staff_form
from portal.views._shared import masked, reveal_once, take_reveal

OPERATORS = (ADMIN, OPERATOR)
SIGNING_SECRET_NOTE = (
    "Give it to the team that receives bankside's callbacks: they verify the "
    "webhook-signature header with it. It is not shown again."
)


def graph_client() -> messenger.GraphClient:
    """The Graph API client the connection checks use (tests swap in a mock transport)."""
    return messenger.get_client()


@bank_staff(view=EVERYONE)
def integration(request, bank):
    return render(
        request,
        "portal/integration/overview.html",
        {
            "bank": bank,
            "integration": selectors.integration_for_bank(bank),
            "webhook_url": selectors.webhook_url(bank),
            "link_url": selectors.link_url(bank),
            "pause_form": PauseForm(),
            "fields_wanted": services.SUBSCRIBED_FIELDS,
        },
    )


@bank_staff(view=[ADMIN], change=[ADMIN])
def integration_credentials(request, bank):
    current = selectors.integration_for_bank(bank)
    secrets_masked = {
        "page_access_token": masked(current.page_access_token) if current else "",
        "app_secret": masked(current.app_secret) if current else "",
        "callback_signing_secret": masked(current.callback_signing_secret) if current else "",
    }
    initial = (
        {
            "page_id": current.page_id,
            "callback_url": current.callback_url,
            "send_rate_limit": current.send_rate_limit,
            "app_id": current.app_id,
        }
        if current
        else {"send_rate_limit": SEND_RATE_LIMIT_MAX}
    )
    form = IntegrationCredentialsForm(
        request.POST or None, initial=initial, stored=current is not None, masked=secrets_masked
    )

    def configure(data):
        change = services.integration_configure(
            actor=Actor.staff(request.user),
            bank=bank,
            page_id=data["page_id"],
            page_access_token=data["page_access_token"],
            app_secret=data["app_secret"],
            callback_url=data["callback_url"],
            send_rate_limit=data["send_rate_limit"],
            app_id=data["app_id"],
        )
        if change.signing_secret:
            reveal_once(
                request,
                title="Callback signing secret",
                value=change.signing_secret,
                note=SIGNING_SECRET_NOTE,
            )

    done = handle_staff_form(
        request,
        form,
        action=configure,
        success_message="The Page settings are saved. After new credentials, check the "
        "connection to verify them.",
        redirect_to=reverse("portal:integration_credentials", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/integration/credentials.html",
        {
            "bank": bank,
            "integration": current,
            "form": form,
            "masked": secrets_masked,
            "rotate_form": SigningSecretRotateForm(),
            **_signing_overlap(current),
            "webhook_url": selectors.webhook_url(bank),
            "link_url": selectors.link_url(bank),
            "reveal": take_reveal(request),
        },
    )


def _signing_overlap(integration: MessengerIntegration | None) -> dict[str, object]:
    """The previous signing secret (masked) and until when it signs, while it does."""
    if integration is None:
        return {}
    until = integration.callback_signing_secret_previous_until
    if not integration.callback_signing_secret_previous or until is None:
        return {}
    if until <= timezone.now():
        return {}
    return {
        "signing_overlap_until": until,
        "previous_masked": masked(integration.callback_signing_secret_previous),
    }


@bank_staff(change=[ADMIN])
def signing_secret_rotate(request, bank):
    current = selectors.integration_for_bank(bank)
    if current is None:
        messages.error(request, "Enter the Page credentials first.")
        return redirect("portal:integration_credentials", bank=bank.slug)
    form = SigningSecretRotateForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose how long the old secret keeps signing: none to 7 days.")
        return redirect("portal:integration_credentials", bank=bank.slug)
    change = services.integration_signing_secret_rotate(
        actor=Actor.staff(request.user),
        integration=current,
        overlap=form.cleaned_data["overlap"],
    )
    until = change.integration.callback_signing_secret_previous_until
    if until is None:
        said = "The previous secret no longer signs callbacks. "
    else:
        said = (
            "Until "
            f"{timezone.localtime(until):%d %b %Y %H:%M %Z} callbacks carry two signatures, "
            "one with each secret, so your receiver accepts them with either: switch it to "
            "the new secret before then. "
        )
    reveal_once(
        request,
        title="New callback signing secret",
        value=change.signing_secret,
        note=said + SIGNING_SECRET_NOTE,
    )
    return redirect("portal:integration_credentials", bank=bank.slug)


@bank_staff(change=OPERATORS)
def integration_check(request, bank):
    current = selectors.integration_for_bank(bank)
    if current is None:
        messages.error(request, "Enter the Page credentials first.")
        return redirect("portal:integration", bank=bank.slug)
    result = services.integration_check(
        actor=Actor.staff(request.user), integration=current, client=graph_client()
    )
    _report_check(request, result)
    return redirect("portal:integration", bank=bank.slug)


@bank_staff(change=OPERATORS)
def integration_resume(request, bank):
    current = selectors.integration_for_bank(bank)
    try:
        if current is None:
            raise ValidationError("Enter the Page credentials first.")
        result = services.integration_resume(
            actor=Actor.staff(request.user), integration=current, client=graph_client()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if result.ok:
            messages.success(
                request, f"The integration is {result.integration.get_status_display().lower()}."
            )
        else:
            messages.error(request, f"Still paused: {result.error}")
    return redirect("portal:integration", bank=bank.slug)


@bank_staff(change=OPERATORS)
def integration_go_live(request, bank):
    current = selectors.integration_for_bank(bank)
    try:
        if current is None:
            raise ValidationError("Enter the Page credentials first.")
        services.integration_go_live(
            actor=Actor.staff(request.user), integration=current, client=graph_client()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            "The integration is live: the Page is subscribed to its webhooks and customers' "
            "updates will be sent.",
        )
    return redirect("portal:integration", bank=bank.slug)


@bank_staff(change=OPERATORS)
def integration_pause(request, bank):
    current = selectors.integration_for_bank(bank)
    form = PauseForm(request.POST)
    try:
        if current is None:
            raise ValidationError("Enter the Page credentials first.")
        if not form.is_valid():
            raise ValidationError(form.errors["reason"])
        services.integration_pause(
            actor=Actor.staff(request.user),
            integration=current,
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The integration is paused: nothing is sent until it resumes.")
    return redirect("portal:integration", bank=bank.slug)


def _report_check(request, result: services.ConnectionCheck) -> None:
    if result.ok:
        name = result.page_name or "the Page"
        status = result.integration.get_status_display().lower()
        subscribed = (
            " Its webhooks are subscribed again."
            if result.integration.status == MessengerIntegration.Status.LIVE
            else ""
        )
        messages.success(request, f"Connected to {name}. The integration is {status}.{subscribed}")
    else:
        messages.error(request, result.error)
