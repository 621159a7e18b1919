"""Staff pages for a customer's data-subject requests: the overview, the download, erasure."""

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render

from linking import selectors, services, subject_requests
from linking.models import Consent
from linking.subject_data import contributors
from portal.access import ADMIN, AUDITOR, bank_staff
from portal.audit import Actor


class ErasureForm(forms.Form):
    """Erasure needs the customer's id typed out and a reason, both recorded."""

    confirm = forms.CharField(max_length=64, label="Type the customer id to confirm")
    reason = forms.CharField(
        max_length=300,
        help_text="For example the request's reference. Recorded in the audit log.",
    )

    def __init__(self, *args, customer, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.customer = customer

    def clean_confirm(self):
        typed = self.cleaned_data["confirm"].strip()
        if typed != self.customer.external_id:
            raise ValidationError("This is not the customer's id: nothing was erased.")
        return typed

    def clean_reason(self):
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("Give the reason for the erasure.")
        return reason


def _page(request, bank, customer, form, *, status=200):
    consents = Consent.objects.for_bank(bank).filter(customer=customer).order_by("-created_at")
    return render(
        request,
        "linking/staff/subject_request.html",
        {
            "bank": bank,
            "customer": customer,
            "consents": consents,
            "active_links": [c for c in consents if c.is_linked],
            "parts": [c.key for c in contributors()],
            "form": form,
        },
        status=status,
    )


@bank_staff(view=(ADMIN, AUDITOR))
def subject_request(request, bank, customer: int):
    """A customer's data-subject request: what is held, the download, and (admins) erasure."""
    customer_obj = selectors.customer_get_for_console(bank=bank, pk=customer)
    services.subject_page_view_record(customer=customer_obj, actor=Actor.staff(request.user))
    return _page(request, bank, customer_obj, ErasureForm(customer=customer_obj))


@bank_staff(view=(ADMIN, AUDITOR))
def subject_export(request, bank, customer: int):
    """Everything held about the customer as one JSON document, streamed; audited first."""
    customer_obj = selectors.customer_get_for_console(bank=bank, pk=customer)
    services.subject_export_record(customer=customer_obj, actor=Actor.staff(request.user))
    response = StreamingHttpResponse(
        (piece.encode() for piece in subject_requests.subject_export_lines(customer_obj)),
        content_type="application/json; charset=utf-8",
    )
    filename = f"subject-{bank.slug}-{customer_obj.external_id}.json"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bank_staff(change=(ADMIN,))
def subject_erase(request, bank, customer: int):
    """Erase the customer's personal data held for Messenger, after a typed confirmation."""
    customer_obj = selectors.customer_get_for_console(bank=bank, pk=customer)
    form = ErasureForm(request.POST, customer=customer_obj)
    if not form.is_valid():
        return _page(request, bank, customer_obj, form, status=400)
    try:
        erasure = services.subject_erase(
            customer=customer_obj,
            actor=Actor.staff(request.user),
            reason=form.cleaned_data["reason"],
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    except services.ErasureBlockedError as exc:
        messages.error(request, str(exc))
    else:
        told = len(erasure.messenger_told)
        messages.success(
            request,
            f"Erased: {sum(erasure.rows_changed.values())} row(s) changed, "
            f"{len(erasure.links_revoked)} link(s) revoked, Messenger told of {told} "
            "ended link(s). The audit log keeps only pseudonymous references.",
        )
    return redirect("linking:subject_request", bank=bank.slug, customer=customer_obj.pk)
