"""Message templates, their live preview, and their registration as utility templates."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

import messenger
from portal import rendering, selectors, services, text_versions
from portal.access import ADMIN, EVERYONE, OPERATOR, bank_staff
from portal.audit import Actor
from portal.events import PLACEHOLDER_HELP, PLACEHOLDERS, SAMPLE_DATA, EventType
from portal.forms import MessageTemplateCreateForm, MessageTemplateForm
from portal.languages import language_of, supported_languages
from portal.models import Bank, TextVersion
from portal.rendering import TEXT_LIMIT, normalise_locale, template_errors
from portal.staff_forms import handle_staff_form
from portal.template_defaults import default_template_text, is_default_transaction_text
from portal.templatetags.portal_tags import locale_name

EDITORS = (ADMIN, OPERATOR)
APPROVERS = (ADMIN,)
DRAFT_SAVED = (
    "Draft saved as version {number}. Customers keep reading the live text until an admin "
    "other than you approves it."
)


def _template_title(key: str) -> str:
    event_type, locale = services.message_template_key_split(key)
    label = EventType(event_type).label if event_type in EventType.values else event_type
    return f"{label} · {locale_name(locale)}"


def _template_editor_url(bank: Bank, key: str) -> str:
    event_type, locale = services.message_template_key_split(key)
    live = selectors.message_template_list(bank=bank)
    found = next((t for t in live if t.event_type == event_type and t.locale == locale), None)
    if found is None:
        return reverse("portal:message_templates", kwargs={"bank": bank.slug})
    return _edit_url(bank, found)


TEMPLATE_VERSIONS = text_versions.VersionedText(
    versioned=services.VERSIONED_TEMPLATES,
    url_name="portal:message_template_version",
    title=_template_title,
    editor_url=_template_editor_url,
)


def _draft_saved(version: TextVersion) -> str:
    return DRAFT_SAVED.format(number=version.number)


def _pending_drafts(bank: Bank) -> list[dict[str, object]]:
    return [
        {
            "version": version,
            "title": _template_title(version.key),
            "url": TEMPLATE_VERSIONS.url(bank, version),
        }
        for version in TextVersion.objects.for_bank(bank)
        .filter(subject=services.TEMPLATE_SUBJECT, state=TextVersion.State.DRAFT)
        .order_by("created_at")
    ]


def graph_client() -> messenger.GraphClient:
    """The Graph API client for template registration (tests swap in a mock transport)."""
    return messenger.get_client()


def preview_of(body: str, event_type: str, locale: str) -> dict:
    """The sample message exactly as a customer would get it, or what stops it rendering."""
    errors = template_errors(body, event_type)
    text = (
        "" if errors else rendering.render(body, event_type, SAMPLE_DATA[event_type], locale=locale)
    )
    return {"text": text, "errors": errors, "length": len(text), "limit": TEXT_LIMIT}


def languages_missing(locales: list[str]) -> list[str]:
    """The languages bankside speaks to customers in (`settings.LANGUAGES`) that none of
    `locales` (one event type's templates) covers: customers reading them get the text in
    the bank's default language, with that language's formats."""
    covered = {language_of(locale) for locale in locales}
    return [language for language in supported_languages() if language not in covered]


@bank_staff(view=EVERYONE)
def message_templates(request, bank):
    templates = selectors.message_template_list(bank=bank)
    rows = [
        {
            "event_type": event_type,
            "label": label,
            "templates": [
                (t, selectors.utility_template_latest(template=t))
                for t in templates
                if t.event_type == event_type
            ],
            "missing": languages_missing(
                [t.locale for t in templates if t.event_type == event_type]
            ),
        }
        for event_type, label in EventType.choices
    ]
    return render(
        request,
        "portal/templates/list.html",
        {
            "bank": bank,
            "rows": rows,
            "default_locale": normalise_locale(bank.default_locale),
            "drafts": _pending_drafts(bank),
        },
    )


@bank_staff(view=EDITORS, change=EDITORS)
def message_template_new(request, bank):
    event_type = request.GET.get("event_type", EventType.TRANSACTION_POSTED)
    if event_type not in EventType.values:
        event_type = EventType.TRANSACTION_POSTED
    locale = normalise_locale(request.GET.get("locale", "")) or "en"
    form = MessageTemplateCreateForm(
        request.POST if request.method == "POST" else None,
        initial={
            "event_type": event_type,
            "locale": locale,
            "body": default_template_text(event_type, locale),
        },
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.message_template_draft(
            actor=Actor.staff(request.user),
            bank=bank,
            event_type=data["event_type"],
            locale=data["locale"],
            body=data["body"],
        ),
        success_message=_draft_saved,
        redirect_to=lambda version: TEMPLATE_VERSIONS.url(bank, version),
    )
    if done:
        return done
    body = form["body"].value() or ""
    chosen_event = form["event_type"].value() or event_type
    if chosen_event not in EventType.values:
        chosen_event = EventType.TRANSACTION_POSTED
    return render(
        request,
        "portal/templates/edit.html",
        {
            "bank": bank,
            "form": form,
            "template": None,
            "event_type": chosen_event,
            "placeholder_sets": _placeholder_sets(chosen_event),
            "preview": preview_of(body, chosen_event, form["locale"].value() or locale),
        },
    )


# What a default transaction text becomes, by kind (`portal.template_defaults`).
BANK_STYLE_EXAMPLES = (
    ("A card payment", {"amount": "-4.61", "merchant": "Corner Coffee", "card_last4": "4037"}),
    ("Money arriving", {"amount": "250.00", "description": "Salary"}),
    ("A direct debit", {"amount": "-45.00", "description": "Electricity"}),
    ("A refund", {"amount": "12.00", "merchant": "Bookshop Lyon", "card_last4": "4037"}),
    ("A cash withdrawal", {"amount": "-100.00", "category": "atm", "card_last4": "4037"}),
)


def bank_style_examples(body: str, event_type: str, locale: str) -> list[tuple[str, str]]:
    """For a transaction text left as the default: how each kind of transaction reads."""
    if event_type != EventType.TRANSACTION_POSTED or not is_default_transaction_text(body):
        return []
    sample = SAMPLE_DATA[event_type]

    def card(data: dict[str, str]) -> dict[str, str]:  # a card's own number, as delivery shows
        return {"last4": data["card_last4"]} if "card_last4" in data else {}

    base = {k: sample[k] for k in ("customer_first_name", "last4", "currency")}
    return [
        (label, rendering.render(body, event_type, {**base, **data, **card(data)}, locale=locale))
        for label, data in BANK_STYLE_EXAMPLES
    ]


@bank_staff(view=EVERYONE, change=EDITORS)
def message_template_edit(request, bank, template: int):
    target = selectors.message_template_get(bank=bank, pk=template)
    key = services.message_template_key(target.event_type, target.locale)
    rows = text_versions.version_rows(request, bank, TEMPLATE_VERSIONS, key)
    draft = next((r for r in rows if r.version.state == TextVersion.State.DRAFT), None)
    form = MessageTemplateForm(
        request.POST if request.method == "POST" else None,
        initial={"body": draft.version.body if draft else target.body},
    )
    done = handle_staff_form(
        request,
        form,
        action=lambda data: services.message_template_draft(
            actor=Actor.staff(request.user),
            bank=bank,
            event_type=target.event_type,
            locale=target.locale,
            body=data["body"],
        ),
        success_message=_draft_saved,
        redirect_to=lambda version: TEMPLATE_VERSIONS.url(bank, version),
    )
    if done:
        return done
    body = form["body"].value() or ""
    return render(
        request,
        "portal/templates/edit.html",
        {
            "bank": bank,
            "form": form,
            "template": target,
            "event_type": target.event_type,
            "is_default_locale": target.locale == normalise_locale(bank.default_locale),
            "placeholder_sets": _placeholder_sets(target.event_type, every_type=False),
            "preview": preview_of(body, target.event_type, target.locale),
            "bank_style": bank_style_examples(target.body, target.event_type, target.locale),
            "utility": selectors.utility_template_latest(template=target),
            "approved": selectors.utility_template_for(template=target),
            "rows": rows,
            "draft": draft,
        },
    )


@bank_staff(view=EVERYONE)  # type: ignore[untyped-decorator]
def message_template_version(request: HttpRequest, bank: Bank, version: int) -> HttpResponse:
    return text_versions.version_review(request, bank, TEMPLATE_VERSIONS, version)


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def message_template_version_approve(
    request: HttpRequest, bank: Bank, version: int
) -> HttpResponse:
    return text_versions.version_decide(request, bank, TEMPLATE_VERSIONS, version, approve=True)


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def message_template_version_reject(request: HttpRequest, bank: Bank, version: int) -> HttpResponse:
    return text_versions.version_decide(request, bank, TEMPLATE_VERSIONS, version, approve=False)


@bank_staff(change=EDITORS)  # type: ignore[untyped-decorator]
def message_template_version_rollback(
    request: HttpRequest, bank: Bank, version: int
) -> HttpResponse:
    return text_versions.version_rollback(request, bank, TEMPLATE_VERSIONS, version)


@bank_staff(change=EDITORS)
def message_template_delete(request, bank, template: int):
    target = selectors.message_template_get(bank=bank, pk=template)
    try:
        services.message_template_delete(actor=Actor.staff(request.user), template=target)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("portal:message_template_edit", bank=bank.slug, template=target.pk)
    messages.success(request, f"The {target.locale} template is deleted.")
    return redirect("portal:message_templates", bank=bank.slug)


@bank_staff(change=EDITORS)
def message_template_preview(request, bank):
    """The live preview: the editor posts the text as it is typed and shows the answer."""
    event_type = request.POST.get("event_type", "")
    if event_type not in EventType.values:
        return JsonResponse({"errors": ["Choose an event type."]}, status=400)
    locale = normalise_locale(request.POST.get("locale", "")) or bank.default_locale
    return JsonResponse(preview_of(request.POST.get("body", ""), event_type, locale))


@bank_staff(change=EDITORS)
def utility_template_register(request, bank, template: int):
    target = selectors.message_template_get(bank=bank, pk=template)
    try:
        outcome = services.utility_template_register(
            actor=Actor.staff(request.user), template=target, client=graph_client()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if outcome.ok:
            utility = outcome.utility_template
            messages.success(
                request,
                f"Submitted to Meta as “{utility.name}”: {utility.get_status_display().lower()}.",
            )
        else:
            messages.error(request, f"Meta did not accept the template: {outcome.error}")
    return redirect("portal:message_template_edit", bank=bank.slug, template=target.pk)


@bank_staff(change=EDITORS)
def utility_template_refresh(request, bank, template: int):
    target = selectors.message_template_get(bank=bank, pk=template)
    utility = selectors.utility_template_latest(template=target)
    if utility is None:
        messages.error(request, "This template is not registered with Meta yet.")
        return redirect("portal:message_template_edit", bank=bank.slug, template=target.pk)
    try:
        outcome = services.utility_template_refresh(
            actor=Actor.staff(request.user), utility_template=utility, client=graph_client()
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        if outcome.ok:
            messages.success(
                request, f"Meta's review status: {outcome.utility_template.get_status_display()}."
            )
        else:
            messages.error(request, f"Could not get the status from Meta: {outcome.error}")
    return redirect("portal:message_template_edit", bank=bank.slug, template=target.pk)


def _edit_url(bank, template) -> str:
    kwargs = {"bank": bank.slug, "template": template.pk}
    return reverse("portal:message_template_edit", kwargs=kwargs)


def _placeholder_sets(current: str, *, every_type: bool = True) -> list[dict]:
    """The placeholders of `current`'s event type, and (hidden) of the others when the
    event type can still be chosen: the editor shows the set of the chosen type."""
    return [
        {
            "event_type": event_type,
            "shown": event_type == current,
            "names": [(name, PLACEHOLDER_HELP[name]) for name in PLACEHOLDERS[event_type]],
        }
        for event_type in (EventType.values if every_type else [current])
    ]
