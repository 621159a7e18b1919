"""Pausing a bank's Messenger integration: by its admin, or by a platform admin in bulk."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from portal.access import ADMIN, bank_staff, platform_admin
from portal.audit import Actor
from portal.models import Bank
from portal.pausing import PauseReport, banks_pause


class BankPauseForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        label="Reason (shown on the dashboard and recorded)",
        widget=forms.TextInput(attrs={"placeholder": "For example: incident 1432"}),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class BanksPauseForm(BankPauseForm):
    banks = forms.ModelMultipleChoiceField(
        queryset=Bank.objects.order_by("name"),
        to_field_name="slug",
        error_messages={"required": "Choose at least one bank to pause."},
    )


def _tell(request, report: PauseReport) -> None:
    if report.paused:
        messages.success(request, "Paused: " + ", ".join(report.paused) + ". Nothing is sent.")
    if report.already_paused:
        messages.info(request, "Already paused: " + ", ".join(report.already_paused) + ".")
    if report.not_connected:
        messages.warning(
            request, "Not connected to Messenger: " + ", ".join(report.not_connected) + "."
        )


def _form_errors(form) -> str:
    return " ".join(" ".join(errors) for errors in form.errors.values())


@bank_staff(change=(ADMIN,))
def bank_pause(request, bank):
    """Stop all of the bank's sends, with a reason; resumed from the integration page."""
    form = BankPauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Give the reason for pausing. " + _form_errors(form))
    else:
        try:
            report = banks_pause(
                actor=Actor.staff(request.user), banks=[bank], reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            _tell(request, report)
    return redirect("portal:integration", bank=bank.slug)


@platform_admin
@require_POST
def banks_pause_bulk(request):
    """A platform admin pauses several banks at once from the bank list."""
    form = BanksPauseForm(request.POST)
    if not form.is_valid():
        messages.error(request, _form_errors(form))
    else:
        try:
            report = banks_pause(
                actor=Actor.staff(request.user),
                banks=list(form.cleaned_data["banks"]),
                reason=form.cleaned_data["reason"],
                bulk=True,
            )
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            _tell(request, report)
    return redirect("portal:bank_list")
