"""The agent inbox and the fraud answers, staff pages drawn inside the portal's shell."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

from conversation import callbacks, selectors, services
from conversation.models import (
    URGENT_REASONS,
    BankCallback,
    CannedReply,
    Conversation,
    ConversationNote,
    ConversationText,
)
from portal import text_versions
from portal.access import ADMIN, AUDITOR, OPERATOR, bank_staff
from portal.audit import Actor
from portal.models import Bank, StaffMembership, TextVersion
from portal.staff_forms import handle_staff_form

VIEW = (ADMIN, OPERATOR, AUDITOR)
CHANGE = (ADMIN, OPERATOR)
APPROVERS = (ADMIN,)
INBOX_LIMIT = 100


CONFIRM_CONSENT_ENDED = "I confirm this reply is needed although the customer stopped sharing"


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Reply",
        max_length=services.TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent as you, with Messenger's HUMAN_AGENT tag.",
    )
    confirm_consent_ended = forms.BooleanField(label=CONFIRM_CONSENT_ENDED, required=False)

    def __init__(self, *args, consent_ended: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not consent_ended:
            del self.fields["confirm_consent_ended"]


class NoteForm(forms.Form):
    note = forms.CharField(
        label="Internal note",
        max_length=services.NOTE_LIMIT,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="For the bank's staff only: never sent to the customer.",
    )


class ReplyTargetForm(forms.Form):
    reply_target_minutes = forms.IntegerField(
        label="Reply target (minutes)",
        min_value=1,
        max_value=24 * 60,
        help_text="How long a customer may wait for a person before the inbox flags it.",
    )


class CannedReplyForm(forms.Form):
    locale = forms.RegexField(
        regex=r"^[a-z]{2,3}(?:_[A-Z]{2})?$",
        max_length=10,
        label="Language",
        help_text="A language code such as en, fr or de_CH.",
        error_messages={"invalid": "Use a language code such as en, fr or de_CH."},
    )
    title = forms.CharField(label="Title", max_length=80)
    body = forms.CharField(
        label="Reply text",
        max_length=services.TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Plain text; agents read it before it goes. Never a card number.",
    )


@dataclass(frozen=True)
class TextKindPage:
    """How the editor of one kind of `ConversationText` reads, and where it is."""

    url_name: str
    title: str
    body_label: str
    body_help: str
    rows: int


TEXT_PAGES = {
    ConversationText.Kind.FRAUD_DENIED: TextKindPage(
        url_name="conversation:conversation_texts",
        title="Next steps after “No, it wasn't me”",
        body_label="Next steps after “No, it wasn't me”",
        body_help="You can use {customer_first_name}, {amount}, {merchant}, {last4} and "
        "{currency}.",
        rows=4,
    ),
    ConversationText.Kind.AUTOMATED: TextKindPage(
        url_name="conversation:automated_texts",
        title="Telling customers the chat is automated",
        body_label="Sentence saying the chat is automated",
        body_help="Plain text, sent before the assistant's answer; write the bank's name out.",
        rows=2,
    ),
}


class ConversationTextForm(forms.Form):
    """One language's text of one kind, as a draft for an admin to approve."""

    locale = forms.RegexField(
        regex=r"^[a-z]{2,3}(?:_[A-Z]{2})?$",
        max_length=10,
        label="Language",
        help_text="A language code such as en, fr or de_CH.",
        error_messages={"invalid": "Use a language code such as en, fr or de_CH."},
    )
    body = forms.CharField(widget=forms.Textarea)

    def __init__(self, *args: Any, kind: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        page = TEXT_PAGES[ConversationText.Kind(kind)]
        body = self.fields["body"]
        body.label = page.body_label
        body.help_text = page.body_help
        body.widget.attrs["rows"] = page.rows

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        errors = services.conversation_text_errors(body, self.kind)
        if errors:
            raise forms.ValidationError(errors)
        return body


def _conversation(bank, pk: int) -> Conversation:
    try:
        return selectors.conversation_get(bank=bank, pk=pk)
    except Conversation.DoesNotExist:
        raise Http404("No such conversation.") from None


def _waited(delta: timedelta) -> str:
    """A waiting time as agents read it: "4 min", "2 h 05 min", "3 d 4 h"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _row(conversation: Conversation, *, target: timedelta, now: datetime) -> dict[str, Any]:
    last = selectors.last_message_of(conversation)
    since = getattr(conversation, "waiting_since", None)
    # A resolved conversation waits for nobody, whatever its last message was.
    waited = now - since if since is not None and conversation.needs_person else None
    return {
        "id": conversation.pk,
        "customer": conversation.customer.name if conversation.customer_id else "Not linked",
        "reason": conversation.get_reason_display(),
        "reason_code": conversation.reason,
        "urgent": conversation.reason in URGENT_REASONS,
        "assigned_to": conversation.assigned_to.get_username()
        if conversation.assigned_to_id
        else "",
        "last_message": (last.text[:140] if last else ""),
        "waiting": _waited(waited) if waited is not None else "",
        "waiting_seconds": int(waited.total_seconds()) if waited is not None else None,
        "over_target": waited is not None and waited > target,
        "consent_ended": selectors.consent_ended(conversation) is not None,
        "updated_at": conversation.updated_at.strftime("%d %b %Y %H:%M"),
        "url": reverse("conversation:inbox_thread", args=[conversation.bank.slug, conversation.pk]),
    }


def _inbox_filters(request: HttpRequest) -> dict[str, str]:
    who = request.GET.get("who", selectors.EVERYONE)
    if who not in (selectors.MINE, selectors.UNASSIGNED, selectors.EVERYONE):
        who = selectors.EVERYONE
    reason = request.GET.get("reason", "")
    if reason not in Conversation.Reason.values:
        reason = ""
    show = "resolved" if request.GET.get("show") == "resolved" else "open"
    return {"show": show, "who": who, "reason": reason}


def _inbox_rows(request: HttpRequest, bank: Bank, filters: dict[str, str]) -> list[dict[str, Any]]:
    target = selectors.reply_target(bank)
    now = timezone.now()
    found = selectors.inbox_list(bank=bank, staff_user=request.user, **filters)[:INBOX_LIMIT]
    return [_row(c, target=target, now=now) for c in found]


def _query(filters: dict[str, str]) -> str:
    wanted = {
        key: value
        for key, value in filters.items()
        if value and value != {"show": "open", "who": selectors.EVERYONE}.get(key)
    }
    return "?" + urlencode(wanted) if wanted else ""


@bank_staff(view=VIEW)  # type: ignore[untyped-decorator]
def inbox(request: HttpRequest, bank: Bank) -> HttpResponse:
    """Conversations that asked for a person or that the answers could not handle, the
    most urgent first."""
    filters = _inbox_filters(request)
    target = selectors.reply_target(bank)
    return render(
        request,
        "conversation/inbox/list.html",
        {
            "bank": bank,
            "rows": _inbox_rows(request, bank, filters),
            "query": _query(filters),
            "reasons": Conversation.Reason.choices,
            "target_minutes": int(target.total_seconds() // 60),
            **filters,
        },
    )


@bank_staff(view=VIEW)  # type: ignore[untyped-decorator]
def inbox_feed(request: HttpRequest, bank: Bank) -> HttpResponse:
    """The inbox as JSON, polled by the page so it updates without a reload."""
    filters = _inbox_filters(request)
    return JsonResponse({"bank": bank.name, "conversations": _inbox_rows(request, bank, filters)})


def _message_row(message) -> dict:
    return {
        "id": message.pk,
        "direction": message.direction,
        "author": message.get_author_display(),
        "by": message.sent_by.get_username() if message.sent_by_id else "",
        "text": message.text,
        "state": message.get_state_display(),
        "failed": message.state == "failed",
        "detail": message.detail,
        "at": message.created_at.strftime("%d %b %Y %H:%M:%S"),
    }


def _note_row(note: ConversationNote) -> dict[str, Any]:
    return {
        "note": True,
        "id": note.pk,
        "by": note.written_by.get_username() if note.written_by is not None else "",
        "text": note.text,
        "at": note.created_at.strftime("%d %b %Y %H:%M:%S"),
        "moment": note.created_at,
    }


def _thread_context(
    request: HttpRequest,
    bank: Bank,
    conversation: Conversation,
    form: ReplyForm | None = None,
    note_form: NoteForm | None = None,
) -> dict[str, Any]:
    last = services.last_inbound_at(conversation)
    ended = selectors.consent_ended(conversation)
    messages_ = selectors.thread(conversation)
    entries = [{**_message_row(m), "moment": m.created_at} for m in messages_] + [
        _note_row(n) for n in selectors.notes_of(conversation)
    ]
    entries.sort(key=lambda entry: entry["moment"])
    locale = conversation.customer.locale if conversation.customer is not None else ""
    canned = list(selectors.canned_replies_list(bank=bank, locale=locale or bank.default_locale))
    if form is None:
        chosen = next((c for c in canned if str(c.pk) == request.GET.get("canned", "")), None)
        form = ReplyForm(
            consent_ended=ended is not None, initial={"text": chosen.body} if chosen else None
        )
    window_open = last is not None and timezone.now() - last < services.HUMAN_AGENT_WINDOW
    assignees = (
        get_user_model()
        .objects.filter(
            memberships__bank=bank,
            memberships__role__in=[StaffMembership.Role.ADMIN, StaffMembership.Role.OPERATOR],
        )
        .order_by("username")
    )
    return {
        "bank": bank,
        "conversation": conversation,
        "thread_messages": entries,
        "summary": selectors.consent_summary(conversation),
        "form": form,
        "note_form": note_form or NoteForm(),
        "consent_ended": ended,
        "answered": selectors.answered_notification(conversation),
        "canned": canned,
        "last_inbound_at": last,
        "window_open": window_open,
        "window_ends": last + services.HUMAN_AGENT_WINDOW if last else None,
        "assignees": assignees,
    }


@bank_staff(view=VIEW)
def inbox_thread(request, bank, conversation):
    conversation = _conversation(bank, conversation)
    services.conversation_view_record(actor=Actor.staff(request.user), conversation=conversation)
    return render(
        request, "conversation/inbox/thread.html", _thread_context(request, bank, conversation)
    )


@bank_staff(view=VIEW)
def inbox_thread_feed(request, bank, conversation):
    """New messages of one thread (after `after`), polled by the thread page."""
    conversation = _conversation(bank, conversation)
    try:
        after = max(0, int(request.GET.get("after", "0")))
    except ValueError:
        return JsonResponse({"error": "after must be a message id"}, status=400)
    return JsonResponse(
        {
            "bank": bank.name,
            "messages": [_message_row(m) for m in selectors.thread(conversation, after=after)],
            "after": after,
            "needs_person": conversation.needs_person,
        }
    )


def _thread_url(bank: Bank, conversation: Conversation) -> str:
    return reverse(
        "conversation:inbox_thread", kwargs={"bank": bank.slug, "conversation": conversation.pk}
    )


@bank_staff(change=CHANGE)
def inbox_reply(request, bank, conversation):
    conversation = _conversation(bank, conversation)
    ended = selectors.consent_ended(conversation) is not None
    form = ReplyForm(request.POST, consent_ended=ended)

    def reply(data):
        try:
            return services.agent_reply(
                actor=Actor.staff(request.user),
                conversation=conversation,
                text=data["text"],
                consent_ended_confirmed=bool(data.get("confirm_consent_ended")),
            )
        except services.ReplyRefusedError as refused:
            if str(refused) == services.CONSENT_ENDED_REFUSED and ended:
                raise ValidationError({"confirm_consent_ended": str(refused)}) from None
            raise

    if sent := handle_staff_form(
        request,
        form,
        action=reply,
        success_message="Reply queued: it goes out with the HUMAN_AGENT tag.",
        redirect_to=_thread_url(bank, conversation),
        refusals=(services.ReplyRefusedError, ValidationError),
        error_field="text",
    ):
        return sent
    context = _thread_context(request, bank, conversation, form=form)
    return render(request, "conversation/inbox/thread.html", context, status=400)


@bank_staff(change=CHANGE)  # type: ignore[untyped-decorator]
def inbox_note(request: HttpRequest, bank: Bank, conversation: int) -> HttpResponse:
    """An internal note on the conversation, for the bank's staff only."""
    found = _conversation(bank, conversation)
    form = NoteForm(request.POST)
    if done := handle_staff_form(
        request,
        form,
        action=lambda data: services.conversation_note_add(
            actor=Actor.staff(request.user), conversation=found, text=data["note"]
        ),
        success_message="Note added: only the bank's staff see it.",
        redirect_to=_thread_url(bank, found),
        refusals=services.TriageRefusedError,
        error_field="note",
    ):
        return done
    context = _thread_context(request, bank, found, note_form=form)
    return render(request, "conversation/inbox/thread.html", context, status=400)


@bank_staff(view=VIEW, change=[ADMIN])  # type: ignore[untyped-decorator]
def inbox_settings(request: HttpRequest, bank: Bank) -> HttpResponse:
    """The reply target, and the canned replies agents pick from, per language."""
    current = selectors.inbox_settings_get(bank)
    target_form = ReplyTargetForm(
        request.POST if request.POST.get("form") == "target" else None,
        initial={"reply_target_minutes": current.reply_target_minutes},
    )
    canned_form = CannedReplyForm(
        request.POST if request.POST.get("form") == "canned" else None,
        initial={"locale": bank.default_locale},
    )
    here = reverse("conversation:inbox_settings", kwargs={"bank": bank.slug})
    actor = Actor.staff(request.user)
    if done := handle_staff_form(
        request,
        target_form,
        action=lambda data: services.inbox_settings_save(
            actor=actor, bank=bank, reply_target_minutes=data["reply_target_minutes"]
        ),
        success_message="Reply target saved.",
        redirect_to=here,
        refusals=services.TriageRefusedError,
        error_field="reply_target_minutes",
    ):
        return done
    if done := handle_staff_form(
        request,
        canned_form,
        action=lambda data: services.canned_reply_save(
            actor=actor, bank=bank, locale=data["locale"], title=data["title"], body=data["body"]
        ),
        success_message="Canned reply saved as a draft: it is offered to agents once "
        "another admin approves it.",
        redirect_to=here,
        refusals=services.TriageRefusedError,
        error_field="body",
    ):
        return done
    invalid = request.method == "POST"
    return render(
        request,
        "conversation/inbox/settings.html",
        {
            "bank": bank,
            "target_form": target_form,
            "canned_form": canned_form,
            "canned": list(selectors.canned_replies_list(bank=bank)),
            "canned_drafts": [
                {"version": v, "title": _canned_title(v.key), "url": CANNED_VERSIONS.url(bank, v)}
                for v in TextVersion.objects.for_bank(bank)
                .filter(subject=services.CANNED_SUBJECT, state=TextVersion.State.DRAFT)
                .order_by("key")
            ],
        },
        status=400 if invalid else 200,
    )


def _canned_title(key: str) -> str:
    locale, title = services.canned_reply_key_split(key)
    return f"Canned reply “{title}” ({locale})"


CANNED_VERSIONS = text_versions.VersionedText(
    versioned=services.VERSIONED_CANNED_REPLIES,
    url_name="conversation:canned_reply_version",
    url_param="canned_version",
    title=_canned_title,
    editor_url=lambda bank, key: reverse("conversation:inbox_settings", kwargs={"bank": bank.slug}),
)


@bank_staff(view=VIEW)  # type: ignore[untyped-decorator]
def canned_reply_version(request: HttpRequest, bank: Bank, canned_version: int) -> HttpResponse:
    return text_versions.version_review(request, bank, CANNED_VERSIONS, canned_version)


@bank_staff(change=[ADMIN])  # type: ignore[untyped-decorator]
def canned_reply_version_approve(
    request: HttpRequest, bank: Bank, canned_version: int
) -> HttpResponse:
    return text_versions.version_decide(
        request, bank, CANNED_VERSIONS, canned_version, approve=True
    )


@bank_staff(change=[ADMIN])  # type: ignore[untyped-decorator]
def canned_reply_version_reject(
    request: HttpRequest, bank: Bank, canned_version: int
) -> HttpResponse:
    return text_versions.version_decide(
        request, bank, CANNED_VERSIONS, canned_version, approve=False
    )


@bank_staff(change=[ADMIN])  # type: ignore[untyped-decorator]
def canned_reply_version_rollback(
    request: HttpRequest, bank: Bank, canned_version: int
) -> HttpResponse:
    return text_versions.version_rollback(request, bank, CANNED_VERSIONS, canned_version)


def _canned(bank: Bank, pk: int) -> CannedReply:
    found = CannedReply.objects.for_bank(bank).filter(pk=pk).first()
    if found is None:
        raise Http404("No such canned reply.")
    return found


@bank_staff(view=VIEW, change=[ADMIN])  # type: ignore[untyped-decorator]
def canned_reply_edit(request: HttpRequest, bank: Bank, canned: int) -> HttpResponse:
    found = _canned(bank, canned)
    form = CannedReplyForm(
        request.POST or None,
        initial={"locale": found.locale, "title": found.title, "body": found.body},
    )
    if done := handle_staff_form(
        request,
        form,
        action=lambda data: services.canned_reply_save(
            actor=Actor.staff(request.user),
            bank=bank,
            locale=data["locale"],
            title=data["title"],
            body=data["body"],
            canned=found,
        ),
        success_message="Saved as a draft: agents get the new text once another admin approves it.",
        redirect_to=reverse("conversation:inbox_settings", kwargs={"bank": bank.slug}),
        refusals=services.TriageRefusedError,
        error_field="body",
    ):
        return done
    return render(
        request,
        "conversation/inbox/canned_edit.html",
        {"bank": bank, "form": form, "canned": found},
        status=400 if form.errors else 200,
    )


@bank_staff(change=[ADMIN])  # type: ignore[untyped-decorator]
def canned_reply_delete(request: HttpRequest, bank: Bank, canned: int) -> HttpResponse:
    found = _canned(bank, canned)
    services.canned_reply_delete(actor=Actor.staff(request.user), canned=found)
    messages.success(request, f"Canned reply “{found.title}” deleted.")
    return redirect("conversation:inbox_settings", bank=bank.slug)


@bank_staff(change=CHANGE)
def inbox_assign(request, bank, conversation):
    conversation = _conversation(bank, conversation)
    raw = request.POST.get("assignee", "")
    assignee = None
    if raw == "me":
        assignee = request.user
    elif raw:
        assignee = (
            get_user_model().objects.filter(pk=raw, memberships__bank=bank).first()
            if raw.isdigit()
            else None
        )
        if assignee is None:
            messages.error(request, "Choose one of the bank's admins or operators.")
            return redirect(
                "conversation:inbox_thread", bank=bank.slug, conversation=conversation.pk
            )
    try:
        services.conversation_assign(
            actor=Actor.staff(request.user), conversation=conversation, assignee=assignee
        )
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request, f"Assigned to {assignee.get_username()}." if assignee else "Unassigned."
        )
    return redirect("conversation:inbox_thread", bank=bank.slug, conversation=conversation.pk)


