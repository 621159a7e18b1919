"""The sandbox's browser pages: the chat view (Messenger as a customer sees it) and the
return leg of account linking."""

import re
from typing import Any
from urllib.parse import unquote, urlencode

from django.conf import settings
from django.contrib import messages as flash
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.csp import allow_form_action
from sandbox import services
from sandbox.models import Message, Page, Template, User

_PLACEHOLDER = re.compile(r"\{\{(\d+)\}\}")


def _utility_text(page: Page, template: dict) -> str:
    name = template.get("name", "")
    language = (template.get("language") or {}).get("code", "")
    params = []
    for component in template.get("components") or []:
        if isinstance(component, dict) and str(component.get("type", "")).lower() == "body":
            params = [
                str(p.get("text", ""))
                for p in component.get("parameters") or []
                if isinstance(p, dict)
            ]
    known = Template.objects.filter(page=page, name=name, language=language).first()
    if known is None:
        return " · ".join(params) or name

    def fill(match):
        index = int(match.group(1)) - 1
        return params[index] if 0 <= index < len(params) else match.group(0)

    return _PLACEHOLDER.sub(fill, known.body_text)


def bubble(message: Message) -> dict:
    """What Messenger would draw for one message: text, buttons, quick replies, receipt."""
    body = message.body or {}
    shown = {
        "message": message,
        "text": body.get("text", ""),
        "buttons": [],
        "quick_replies": [],
        "receipt": None,
        "label": "",
    }
    if message.tag == "HUMAN_AGENT":
        shown["label"] = "From a person at the bank"
    if "template" in body:
        shown["text"] = _utility_text(message.page, body["template"])
        shown["label"] = "Utility update"
    attachment = body.get("attachment") or {}
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    if isinstance(payload, dict):
        kind = payload.get("template_type")
        if kind == "button":
            shown["text"] = payload.get("text", "")
            shown["buttons"] = [b for b in payload.get("buttons") or [] if isinstance(b, dict)]
        elif kind == "receipt":
            shown["receipt"] = payload
        elif kind == "generic":
            elements = payload.get("elements") or [{}]
            shown["text"] = elements[0].get("title", "")
            shown["buttons"] = elements[0].get("buttons") or []
    shown["quick_replies"] = [q for q in body.get("quick_replies") or [] if isinstance(q, dict)]
    return shown


@require_GET
def index(request):
    pages = Page.objects.prefetch_related("users")
    return render(request, "sandbox/index.html", {"pages": pages})


@require_POST
def user_add(request, page_id):
    page = get_object_or_404(Page, page_id=page_id)
    try:
        user = services.user_create(page=page, name=request.POST.get("name", ""))
    except services.SandboxError as exc:
        flash.error(request, str(exc))
        return redirect("sandbox:index")
    return redirect("sandbox:chat", page_id=page.page_id, psid=user.psid)


def _user(page_id: str, psid: str) -> User:
    return get_object_or_404(User.objects.select_related("page"), page__page_id=page_id, psid=psid)


def _thread_context(user: User) -> dict:
    thread = list(user.messages.select_related("page"))
    bubbles = [bubble(m) for m in thread]
    last = bubbles[-1] if bubbles else None
    # Messenger shows quick replies only under the newest message, until one is tapped.
    quick_replies = last["quick_replies"] if last and last["message"].direction == "out" else []
    return {"user": user, "page": user.page, "bubbles": bubbles, "quick_replies": quick_replies}


@require_GET
def chat(request, page_id, psid):
    user = _user(page_id, psid)
    services.user_read(user=user)
    context = _thread_context(user)
    # Log In opens the bank's page, as Messenger does: the button's form is answered with a
    # redirect there. Buttons that arrive later come from this bankside (PUBLIC_BASE_URL).
    login_urls = [
        button.get("url", "")
        for shown in context["bubbles"]
        for button in shown["buttons"]
        if button.get("type") == "account_link"
    ]
    context["menu"] = _persistent_menu(user.page)
    response = render(request, "sandbox/chat.html", context)
    return allow_form_action(response, settings.PUBLIC_BASE_URL, *login_urls)


def _persistent_menu(page: Page) -> list[dict[str, Any]]:
    """The Page's persistent menu as Messenger draws it: the `default` locale's items (the
    sandbox's people have no locale of their own)."""
    menus = (page.messenger_profile or {}).get("persistent_menu") or []
    default = next((m for m in menus if isinstance(m, dict) and m.get("locale") == "default"), {})
    return [a for a in default.get("call_to_actions") or [] if isinstance(a, dict)]


