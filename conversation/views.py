"""The agent inbox and the fraud answers, staff pages drawn inside the portal's shell."""

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from conversation import callbacks, selectors, services
from conversation.models import BankCallback, Conversation, ConversationText
from portal.access import ADMIN, AUDITOR, OPERATOR, bank_staff
from portal.audit import Actor
from portal.models import Bank, StaffMembership
from portal.staff_forms import handle_staff_form

VIEW = (ADMIN, OPERATOR, AUDITOR)
CHANGE = (ADMIN, OPERATOR)
INBOX_LIMIT = 100


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Reply",
        max_length=services.TEXT_LIMIT,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Sent as you, with Messenger's HUMAN_AGENT tag.",
    )


class ConversationTextForm(forms.Form):
    locale = forms.RegexField(
        regex=r"^[a-z]{2,3}(?:_[A-Z]{2})?$",
        max_length=10,
        label="Language",
        help_text="A language code such as en, fr or de_CH.",
        error_messages={"invalid": "Use a language code such as en, fr or de_CH."},
    )
    body = forms.CharField(
        label="Next steps after “No, it wasn't me”",
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            "You can use {customer_first_name}, {amount}, {merchant}, {last4} and {currency}."
        ),
    )

    def clean_body(self):
        errors = services.conversation_text_errors(self.cleaned_data["body"])
        if errors:
            raise forms.ValidationError(errors)
        return self.cleaned_data["body"]


class AutomatedTextForm(ConversationTextForm):
    body = forms.CharField(
        label="Sentence saying the chat is automated",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Plain text, sent before the assistant's answer; write the bank's name out.",
    )

    def clean_body(self) -> str:
        body: str = self.cleaned_data["body"]
        errors = services.conversation_text_errors(body, ConversationText.Kind.AUTOMATED)
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


@bank_staff(view=VIEW, change=CHANGE)
def conversation_texts(request, bank):
    """The bank's next steps after a customer says a payment was not theirs, per language."""
    form = ConversationTextForm(request.POST or None, initial={"locale": bank.default_locale})
    if done := handle_staff_form(
        request,
        form,
        action=lambda data: services.conversation_text_save(
            actor=Actor.staff(request.user),
            bank=bank,
            kind=ConversationText.Kind.FRAUD_DENIED,
            locale=data["locale"],
            body=data["body"],
        ),
        success_message="Saved.",
        redirect_to=reverse("conversation:conversation_texts", kwargs={"bank": bank.slug}),
        refusals=ValueError,
    ):
        return done
    saved = list(
        ConversationText.objects.for_bank(bank).filter(kind=ConversationText.Kind.FRAUD_DENIED)
    )
    return render(
        request,
        "conversation/texts.html",
        {
            "bank": bank,
            "form": form,
            "saved": saved,
            "default_text": selectors.conversation_text_for(
                bank=bank, kind=ConversationText.Kind.FRAUD_DENIED, locale=bank.default_locale
            ),
        },
        status=400 if form.errors else 200,
    )


@bank_staff(view=VIEW, change=[ADMIN])  # type: ignore[untyped-decorator]
def automated_texts(request: HttpRequest, bank: Bank) -> HttpResponse:
    """The sentence saying the chat is automated (`Bank.disclose_automation`), per language."""
    kind = ConversationText.Kind.AUTOMATED
    form = AutomatedTextForm(request.POST or None, initial={"locale": bank.default_locale})
    if done := handle_staff_form(
        request,
        form,
        action=lambda data: services.conversation_text_save(
            actor=Actor.staff(request.user),
            bank=bank,
            kind=kind,
            locale=data["locale"],
            body=data["body"],
        ),
        success_message="Saved.",
        redirect_to=reverse("conversation:automated_texts", kwargs={"bank": bank.slug}),
        refusals=ValueError,
    ):
        return done
    return render(
        request,
        "conversation/automated_texts.html",
        {
            "bank": bank,
            "form": form,
            "saved": list(ConversationText.objects.for_bank(bank).filter(kind=kind)),
            "default_text": selectors.conversation_text_for(
                bank=bank, kind=kind, locale=bank.default_locale
            ),
        },
        status=400 if form.errors else 200,
    )
