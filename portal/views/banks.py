from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import F
from django.http import HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from portal import exports, selectors, services, timeline
from portal.access import ADMIN, AUDITOR, EVERYONE, bank_staff, platform_admin, staff_account
from portal.audit import Actor
from portal.dashboard import TILE, WIDE, panels_for
from portal.forms import AuditLogFilterForm, BankCreateForm, BankSettingsForm
from portal.staff_forms import handle_staff_form

BANK_FIELDS = (
    "name",
    "country",
    "default_locale",
    "support_email",
    "support_phone",
    "require_2fa_for_all",
    "idle_timeout_minutes",
    "disclose_automation",
)


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
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.bank_create(
            actor=Actor.staff(request.user),
            slug=data["slug"],
            timezone_name=data["timezone"],
            **{name: data[name] for name in BANK_FIELDS if name in data},
        ),
        success_message=lambda bank: f"{bank.name} is created. Now invite its first admin.",
        redirect_to=lambda bank: reverse("portal:staff_invite", kwargs={"bank": bank.slug}),
    )
    return done or render(request, "portal/banks/create.html", {"form": form})


@bank_staff(view=EVERYONE)
def dashboard(request, bank):
    panels = panels_for(
        bank, role=request.staff.role, platform_admin=request.staff.is_platform_admin
    )
    dashboard = selectors.bank_dashboard(bank=bank)
    return render(
        request,
        "portal/banks/dashboard.html",
        {
            "dashboard": dashboard,
            "recent_entries": timeline.timeline(bank, dashboard.recent_events),
            "tile_panels": [p for p in panels if p.size == TILE],
            "wide_panels": [p for p in panels if p.size == WIDE],
        },
    )


@bank_staff(view=[ADMIN, AUDITOR], change=[ADMIN])
def bank_settings(request, bank):
    initial = {name: getattr(bank, name) for name in BANK_FIELDS}
    form = BankSettingsForm(request.POST or None, initial={**initial, "timezone": bank.timezone})
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.bank_update(
            actor=Actor.staff(request.user),
            bank=bank,
            timezone_name=data["timezone"],
            **{name: data[name] for name in BANK_FIELDS if name in data},
        ),
        success_message="The bank's settings are saved.",
        redirect_to=reverse("portal:bank_settings", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/banks/settings.html",
        {"form": form, "bank": bank, "two_factor_for_all": settings.STAFF_TWO_FACTOR_FOR_ALL},
    )


@bank_staff(view=EVERYONE)
def audit_log(request, bank):
    """The bank's audit log as a timeline of sentences, filtered by the query's actor, kind
    of actor, action, PSID, target and dates."""
    form = AuditLogFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"page": None, "entries": [], "bank": bank, "form": form, "query": ""}
        return render(request, "portal/banks/audit_log.html", context, status=400)
    filters = form.filters() if form.is_bound else {}
    page = Paginator(selectors.audit_event_list(bank=bank, filters=filters), 50).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "portal/banks/audit_log.html",
        {
            "page": page,
            "entries": timeline.timeline(bank, page.object_list),
            "bank": bank,
            "form": form,
            "filtered": bool(filters),
            "query": query.urlencode(),
        },
    )


@bank_staff(view=EVERYONE)
def audit_entry(request, bank, entry: int):
    (said,) = timeline.timeline(bank, [selectors.audit_event_get(bank=bank, pk=entry)])
    return render(
        request,
        "portal/banks/audit_entry.html",
        {"bank": bank, "event": said.event, "entry": said},
    )


AUDIT_EXPORT_COLUMNS = (
    "chain_key",
    "seq",
    "occurred_at",
    "actor_type",
    "actor_id",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "request_id",
    "source_ip",
    "details",
    "data_categories",
    "prev_hash",
    "hash",
)


@bank_staff(view=[ADMIN, AUDITOR])
def audit_export(request, bank, fmt: str):
    """The filtered audit log as CSV or JSON Lines, streamed; the export is audited first.

    It covers the entries stored before its own audit entry, so it is a stable snapshot,
    in the order they were made (the entries of each lane in `seq` order).
    """
    form = AuditLogFilterForm(request.GET)
    if not form.is_valid():
        return HttpResponseBadRequest(
            "Invalid filter: " + "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()),
            content_type="text/plain; charset=utf-8",
        )
    filters = form.filters()
    record = services.audit_export_record(
        actor=Actor.staff(request.user),
        bank=bank,
        what="audit_events",
        fmt=fmt,
        filters=filters,
    )
    rows = (
        selectors.audit_event_list(bank=bank, filters=filters)
        .filter(pk__lt=record.pk)
        .order_by("occurred_at", "pk")
        .annotate(chain_key=F("chain__key"))
        .values(*AUDIT_EXPORT_COLUMNS)
        .iterator(chunk_size=exports.CHUNK_SIZE)
    )
    return exports.streaming_export(
        rows, columns=AUDIT_EXPORT_COLUMNS, fmt=fmt, filename=f"audit-{bank.slug}"
    )
