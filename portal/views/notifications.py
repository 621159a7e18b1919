"""Notification policies and consent settings: operators and admins edit, everyone reads."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from portal import selectors, services, text_versions
from portal.access import ADMIN, EVERYONE, OPERATOR, bank_staff
from portal.audit import Actor
from portal.events import EVENT_SCOPES, DataScope, EventType
from portal.forms import HandBackForm, NotificationPolicyForm, NotificationSettingsForm
from portal.models import Bank, TextVersion
from portal.services.notifications import POLICY_FIELDS
from portal.staff_forms import handle_staff_form

EDITORS = (ADMIN, OPERATOR)
APPROVERS = (ADMIN,)


def _policy_title(key: str) -> str:
    label = EventType(key).label if key in EventType.values else key
    return f"Policy: {label}"


def _policy_editor_url(bank: Bank, key: str) -> str:
    return reverse("portal:notification_policies", kwargs={"bank": bank.slug})


POLICY_VERSIONS = text_versions.VersionedText(
    versioned=services.VERSIONED_POLICIES,
    url_name="portal:notification_policy_version",
    url_param="policy_version",
    title=_policy_title,
    editor_url=_policy_editor_url,
    display=services.notification_policy_describe,
)


@bank_staff(view=EVERYONE)
def notification_policies(request, bank):
    settings_row = selectors.notification_settings_for(bank)
    versions = TextVersion.objects.for_bank(bank).filter(subject=services.POLICY_SUBJECT)
    live = {v.key: POLICY_VERSIONS.url(bank, v) for v in versions if v.state == "approved"}
    drafts = [
        {
            "version": v,
            "title": _policy_title(v.key),
            "text": services.notification_policy_describe(v.body),
            "url": POLICY_VERSIONS.url(bank, v),
        }
        for v in versions.filter(state=TextVersion.State.DRAFT).order_by("created_at")
    ]
    return render(
        request,
        "portal/notifications/policies.html",
        {
            "bank": bank,
            "rows": [
                (
                    policy,
                    DataScope(EVENT_SCOPES[policy.event_type]).label,
                    live.get(policy.event_type),
                )
                for policy in selectors.notification_policy_list(bank=bank)
            ],
            "drafts": drafts,
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
        action=lambda data: services.notification_policy_draft(
            actor=Actor.staff(request.user),
            policy=target,
            enabled=data["enabled"],
            min_amount=data.get("min_amount"),
            low_balance_below=data.get("low_balance_below"),
            quiet_hours_start=data.get("quiet_hours_start"),
            quiet_hours_end=data.get("quiet_hours_end"),
            urgent=data.get("urgent", target.urgent),
        ),
        success_message=lambda version: (
            f"Draft saved as version {version.number}. Until an admin other than you approves "
            "it, the live policy decides what is sent."
        ),
        redirect_to=lambda version: POLICY_VERSIONS.url(bank, version),
    )
    return done or render(
        request,
        "portal/notifications/policy_edit.html",
        {"bank": bank, "policy": target, "form": form},
    )


@bank_staff(view=EVERYONE)  # type: ignore[untyped-decorator]
def notification_policy_version(
    request: HttpRequest, bank: Bank, policy_version: int
) -> HttpResponse:
    return text_versions.version_review(request, bank, POLICY_VERSIONS, policy_version)


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def notification_policy_version_approve(
    request: HttpRequest, bank: Bank, policy_version: int
) -> HttpResponse:
    return text_versions.version_decide(
        request, bank, POLICY_VERSIONS, policy_version, approve=True
    )


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def notification_policy_version_reject(
    request: HttpRequest, bank: Bank, policy_version: int
) -> HttpResponse:
    return text_versions.version_decide(
        request, bank, POLICY_VERSIONS, policy_version, approve=False
    )


@bank_staff(change=EDITORS)  # type: ignore[untyped-decorator]
def notification_policy_version_rollback(
    request: HttpRequest, bank: Bank, policy_version: int
) -> HttpResponse:
    return text_versions.version_rollback(request, bank, POLICY_VERSIONS, policy_version)


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
