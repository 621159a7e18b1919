"""The staff page where a bank chooses how its customers link: Log In, m.me invitations."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from linking import services
from linking.forms import LinkingFlowsForm
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.models import Bank
from portal.staff_forms import handle_staff_form

# Where Meta lists Log In linking as unavailable: the EEA (the EU, Iceland, Liechtenstein,
# Norway), the UK and Japan, by the bank's country (ISO 3166-1)...
LOG_IN_UNAVAILABLE_COUNTRIES = frozenset(
    {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
        *("IS", "LI", "NO"),
        "GB",
        "JP",
    }
)
# ...or, for a bank whose country is not set, by its time zone: the hint the portal has
# then of where its customers are.
LOG_IN_UNAVAILABLE_ZONES = (
    "Europe/",
    "Atlantic/Reykjavik",
    "Atlantic/Canary",
    "Atlantic/Madeira",
    "Atlantic/Azores",
    "Atlantic/Faroe",
    "Asia/Tokyo",
    "Japan",
)


def log_in_unavailable_hint(time_zone: str, country: str = "") -> bool:
    if country:
        return country in LOG_IN_UNAVAILABLE_COUNTRIES
    return any(time_zone.startswith(zone) for zone in LOG_IN_UNAVAILABLE_ZONES)


# The access decorator has no types; the baseline of mypy's errors only shrinks.
@bank_staff(view=(ADMIN, AUDITOR), change=(ADMIN,))  # type: ignore[untyped-decorator]
def linking_flows(request: HttpRequest, bank: Bank) -> HttpResponse:
    """Which linking flows the bank offers, with the regions where Log In does not work."""
    flows = services.linking_flows_for(bank)
    form = LinkingFlowsForm(
        request.POST if request.method == "POST" else None,
        initial={"log_in": flows.log_in, "invitations": flows.invitations},
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.linking_flows_update(
            actor=Actor.staff(request.user),
            bank=bank,
            log_in=data["log_in"],
            invitations=data["invitations"],
        ),
        success_message="Saved: the linking flows are updated.",
        redirect_to=reverse("linking:flows", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "linking/staff/linking_flows.html",
        {
            "bank": bank,
            "form": form,
            "flows": flows,
            "region_hint": log_in_unavailable_hint(bank.timezone, bank.country),
        },
    )