@require_GET
def chat_thread(request, page_id, psid):
    """The thread alone, polled by the chat view so new messages appear without a reload."""
    user = _user(page_id, psid)
    services.user_read(user=user)
    return render(request, "sandbox/_thread.html", _thread_context(user))


@require_POST
def chat_send(request, page_id, psid):
    user = _user(page_id, psid)
    try:
        if request.POST.get("postback_payload"):
            services.user_postback(
                user=user,
                title=request.POST.get("title", ""),
                payload=request.POST["postback_payload"],
            )
        else:
            services.user_send(
                user=user,
                text=request.POST.get("text", ""),
                quick_reply_payload=request.POST.get("quick_reply_payload") or None,
            )
    except services.SandboxError as exc:
        flash.error(request, str(exc))
    return redirect("sandbox:chat", page_id=page_id, psid=psid)


@require_POST
def chat_login(request, page_id, psid):
    """The Log In button: open the bank's page with a fresh account_linking_token."""
    user = _user(page_id, psid)
    try:
        _, location = services.link_start(
            user=user,
            link_url=request.POST.get("url", ""),
            redirect_base=request.build_absolute_uri(reverse("sandbox:link-done")),
        )
    except services.SandboxError as exc:
        flash.error(request, str(exc))
        return redirect("sandbox:chat", page_id=page_id, psid=psid)
    return redirect(location)


@require_POST
def chat_logout(request, page_id, psid):
    services.user_logout(user=_user(page_id, psid))
    flash.info(request, "Logged out: the bank was told this account is unlinked.")
    return redirect("sandbox:chat", page_id=page_id, psid=psid)


M_ME = re.compile(
    r"^https?://(?:m\.me|[^/]+/sandbox/m\.me)/(?P<page>[^/?#]+)/?\?(?:[^#]*&)?ref=(?P<ref>[^&#]+)"
)


@require_http_methods(["GET", "POST"])
def m_me(request: HttpRequest, page_ref: str) -> HttpResponse:
    """An m.me link, as Messenger opens it: the sandbox asks who is opening it, then shows
    the thread. Someone who has written to the Page before comes back to their thread (the
    bank hears `messaging_referrals`); someone new taps Get Started (a postback carrying
    the referral)."""
    page = get_object_or_404(Page, page_id=page_ref)
    ref = request.GET.get("ref", "") or request.POST.get("ref", "")
    if request.method == "POST":
        try:
            if request.POST.get("psid"):
                user = _user(page.page_id, request.POST["psid"])
            else:
                user = services.user_create(page=page, name=request.POST.get("name", ""))
            services.user_open_link(user=user, ref=ref)
        except services.SandboxError as exc:
            flash.error(request, str(exc))
            return redirect(
                f"{reverse('sandbox:m-me', args=[page.page_id])}?{urlencode({'ref': ref})}"
            )
        return redirect("sandbox:chat", page_id=page.page_id, psid=user.psid)
    users = [
        {
            "user": user,
            "existing": user.messages.filter(direction=Message.Direction.INBOUND).exists(),
        }
        for user in page.users.all()
    ]
    return render(request, "sandbox/m_me.html", {"page": page, "ref": ref, "users": users})


@require_POST
def chat_open_link(request: HttpRequest, page_id: str, psid: str) -> HttpResponse:
    """Paste an m.me link into the chat and open it as this user."""
    user = _user(page_id, psid)
    found = M_ME.match(request.POST.get("url", "").strip())
    if found is None or found.group("page") not in {user.page.page_id, user.page.name}:
        flash.error(
            request, f"Paste an m.me link to this Page: https://m.me/{user.page.page_id}?ref=…"
        )
        return redirect("sandbox:chat", page_id=page_id, psid=psid)
    try:
        services.user_open_link(user=user, ref=unquote(found.group("ref")))
    except services.SandboxError as exc:
        flash.error(request, str(exc))
    return redirect("sandbox:chat", page_id=page_id, psid=psid)


@require_GET
def link_done(request):
    """Where the bank sends the browser back (`redirect_uri`), with or without a code."""
    code = request.GET.get("authorization_code") or None
    try:
        linking = services.link_finish(
            token=request.GET.get("account_linking_token", ""), authorization_code=code
        )
    except services.SandboxError as exc:
        return render(request, "sandbox/link_done.html", {"error": str(exc)}, status=400)
    return render(request, "sandbox/link_done.html", {"linking": linking, "linked": bool(code)})