@bank_staff(change=CHANGE)
def inbox_resolve(request, bank, conversation):
    conversation = _conversation(bank, conversation)
    services.conversation_resolve(actor=Actor.staff(request.user), conversation=conversation)
    messages.success(request, "Resolved: the conversation left the inbox.")
    return redirect("conversation:inbox", bank=bank.slug)


@bank_staff(view=VIEW)
def fraud_answers(request, bank):
    """Customers' answers to fraud alerts, and the delivery log of the callbacks to the bank."""
    return render(
        request,
        "conversation/fraud_answers.html",
        {
            "bank": bank,
            "answers": list(selectors.fraud_answers_list(bank=bank)[:200]),
            "callbacks": list(selectors.callbacks_list(bank=bank)[:200]),
            "callback_configured": selectors.callback_configured(bank),
        },
    )


@bank_staff(change=CHANGE)
def callback_retry(request, bank, callback):
    found = BankCallback.objects.for_bank(bank).filter(pk=callback).first()
    if found is None:
        raise Http404("No such callback.")
    try:
        callbacks.callback_retry_now(actor=Actor.staff(request.user), callback=found)
    except ValueError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Sending again.")
    return redirect("conversation:fraud_answers", bank=bank.slug)


def _text_title(key: str) -> str:
    kind, locale = services.conversation_text_key_split(key)
    title = TEXT_PAGES[ConversationText.Kind(kind)].title if kind in TEXT_PAGES else kind
    return f"{title} · {locale}"


