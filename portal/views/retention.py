"""How long the bank keeps message bodies and events: the retention setting."""

from django import forms
from django.shortcuts import render
from django.urls import reverse

from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.models import RetentionPolicy
from portal.retention import retention_cutoff, retention_months
from portal.services import retention_policy_update
from portal.staff_forms import handle_staff_form


class RetentionForm(forms.Form):
    months = forms.IntegerField(
        min_value=RetentionPolicy.MIN_MONTHS,
        max_value=RetentionPolicy.MAX_MONTHS,
        label="Keep message bodies and events for (months)",
        help_text=(
            f"From {RetentionPolicy.MIN_MONTHS} to {RetentionPolicy.MAX_MONTHS}. "
            f"The default, {RetentionPolicy.DEFAULT_MONTHS}, keeps a full year at hand."
        ),
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


@bank_staff(view=(ADMIN, AUDITOR), change=(ADMIN,))
def retention(request, bank):
    """The retention period, the next cutoff and the last purge; admins change the period."""
    form = RetentionForm(request.POST or None, initial={"months": retention_months(bank)})
    done = handle_staff_form(
        request,
        form,
        action=lambda data: retention_policy_update(
            actor=Actor.staff(request.user), bank=bank, months=data["months"]
        ),
        success_message="The retention period is saved.",
        redirect_to=reverse("portal:retention", kwargs={"bank": bank.slug}),
    )
    return done or render(
        request,
        "portal/banks/retention.html",
        {
            "bank": bank,
            "form": form,
            "months": retention_months(bank),
            "cutoff": retention_cutoff(bank),
            "policy": RetentionPolicy.objects.filter(bank=bank).first(),
        },
        status=400 if form.is_bound and not form.is_valid() else 200,
    )
