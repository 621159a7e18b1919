from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from portal import selectors, services
from portal.access import ADMIN, AUDITOR, EVERYONE, bank_staff, platform_admin, staff_account
from portal.audit import Actor
from portal.dashboard import TILE, WIDE, panels_for
from portal.forms import BankCreateForm, BankSettingsForm, apply_errors

BANK_FIELDS = ("name", "default_locale", "support_email", "support_phone", "require_2fa_for_all")


@staff_account
@require_http_methods(["GET"])
def staff_home(request):
    banks = list(selectors.bank_list_for_staff(request.user)[:2])
    if len(banks) == 1 and not request.user.is_superuser:
        return redirect("portal:dashboard", bank=banks[0].slug)
    return redirect("portal:bank_list")


@staff_account
@require_http_methods(["GET"])
def bank_list(request):
    return render(
        request,
        "portal/banks/list.html",
        {"banks": selectors.bank_list_for_staff(request.user)},
    )


@platform_admin
@require_http_methods(["GET", "POST"])
def bank_create(request):
    form = BankCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            bank = services.bank_create(
                actor=Actor.staff(request.user),
                slug=data["slug"],
                timezone_name=data["timezone"],
                **{name: data[name] for name in BANK_FIELDS},
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, f"{bank.name} is created. Now invite its first admin.")
            return redirect("portal:staff_invite", bank=bank.slug)
    return render(request, "portal/banks/create.html", {"form": form})


@bank_staff(view=EVERYONE)
def dashboard(request, bank):
    panels = panels_for(
        bank, role=request.staff.role, platform_admin=request.staff.is_platform_admin
    )
    return render(
        request,
        "portal/banks/dashboard.html",
        {
            "dashboard": selectors.bank_dashboard(bank=bank),
            "tile_panels": [p for p in panels if p.size == TILE],
            "wide_panels": [p for p in panels if p.size == WIDE],
        },
    )


@bank_staff(view=[ADMIN, AUDITOR], change=[ADMIN])
def bank_settings(request, bank):
    initial = {name: getattr(bank, name) for name in BANK_FIELDS}
    form = BankSettingsForm(request.POST or None, initial={**initial, "timezone": bank.timezone})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.bank_update(
                actor=Actor.staff(request.user),
                bank=bank,
                timezone_name=data["timezone"],
                **{name: data[name] for name in BANK_FIELDS},
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "The bank's settings are saved.")
            return redirect("portal:bank_settings", bank=bank.slug)
    return render(request, "portal/banks/settings.html", {"form": form, "bank": bank})


@bank_staff(view=EVERYONE)
def audit_log(request, bank):
    page = Paginator(selectors.audit_events_for_bank(bank=bank), 50).get_page(
        request.GET.get("page")
    )
    return render(request, "portal/banks/audit_log.html", {"page": page, "bank": bank})
