"""The customer's sharing pages beyond the dashboard: the sign-in from the chat's *Manage
sharing*, changing what is shared, renewing (after signing in again), stopping (after a
confirmation), and the consent receipt and data download, readable and as JSON."""

import functools
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from linking import receipts, services
from linking.models import Account, Consent, Customer, DashboardPass
from linking.views import (
    CUSTOMER_KEY,
    _bank,
    _page,
    _problem,
    authenticated_at,
    current_customer,
    sign_in_again,
)
from portal.models import Bank

# Link-preview robots fetch URLs put in a chat; they must not spend a single-use pass.
_PREVIEW_AGENTS = ("facebookexternalhit", "facebookcatalog", "meta-externalagent")


def _signed_in(request: HttpRequest, slug: str) -> tuple[Bank, Customer | None]:
    bank, _ = _bank(slug)
    return bank, current_customer(request, bank)


def _own_consent(customer: Customer, consent_id: int, *, live: bool = False) -> Consent:
    """One of the signed-in customer's consents; anyone else's is not found."""
    consents = Consent.objects.select_related("bank", "customer", "text").prefetch_related(
        "accounts", "events"
    )
    if live:
        consents = consents.filter(status=Consent.Status.AUTHORISED)
    return get_object_or_404(consents, pk=consent_id, customer=customer, bank=customer.bank)


