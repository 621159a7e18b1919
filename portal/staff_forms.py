"""What every staff page that saves a form does, written once.

Bind the form; when it is posted and valid, call the service; put the service's refusal on
the form (a `ValidationError` on the fields it names); on success, say so and redirect, so
that reloading the next page never posts twice (Post/Redirect/Get):

    form = RetentionForm(request.POST or None, initial={"months": retention_months(bank)})
    if saved := handle_staff_form(
        request,
        form,
        action=lambda data: retention_policy_update(actor=..., bank=bank, months=data["months"]),
        success_message="The retention period is saved.",
        redirect_to=reverse("portal:retention", kwargs={"bank": bank.slug}),
    ):
        return saved
    return render(request, "portal/banks/retention.html", {"form": form, ...})

`None` means "draw the page": a GET, an invalid form, or a refused one, errors in place.
The apps above the portal use it for their own staff pages in the portal's shell.
"""

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect

from portal.forms import apply_errors

T = TypeVar("T")


def handle_staff_form(
    request: HttpRequest,
    form: forms.Form,
    *,
    action: Callable[[dict[str, Any]], T],
    redirect_to: str | Callable[[T], str],
    success_message: str | Callable[[T], str] = "",
    refusals: type[Exception] | tuple[type[Exception], ...] = ValidationError,
    error_field: str | None = None,
    rename: Mapping[str, str] | None = None,
) -> HttpResponseRedirect | None:
    """Save a posted `form` through `action(cleaned_data)`; the redirect, or None to draw it.

    `redirect_to` and `success_message` may be functions of what `action` returned (the
    bank just created, say). `refusals` are the exceptions by which the service says no; a
    `ValidationError` lands on the fields it names (`rename` maps a service's names to the
    form's), any other on `error_field` (None: the whole form), as its text.
    """
    if request.method != "POST" or not form.is_valid():
        return None
    try:
        result = action(form.cleaned_data)
    except refusals as refused:
        if isinstance(refused, ValidationError) and hasattr(refused, "error_dict"):
            apply_errors(form, refused, rename=dict(rename or {}))
        elif isinstance(refused, ValidationError):
            form.add_error(error_field, refused)
        else:
            form.add_error(error_field, str(refused))
        return None
    message = success_message(result) if callable(success_message) else success_message
    if message:
        messages.success(request, message)
    return redirect(redirect_to(result) if callable(redirect_to) else redirect_to)
