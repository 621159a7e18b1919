"""The agent inbox and the fraud answers, staff pages drawn inside the portal's shell."""

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from conversation import callbacks, selectors, services
from conversation.models import BankCallback, Conversation, ConversationText
from portal import text_versions
from portal.access import ADMIN, AUDITOR, OPERATOR, bank_staff
from portal.audit import Actor
from portal.models import Bank, StaffMembership, TextVersion
from portal.staff_forms import handle_staff_form

VIEW = (ADMIN, OPERATOR, AUDITOR)
CHANGE = (ADMIN, OPERATOR)
APPROVERS = (ADMIN,)
INBOX_LIMIT = 100


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Reply",
        max_length=services.TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent as you, with Messenger's HUMAN_AGENT tag.",
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


def _row(conversation: Conversation) -> dict:
    last = selectors.last_message_of(conversation)
    return {
        "id": conversation.pk,
        "customer": conversation.customer.name if conversation.customer_id else "Not linked",
        "reason": conversation.get_reason_display(),
        "assigned_to": conversation.assigned_to.get_username()
        if conversation.assigned_to_id
        else "",
        "last_message": (last.text[:140] if last else ""),
        "updated_at": conversation.updated_at.strftime("%d %b %Y %H:%M"),
        "url": reverse("conversation:inbox_thread", args=[conversation.bank.slug, conversation.pk]),
    }


@bank_staff(view=VIEW)
def inbox(request, bank):
    """Conversations that asked for a person or that the answers could not handle."""
    show = "resolved" if request.GET.get("show") == "resolved" else "open"
    rows = [_row(c) for c in selectors.inbox_list(bank=bank, show=show)[:INBOX_LIMIT]]
    return render(
        request,
        "conversation/inbox/list.html",
        {"bank": bank, "rows": rows, "show": show},
    )


@bank_staff(view=VIEW)
def inbox_feed(request, bank):
    """The inbox as JSON, polled by the page so it updates without a reload."""
    show = "resolved" if request.GET.get("show") == "resolved" else "open"
    rows = [_row(c) for c in selectors.inbox_list(bank=bank, show=show)[:INBOX_LIMIT]]
    return JsonResponse({"bank": bank.name, "conversations": rows})


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


def _thread_context(request, bank, conversation, form=None) -> dict:
    last = services.last_inbound_at(conversation)
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
        "thread_messages": [_message_row(m) for m in selectors.thread(conversation)],
        "summary": selectors.consent_summary(conversation),
        "form": form or ReplyForm(),
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


@bank_staff(change=CHANGE)
def inbox_reply(request, bank, conversation):
    conversation = _conversation(bank, conversation)
    form = ReplyForm(request.POST)
    if sent := handle_staff_form(
        request,
        form,
        action=lambda data: services.agent_reply(
            actor=Actor.staff(request.user), conversation=conversation, text=data["text"]
        ),
        success_message="Reply queued: it goes out with the HUMAN_AGENT tag.",
        redirect_to=reverse(
            "conversation:inbox_thread", kwargs={"bank": bank.slug, "conversation": conversation.pk}
        ),
        refusals=services.ReplyRefusedError,
        error_field="text",
    ):
        return sent
    context = _thread_context(request, bank, conversation, form=form)
    return render(request, "conversation/inbox/thread.html", context, status=400)


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
    subject=services.TEXT_SUBJECT,
    url_name="conversation:conversation_text_version",
    url_param="text_version",
    title=_text_title,
    editor_url=_text_editor_url,
    live_body=lambda bank, key: services.conversation_text_live_body(bank=bank, key=key),
    approve=services.conversation_text_approve,
    reject=services.conversation_text_reject,
    rollback=services.conversation_text_rollback,
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