def customer_page(
    *methods: str, live: bool = False, consent: bool = True
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A page of the signed-in customer's own: never cached, `methods` only. Anyone not
    signed in is sent to sign in; with `consent`, the view is given the customer's consent
    the URL names (another's is not found; `live`: only one still authorised)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @never_cache
        @require_http_methods(list(methods))
        @functools.wraps(view)
        def page(request: HttpRequest, bank: str, consent_id: int = 0) -> HttpResponse:
            found, customer = _signed_in(request, bank)
            if customer is None:
                return redirect("linking:login", bank=found.slug)
            if not consent:
                return view(request, found, customer)
            return view(request, found, customer, _own_consent(customer, consent_id, live=live))

        return page

    return decorate


@never_cache
@require_http_methods(["GET"])
def dashboard_pass(request: HttpRequest, bank: str, token: str) -> HttpResponse:
    """The button the chat's *Manage sharing* answers with: signs the customer in, once,
    within minutes, to see and change what they share."""
    found, _ = _bank(bank)
    agent = request.headers.get("User-Agent", "").lower()
    if any(robot in agent for robot in _PREVIEW_AGENTS):
        return _problem(request, found, gettext("Manage sharing"), "", status=200)
    try:
        customer = services.dashboard_pass_redeem(bank=found, token=token)
    except services.DashboardPassRefusedError:
        return _problem(
            request,
            found,
            gettext("This link can't be used any more"),
            gettext(
                "For your security, a link from the chat works once, within %(minutes)d "
                "minutes. Tap “Manage sharing” in %(bank)s's Messenger conversation for a "
                "new one."
            )
            % {"minutes": DashboardPass.LIFETIME_MINUTES, "bank": found.name},
            status=410,
        )
    request.session.cycle_key()
    # Signed in from the chat, not with the bank: renewing asks for the bank's sign-in.
    request.session[CUSTOMER_KEY] = {"id": customer.pk, "bank": found.slug}
    return redirect("linking:dashboard", bank=found.slug)


def change_text(
    bank: Bank, customer: Customer, consent: Consent, accounts: list[Account], scopes: list[str]
) -> str:
    """The words of the change page the customer confirmed, with what they chose."""
    labels = dict(Consent.Scope.choices)
    return render_to_string(
        "linking/sharing/change_text.txt",
        {
            "bank": bank,
            "customer": customer,
            "consent": consent,
            "purpose": consent.purpose,
            "accounts": accounts,
            "scope_labels": [labels[s] for s in sorted(set(scopes)) if s in labels],
        },
    ).strip()


@customer_page("GET", "POST", live=True)
def consent_change(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    """Choose again which accounts and which updates a live link shares."""
    accounts = list(customer.accounts.filter(active=True))
    context: dict[str, Any] = {
        "bank": found,
        "consent": consent,
        "accounts": accounts,
        "scopes": Consent.Scope.choices,
        "chosen_accounts": {a.pk for a in consent.accounts.all()},
        "chosen_scopes": set(consent.scopes),
    }
    if request.method == "GET":
        return _page(request, "linking/sharing/change.html", context)
    chosen_ids = set(request.POST.getlist("accounts"))
    chosen = [a for a in accounts if str(a.pk) in chosen_ids]
    scopes = [s for s in request.POST.getlist("scopes") if s in Consent.Scope.values]
    try:
        services.consent_change(
            consent=consent,
            actor=services.customer_actor(customer),
            accounts=chosen,
            scopes=scopes,
            text=change_text(found, customer, consent, chosen, scopes),
            language=get_language(),
        )
    except ValidationError as exc:
        context.update(
            error=" ".join(exc.messages),
            chosen_accounts={a.pk for a in chosen},
            chosen_scopes=set(scopes),
        )
        return _page(request, "linking/sharing/change.html", context, status=400)
    return HttpResponseRedirect(reverse("linking:dashboard", args=[found.slug]) + "?done=changed")


@never_cache
@require_http_methods(["GET", "POST"])
def consent_renew(request: HttpRequest, bank: str, consent_id: int) -> HttpResponse:
    """Renew a live link for its full duration: the reminder's *Renew* opens this page,
    which first has the customer sign in with the bank again (PSD2), then asks once."""
    found, customer = _signed_in(request, bank)
    path = reverse("linking:renew", args=[found.slug, consent_id])
    if customer is None:
        return sign_in_again(request, found, path)
    consent = _own_consent(customer, consent_id)
    if consent.status != Consent.Status.AUTHORISED:
        return _problem(
            request,
            found,
            gettext("This consent has ended"),
            gettext("Link again from Messenger to start sharing."),
            status=409,
        )
    signed_in_at = authenticated_at(request, found)
    fresh = (
        signed_in_at is not None
        and timezone.now() - signed_in_at <= services.RENEW_REAUTHENTICATED_WITHIN
    )
    if not fresh:
        return sign_in_again(request, found, path)
    if request.method == "GET":
        until = timezone.now() + timedelta(days=consent.duration_days)
        return _page(
            request,
            "linking/sharing/renew.html",
            {
                "bank": found,
                "consent": consent,
                "until": until,
                "scope_labels": dict(Consent.Scope.choices),
            },
        )
    try:
        services.consent_renew(
            consent=consent,
            actor=services.customer_actor(customer),
            authenticated_at=signed_in_at,
        )
    except services.ReauthenticationRequiredError:
        return sign_in_again(request, found, path)
    except ValueError:
        return _problem(
            request,
            found,
            gettext("This consent has ended"),
            gettext("Link again from Messenger to start sharing."),
            status=409,
        )
    return HttpResponseRedirect(reverse("linking:dashboard", args=[found.slug]) + "?done=renewed")


@customer_page("GET", live=True)
def consent_stop(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    """Before stopping: what stops, what happens to updates not yet sent, what stays."""
    return _page(request, "linking/sharing/stop.html", {"bank": found, "consent": consent})


@customer_page("POST")
def consent_revoke(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    try:
        services.consent_stop(
            consent=consent,
            actor=services.customer_actor(customer),
            confirmed=request.POST.get("confirm") == "stop",
        )
    except services.StopNotConfirmedError:
        return _problem(
            request,
            found,
            gettext("Please confirm"),
            gettext("Nothing was stopped. Confirm on the page that says what stops."),
            status=400,
        )
    return redirect("linking:stopped", bank=found.slug, consent_id=consent.pk)


@customer_page("GET")
def consent_stopped(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    """After stopping: a clear confirmation of what has ended."""
    if consent.status == Consent.Status.AUTHORISED:
        return redirect("linking:stop", bank=found.slug, consent_id=consent.pk)
    if consent.status != Consent.Status.REVOKED:  # it ended otherwise: the dashboard says how
        return redirect("linking:dashboard", bank=found.slug)
    return _page(request, "linking/sharing/stopped.html", {"bank": found, "consent": consent})


def _download(payload: dict[str, Any], filename: str) -> JsonResponse:
    response = JsonResponse(payload, json_dumps_params={"indent": 2, "ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@customer_page("GET")
def consent_receipt_page(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    return _page(
        request,
        "linking/sharing/receipt.html",
        {
            "bank": found,
            "consent": consent,
            "receipt": receipts.consent_receipt(consent),
            "timeline": receipts.timeline(consent),
        },
    )


@customer_page("GET")
def consent_receipt(
    request: HttpRequest, found: Bank, customer: Customer, consent: Consent
) -> HttpResponse:
    return _download(receipts.consent_receipt(consent), f"consent-receipt-{consent.pk}.json")


@customer_page("GET", consent=False)
def shared_page(request: HttpRequest, found: Bank, customer: Customer) -> HttpResponse:
    return _page(
        request,
        "linking/sharing/shared.html",
        {
            "bank": found,
            "customer": customer,
            "controller": receipts.controller(found),
            "consents": [
                (c, receipts.consent_receipt(c)) for c in receipts.customer_consents(customer)
            ],
            "records": receipts.shared_records(customer),
            "how_to_stop": receipts.how_to_stop(found),
        },
    )


@customer_page("GET", consent=False)
def shared_export(request: HttpRequest, found: Bank, customer: Customer) -> HttpResponse:
    return _download(receipts.customer_shared_export(customer), "shared-with-messenger.json")
