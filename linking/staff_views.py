"""The bank staff's pages that belong to linking, drawn inside the portal's shell."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse

from linking import oidc, selectors, services
from linking.forms import IdentityProviderForm, LinkFilterForm, RevokeAllForm
from linking.models import Consent, IdentityProvider
from linking.sections import sections_for
from portal import exports
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.services import audit_export_record
from portal.staff_forms import handle_staff_form


@bank_staff(view=(ADMIN, AUDITOR), change=(ADMIN,))
def identity_provider(request, bank):
    """Where the bank's customers sign in: its OpenID Connect provider."""
    provider = IdentityProvider.objects.for_bank(bank).first()
    form = IdentityProviderForm.for_provider(
        provider, data=request.POST if request.method == "POST" else None
    )

    def configure(data):
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
        try:  # saved either way; staff learn at once whether the provider answers
            oidc.discovery(saved)
        except oidc.OIDCError as exc:
            messages.warning(request, f"Saved, but the provider did not answer: {exc}")
        else:
            messages.success(request, "Saved. The provider's discovery document answered.")

    done = handle_staff_form(
        request,
        form,
        action=configure,
        redirect_to=reverse("linking:identity_provider", kwargs={"bank": bank.slug}),
    )
    return done or render(
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


LINK_EXPORT_COLUMNS = (
    "consent_id",
    "customer_id",
    "customer_name",
    "status",
    "scopes",
    "accounts",
    "page_id",
    "psid",
    "created_at",
    "granted_at",
    "expires_at",
    "ended_at",
    "linked_at",
)


def _link_row(consent) -> dict:
    return {
        "consent_id": consent.pk,
        "customer_id": consent.customer.external_id,
        "customer_name": consent.customer.name,
        "status": consent.status,
        "scopes": consent.scopes,
        "accounts": [
            {"id": a.external_id, "kind": a.kind, "last4": a.last4} for a in consent.accounts.all()
        ],
        "page_id": consent.page_id,
        "psid": consent.psid,
        "created_at": consent.created_at,
        "granted_at": consent.granted_at,
        "expires_at": consent.expires_at,
        "ended_at": consent.ended_at,
        "linked_at": consent.linked_at,
    }


@bank_staff(view=(ADMIN, AUDITOR))
def links(request, bank):
    """The linked accounts console: every consent and link of the bank, filtered."""
    form = LinkFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"bank": bank, "form": form, "page": None, "query": ""}
        return render(request, "linking/staff/links.html", context, status=400)
    filters = form.filters() if form.is_bound else {}
    page = Paginator(
        selectors.consent_list_for_console(bank=bank, filters=filters).prefetch_related("accounts"),
        50,
    ).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "linking/staff/links.html",
        {
            "bank": bank,
            "form": form,
            "page": page,
            "filtered": bool(filters),
            "query": query.urlencode(),
        },
    )


@bank_staff(view=(ADMIN, AUDITOR))
def link_detail(request, bank, consent: int):
    """One link: the consent's full timeline, its accounts and scopes. Opening it is audited."""
    consent_obj = selectors.consent_get_for_console(bank=bank, pk=consent)
    services.customer_data_view_record(consent=consent_obj, actor=Actor.staff(request.user))
    return render(
        request,
        "linking/staff/link_detail.html",
        {
            "bank": bank,
            "consent": consent_obj,
            "scope_labels": [dict(Consent.Scope.choices).get(s, s) for s in consent_obj.scopes],
            "revoke_form": RevokeAllForm(),
            "other_consents": Consent.objects.for_bank(bank)
            .filter(customer=consent_obj.customer)
            .exclude(pk=consent_obj.pk)
            .order_by("-created_at"),
            "sections": sections_for(consent_obj),
            "versions": consent_obj.versions.select_related("text").prefetch_related("accounts"),
        },
    )


@bank_staff(change=(ADMIN,))
def customer_revoke_all(request, bank, customer: int):
    """Revoke every active link of one customer, with the reason given."""
    customer_obj = selectors.customer_get_for_console(bank=bank, pk=customer)
    form = RevokeAllForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give a reason to revoke the customer's links.")
    else:
        revoked = services.customer_links_revoke(
            customer=customer_obj,
            actor=Actor.staff(request.user),
            reason=form.cleaned_data["reason"],
        )
        messages.success(request, f"Revoked {len(revoked)} link(s) of {customer_obj.name}.")
    url = reverse("linking:links", kwargs={"bank": bank.slug})
    return redirect(f"{url}?customer={customer_obj.external_id}")


@bank_staff(view=(ADMIN, AUDITOR))
def links_export(request, bank, fmt: str):
    """The filtered consents and links as CSV or JSON Lines, streamed; the export is audited."""
    form = LinkFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(
            "Invalid filter: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters()
    audit_export_record(
        actor=Actor.staff(request.user), bank=bank, what="links", fmt=fmt, filters=filters
    )
    consents = (
        selectors.consent_list_for_console(bank=bank, filters=filters)
        .prefetch_related("accounts")
        .iterator(chunk_size=exports.CHUNK_SIZE)
    )
    return exports.streaming_export(
        consents,
        columns=LINK_EXPORT_COLUMNS,
        fmt=fmt,
        filename=f"links-{bank.slug}",
        transform=_link_row,
    )
