"""Notification policies and consent settings: operators and admins edit, everyone reads."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal import selectors, services
from portal.access import ADMIN, EVERYONE, OPERATOR, bank_staff
from portal.audit import Actor
from portal.events import EVENT_SCOPES, DataScope
from portal.forms import HandBackForm, NotificationPolicyForm, NotificationSettingsForm
from portal.models import Bank
from portal.services.notifications import POLICY_FIELDS
from portal.staff_forms import handle_staff_form

EDITORS = (ADMIN, OPERATOR)


@bank_staff(view=EVERYONE)
def notification_policies(request, bank):
    settings_row = selectors.notification_settings_for(bank)
    return render(
        request,
        "portal/notifications/policies.html",
        {
            "bank": bank,
            "rows": [
                (policy, DataScope(EVENT_SCOPES[policy.event_type]).label)
                for policy in selectors.notification_policy_list(bank=bank)
            ],
            "settings": settings_row,
            "essential_labels": [DataScope(s).label for s in settings_row.essential_scopes],
        },
    )


@bank_staff(view=EDITORS, change=EDITORS)
def notification_policy_edit(request, bank, policy: int):
    target = selectors.notification_policy_get(bank=bank, pk=policy)
    initial = {name: getattr(target, name) for name in POLICY_FIELDS}
    form = NotificationPolicyForm(
        request.POST if request.method == "POST" else None,
        initial=initial,
        event_type=target.event_type,
        timezone_name=bank.timezone,
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.notification_policy_update(
            actor=Actor.staff(request.user),
            policy=target,
            enabled=data["enabled"],
            min_amount=data.get("min_amount"),
            low_balance_below=data.get("low_balance_below"),
            quiet_hours_start=data.get("quiet_hours_start"),
            quiet_hours_end=data.get("quiet_hours_end"),
            urgent=data.get("urgent", target.urgent),
        ),
        success_message=f"The policy for {target.get_event_type_display()} is saved.",
        redirect_to=reverse("portal:notification_policies", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/notifications/policy_edit.html",
        {"bank": bank, "policy": target, "form": form},
    )


@bank_staff(view=EDITORS, change=EDITORS)
def notification_settings_edit(request, bank):
    current = selectors.notification_settings_for(bank)
    form = NotificationSettingsForm(
        request.POST if request.method == "POST" else None,
        initial={
            "essential_scopes": current.essential_scopes,
            "consent_duration_days": current.consent_duration_days,
        },
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.notification_settings_update(
            actor=Actor.staff(request.user),
            bank=bank,
            essential_scopes=data["essential_scopes"],
            consent_duration_days=data["consent_duration_days"],
        ),
        success_message="The consent settings are saved.",
        redirect_to=reverse("portal:notification_policies", kwargs={"bank": bank.slug}),
    )
    context = {"bank": bank, "form": form}
    return done or render(request, "portal/notifications/settings_edit.html", context)


@bank_staff(view=(ADMIN,), change=(ADMIN,))
def hand_back_edit(request: HttpRequest, bank: Bank) -> HttpResponse:
    """How long routine updates Messenger cannot carry wait before they are handed back."""
    current = selectors.notification_settings_for(bank)
    form = HandBackForm(
        request.POST if request.method == "POST" else None,
        initial={"hand_back_grace_minutes": current.hand_back_grace_minutes},
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.hand_back_grace_update(
            actor=Actor.staff(request.user),
            bank=bank,
            minutes=data["hand_back_grace_minutes"],
        ),
        success_message="The hand-back setting is saved.",
        redirect_to=reverse("portal:notification_policies", kwargs={"bank": bank.slug}),
    )
    context = {"bank": bank, "form": form}
    return done or render(request, "portal/notifications/hand_back_edit.html", context)
