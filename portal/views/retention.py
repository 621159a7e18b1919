"""How long the bank keeps message bodies and events: the retention setting."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor
from portal.forms import apply_errors
from portal.models import RetentionPolicy
from portal.retention import retention_cutoff, retention_months
from portal.services import retention_policy_update


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
    if request.method == "POST" and form.is_valid():
        try:
            retention_policy_update(
                actor=Actor.staff(request.user), bank=bank, months=form.cleaned_data["months"]
            )
        except ValidationError as exc:
            apply_errors(form, exc)
        else:
            messages.success(request, "The retention period is saved.")
            return redirect("portal:retention", bank=bank.slug)
    return render(
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