def _text_editor_url(bank: Bank, key: str) -> str:
    page = TEXT_PAGES[ConversationText.Kind(services.conversation_text_key_split(key)[0])]
    return reverse(page.url_name, kwargs={"bank": bank.slug})


TEXT_VERSIONS = text_versions.VersionedText(
    versioned=services.VERSIONED_TEXTS,
    url_name="conversation:conversation_text_version",
    url_param="text_version",
    title=_text_title,
    editor_url=_text_editor_url,
)


@bank_staff(view=VIEW, change=CHANGE)  # type: ignore[untyped-decorator]
def conversation_texts(request: HttpRequest, bank: Bank, kind: str) -> HttpResponse:
    """The bank's texts of one kind (named by the URL), per language: the live ones, the
    drafts waiting for an admin's approval, and the form that writes a draft."""
    text_kind = ConversationText.Kind(kind)
    form = ConversationTextForm(
        request.POST or None, kind=text_kind, initial={"locale": bank.default_locale}
    )
    if done := handle_staff_form(
        request,
        form,
        action=lambda data: services.conversation_text_draft(
            actor=Actor.staff(request.user),
            bank=bank,
            kind=text_kind,
            locale=data["locale"],
            body=data["body"],
        ),
        success_message=lambda version: (
            f"Draft saved as version {version.number}. Customers keep reading the live text "
            "until an admin other than you approves it."
        ),
        redirect_to=lambda version: TEXT_VERSIONS.url(bank, version),
    ):
        return done
    versions = TextVersion.objects.for_bank(bank).filter(
        subject=services.TEXT_SUBJECT, key__startswith=f"{text_kind}:"
    )
    live_versions = {v.key: v for v in versions if v.state == TextVersion.State.APPROVED}
    saved = [
        {
            "text": text,
            "url": TEXT_VERSIONS.url(bank, live_versions[key])
            if (key := services.conversation_text_key(text.kind, text.locale)) in live_versions
            else "",
        }
        for text in ConversationText.objects.for_bank(bank).filter(kind=text_kind)
    ]
    drafts = [
        {
            "version": v,
            "locale": services.conversation_text_key_split(v.key)[1],
            "url": TEXT_VERSIONS.url(bank, v),
        }
        for v in versions
        if v.state == TextVersion.State.DRAFT
    ]
    return render(
        request,
        "conversation/texts.html",
        {
            "bank": bank,
            "kind": text_kind,
            "page": TEXT_PAGES[text_kind],
            "form": form,
            "saved": saved,
            "drafts": drafts,
            "default_text": selectors.conversation_text_for(
                bank=bank, kind=text_kind, locale=bank.default_locale
            ),
        },
        status=400 if form.errors else 200,
    )


@bank_staff(view=VIEW)  # type: ignore[untyped-decorator]
def conversation_text_version(request: HttpRequest, bank: Bank, text_version: int) -> HttpResponse:
    return text_versions.version_review(request, bank, TEXT_VERSIONS, text_version)


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def conversation_text_version_approve(
    request: HttpRequest, bank: Bank, text_version: int
) -> HttpResponse:
    return text_versions.version_decide(request, bank, TEXT_VERSIONS, text_version, approve=True)


@bank_staff(change=APPROVERS)  # type: ignore[untyped-decorator]
def conversation_text_version_reject(
    request: HttpRequest, bank: Bank, text_version: int
) -> HttpResponse:
    return text_versions.version_decide(request, bank, TEXT_VERSIONS, text_version, approve=False)


@bank_staff(change=CHANGE)  # type: ignore[untyped-decorator]
def conversation_text_version_rollback(
    request: HttpRequest, bank: Bank, text_version: int
) -> HttpResponse:
    return text_versions.version_rollback(request, bank, TEXT_VERSIONS, text_version)
