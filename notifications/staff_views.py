"""The bank staff's pages that belong to notifications: dead letters, listed and replayed."""

from collections import Counter

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse

from notifications import selectors, services
from notifications.models import DeliveryAttempt, Event, Notification
from portal.access import ADMIN, AUDITOR, OPERATOR, bank_staff
from portal.audit import Actor
from portal.forms import DateRangeForm

PAGE_SIZE = 25
MAX_BULK = 5000  # notifications one bulk replay may queue


class DeadLetterFilterForm(DateRangeForm):
    """The dead letters' filters, read from the query string; all optional."""

    event_type = forms.ChoiceField(
        required=False, label="Event type", choices=[("", "Any"), *Event.Type.choices]
    )
    reason = forms.ChoiceField(required=False, choices=[("", "Any"), *Notification.Reason.choices])
    date_from_label = "Dead-lettered from (UTC)"
    date_to_label = "Dead-lettered to (UTC)"

    def query(self) -> str:
        """The filters as a query string, for links and redirects back to the list."""
        query = QueryDict(mutable=True)
        for name, value in self.filters().items():
            query[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return query.urlencode()


class IdListField(forms.Field):
    """Notification ids, as repeated form fields."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if not all(str(v).isdigit() and 0 < int(v) < 2**63 for v in values):
            raise forms.ValidationError("Notification ids are whole numbers.")
        return sorted({int(v) for v in values})


class BulkReplayForm(forms.Form):
    """A bulk replay: the ticked notifications, or every one matching the filter."""

    ids = IdListField(required=False)
    every_matching = forms.BooleanField(required=False)
    confirmed = forms.BooleanField(required=False)

    def clean(self):
        data = super().clean()
        if "ids" in data and not data["ids"] and not data.get("every_matching"):
            raise forms.ValidationError("Tick the notifications to replay, or replay them all.")
        if len(data.get("ids") or ()) > MAX_BULK:
            raise forms.ValidationError(f"Replay at most {MAX_BULK} notifications at once.")
        return data


def _filter_form(data) -> DeadLetterFilterForm:
    fields = {k: v for k, v in data.items() if k in DeadLetterFilterForm.base_fields}
    form = DeadLetterFilterForm(fields)
    form.is_valid()
    return form


def _pairs(filter_form: DeadLetterFilterForm) -> list[tuple[str, str]]:
    """The filter as (name, value) pairs, for hidden fields that carry it along."""
    return list(QueryDict(filter_form.query()).items()) if filter_form.is_valid() else []


def _list_url(bank, filter_form: DeadLetterFilterForm | None = None) -> str:
    url = reverse("deliveries:dead_letters", kwargs={"bank": bank.slug})
    query = filter_form.query() if filter_form is not None and filter_form.is_valid() else ""
    return f"{url}?{query}" if query else url


def _report(request, report: services.ReplayReport) -> None:
    if report.count:
        messages.success(
            request,
            f"{report.count} notification{'s' if report.count != 1 else ''} queued again.",
        )
    for pk, reason in sorted(report.refused.items())[:10]:
        messages.error(request, f"Notification {pk} was not replayed: {reason}")
    if len(report.refused) > 10:
        messages.error(request, f"{len(report.refused) - 10} more were not replayed.")
    if not report.count and not report.refused:
        messages.info(request, "Nothing to replay: no dead-lettered notification matched.")


@bank_staff(view=(ADMIN, OPERATOR, AUDITOR))
def dead_letters(request, bank):
    """The bank's dead-lettered notifications with their attempts and events, filtered."""
    form = DeadLetterFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        context = {"bank": bank, "form": form, "page": None, "query": ""}
        return render(request, "notifications/dead_letters/list.html", context, status=400)
    filters = form.filters() if form.is_bound else {}
    page = Paginator(selectors.dead_letters_filtered(bank=bank, **filters), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [
        {
            "notification": notification,
            "attempts": [_attempt_row(a) for a in notification.delivery_attempts.all()],
        }
        for notification in page.object_list
    ]
    return render(
        request,
        "notifications/dead_letters/list.html",
        {
            "bank": bank,
            "form": form,
            "page": page,
            "rows": rows,
            "filtered": bool(filters),
            "query": form.query() if filters else "",
            "filter_pairs": _pairs(form) if filters else [],
        },
    )


def _attempt_row(attempt: DeliveryAttempt) -> dict:
    """An attempt as staff see it: when, what came of it, and the platform's error."""
    return {
        "number": attempt.number,
        "started_at": attempt.started_at,
        "form": attempt.get_form_display() if attempt.form else "",
        "outcome": attempt.get_outcome_display(),
        "outcome_class": attempt.outcome,
        "error": (
            f"{attempt.error_code}" + (f"/{attempt.error_subcode}" if attempt.error_subcode else "")
            if attempt.error_code is not None
            else ""
        ),
        "detail": attempt.detail,
        "latency_ms": attempt.latency_ms,
    }


@bank_staff(change=(ADMIN, OPERATOR))
def dead_letter_replay(request, bank, notification: int):
    """Replay one dead-lettered notification; refused with a reason when it may not go."""
    found = selectors.dead_letter_get(bank=bank, pk=notification)
    if found is None:
        raise Http404("No such dead-lettered notification.")
    report = services.dead_letters_replay(
        actor=Actor.staff(request.user), bank=bank, notification_ids=[found.pk]
    )
    _report(request, report)
    return redirect(_list_url(bank, _filter_form(request.POST)))


@bank_staff(change=(ADMIN, OPERATOR))
def dead_letters_replay(request, bank):
    """Replay the ticked notifications, or every one matching the filter, once confirmed."""
    filter_form = _filter_form(request.POST)
    form = BulkReplayForm(request.POST)
    if not form.is_valid() or not filter_form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        if filter_form.errors:
            messages.error(request, "The filter is not valid: search again.")
        return redirect(_list_url(bank, filter_form))
    data = form.cleaned_data
    filters = filter_form.filters()
    if data["every_matching"]:
        matching = selectors.dead_letters_filtered(bank=bank, **filters)
        ids = list(matching.values_list("pk", flat=True)[: MAX_BULK + 1])
        scope = "every_matching"
    else:
        ids = list(
            selectors.dead_letters_filtered(bank=bank)
            .filter(pk__in=data["ids"])
            .values_list("pk", flat=True)
        )
        scope = "selected"
    if not ids:
        messages.info(request, "Nothing to replay: no dead-lettered notification matched.")
        return redirect(_list_url(bank, filter_form))
    if len(ids) > MAX_BULK:
        messages.error(
            request,
            f"More than {MAX_BULK} notifications match: narrow the filter and replay in parts.",
        )
        return redirect(_list_url(bank, filter_form))
    if not data["confirmed"]:
        by_type = Counter(
            selectors.dead_letters_filtered(bank=bank)
            .filter(pk__in=ids)
            .values_list("event_type", flat=True)
        )
        return render(
            request,
            "notifications/dead_letters/confirm.html",
            {
                "bank": bank,
                "count": len(ids),
                "scope": scope,
                "ids": ids if scope == "selected" else [],
                "by_type": sorted(
                    (Event.Type(t).label if t in Event.Type.values else t, n)
                    for t, n in by_type.items()
                ),
                "filter_pairs": _pairs(filter_form),
                "back_url": _list_url(bank, filter_form),
            },
        )
    report = services.dead_letters_replay(
        actor=Actor.staff(request.user),
        bank=bank,
        notification_ids=ids,
        filters={
            "scope": scope,
            **{k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in filters.items()},
        },
    )
    _report(request, report)
    return redirect(_list_url(bank, filter_form))
