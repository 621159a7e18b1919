"""The sandbox's control API: set up Pages and users, inject faults, read what reached "Meta".

JSON in, JSON out, errors as `{"error": "…"}` with a 4xx status. Documented in the README.
"""

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

import httpx
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from sandbox import services, webhooks
from sandbox.graph import Faults, rate_limiter
from sandbox.models import DEFAULT_FIELDS, Call, Message, Page, User, WebhookDelivery


class BadRequest(Exception):
    pass


View = Callable[..., Any]


def control(*methods: str) -> Callable[[View], View]:
    def decorate(view: View) -> View:
        @csrf_exempt
        @require_http_methods(list(methods))
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                body = {}
                if request.method in {"POST", "PUT", "PATCH"} and request.body:
                    try:
                        body = json.loads(request.body)
                    except (ValueError, UnicodeDecodeError) as exc:
                        raise BadRequest("The body is not valid JSON.") from exc
                    if not isinstance(body, dict):
                        raise BadRequest("The body must be a JSON object.")
                result = view(request, body, *args, **kwargs)
            except (BadRequest, services.SandboxError, ValueError) as exc:
                return JsonResponse({"error": str(exc)}, status=400)
            if isinstance(result, tuple):
                payload, status = result
                return JsonResponse(payload, status=status, safe=False)
            return JsonResponse(result, safe=False)

        return wrapped

    return decorate


def _string(body: dict, name: str, *, required: bool = True, limit: int = 500) -> str:
    value = body.get(name, "")
    if value in ("", None):
        if required:
            raise BadRequest(f"'{name}' is required.")
        return ""
    if not isinstance(value, str) or len(value) > limit:
        raise BadRequest(f"'{name}' must be a string of at most {limit} characters.")
    return value


def page_json(page: Page) -> dict:
    return {
        "page_id": page.page_id,
        "name": page.name,
        "webhook_url": page.webhook_url,
        "app_id": page.app_id,
        "subscribed_fields": page.subscribed_fields,
        "rate_limit_per_second": page.rate_limit_per_second,
        "faults": Faults.parse(page.faults or {}).as_dict(),
        "webhook_failing_since": page.webhook_failing_since,
        "webhook_alerted_at": page.webhook_alerted_at,
        "webhook_disabled_at": page.webhook_disabled_at,
    }


def user_json(user: User) -> dict:
    return {
        "psid": user.psid,
        "name": user.name,
        "locale": user.locale,
        "linked": user.linked,
        "last_inbound_at": user.last_inbound_at,
        "typing": user.typing,
        "page_seen_at": user.page_seen_at,
    }


def message_json(message: Message) -> dict:
    return {
        "mid": message.mid,
        "direction": message.direction,
        "body": message.body,
        "messaging_type": message.messaging_type,
        "tag": message.tag,
        "created_at": message.created_at,
        "read_at": message.read_at,
    }


@control("GET", "POST")
def pages(request, body):
    if request.method == "GET":
        return {"pages": [page_json(p) for p in Page.objects.all()]}
    page_id = _string(body, "page_id", limit=32)
    if not page_id.isdigit():
        raise BadRequest("'page_id' must be all digits.")
    rate = body.get("rate_limit_per_second", 300)
    if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 100_000:
        raise BadRequest("'rate_limit_per_second' must be an integer from 1 to 100000.")
    fields = body.get("subscribed_fields", DEFAULT_FIELDS)
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise BadRequest("'subscribed_fields' must be a list of field names.")
    app_id = _string(body, "app_id", required=False, limit=32)
    if app_id and not app_id.isdigit():
        raise BadRequest("'app_id' must be all digits.")
    webhook_url = _string(body, "webhook_url", required=False)
    if webhook_url and not webhook_url.startswith(("http://", "https://")):
        raise BadRequest("'webhook_url' must be an http(s) URL.")
    values = {
        "name": _string(body, "name", limit=200),
        "access_token": _string(body, "access_token", limit=255),
        "app_secret": _string(body, "app_secret", limit=255),
        "webhook_url": webhook_url,
        "verify_token": _string(body, "verify_token", required=False, limit=255),
        "subscribed_fields": fields,
        "rate_limit_per_second": rate,
        "webhook_disabled_at": None,
        "webhook_failing_since": None,
        "webhook_alerted_at": None,
    }
    if app_id:
        values["app_id"] = app_id
    if Page.objects.exclude(page_id=page_id).filter(access_token=values["access_token"]).exists():
        raise BadRequest("That access_token already belongs to another Page.")
    page, created = Page.objects.update_or_create(page_id=page_id, defaults=values)
    rate_limiter.reset(page.page_id)
    return page_json(page), 201 if created else 200


@control("POST")
def page_verify_webhook(request, body, page_id):
    """Meta's subscription handshake: GET the webhook with hub.* and expect the challenge."""
    page = get_object_or_404(Page, page_id=page_id)
    if not page.webhook_url:
        raise BadRequest("The Page has no webhook_url.")
    challenge = "sandbox-challenge-1158201444"
    try:
        response = httpx.get(
            page.webhook_url,
            params={
                "hub.mode": "subscribe",
                "hub.verify_token": page.verify_token,
                "hub.challenge": challenge,
            },
            timeout=webhooks.RESPONSE_DEADLINE_SECONDS,
        )
    except httpx.HTTPError as exc:
        return {"verified": False, "detail": f"{type(exc).__name__}: {exc}"}
    verified = response.status_code == 200 and response.text == challenge
    return {"verified": verified, "status": response.status_code}


@control("GET", "PUT", "DELETE")
def page_faults(request, body, page_id):
    page = get_object_or_404(Page, page_id=page_id)
    if request.method == "PUT":
        page.faults = Faults.parse(body).as_dict()
    elif request.method == "DELETE":
        page.faults = {}
    page.save(update_fields=["faults"])
    return Faults.parse(page.faults).as_dict()


@control("GET", "POST")
def page_users(request, body, page_id):
    page = get_object_or_404(Page, page_id=page_id)
    if request.method == "GET":
        return {"users": [user_json(u) for u in page.users.all()]}
    locale = _string(body, "locale", required=False, limit=10) or "en_GB"
    user = services.user_create(page=page, name=_string(body, "name", limit=100), locale=locale)
    return user_json(user), 201


def _user(page_id: str, psid: str) -> User:
    return get_object_or_404(User.objects.select_related("page"), page__page_id=page_id, psid=psid)


@control("GET")
def user_thread(request, body, page_id, psid):
    user = _user(page_id, psid)
    return {"user": user_json(user), "messages": [message_json(m) for m in user.messages.all()]}


@control("POST")
def user_messages(request, body, page_id, psid):
    user = _user(page_id, psid)
    payload = body.get("quick_reply_payload")
    message = services.user_send(
        user=user, text=_string(body, "text", limit=2000), quick_reply_payload=payload
    )
    return message_json(message), 201


@control("POST")
def user_postbacks(request, body, page_id, psid):
    user = _user(page_id, psid)
    message = services.user_postback(
        user=user, title=_string(body, "title", limit=640), payload=_string(body, "payload")
    )
    return message_json(message), 201


# The control decorator has no types; the baseline of mypy's errors only shrinks.
@control("POST")
def user_referrals(
    request: HttpRequest, body: dict[str, Any], page_id: str, psid: str
) -> tuple[dict[str, Any], int]:
    """Open an m.me link with a `ref`: a referral into an existing thread, or Get Started."""
    message = services.user_open_link(
        user=_user(page_id, psid), ref=_string(body, "ref", limit=250)
    )
    return message_json(message), 201


@control("POST")
def user_page_inbox(
    request: HttpRequest, body: dict[str, Any], page_id: str, psid: str
) -> tuple[dict[str, Any], int]:
    """Someone at the bank answers the user from Meta's Page inbox, not through bankside:
    the bank receives the message's echo, from the Page Inbox app."""
    user = _user(page_id, psid)
    message = services.page_inbox_send(user=user, text=_string(body, "text", limit=2000))
    return message_json(message), 201


@control("POST")
def user_read(request, body, page_id, psid):
    return {"read": services.user_read(user=_user(page_id, psid))}


@control("POST")
def user_logout(request, body, page_id, psid):
    services.user_logout(user=_user(page_id, psid))
    return {"status": "unlinked"}


@control("POST")
def user_link(request, body, page_id, psid):
    """Tap Log In: answers the bank URL the browser would open (follow it to link)."""
    user = _user(page_id, psid)
    redirect_base = request.build_absolute_uri(reverse("sandbox:link-done"))
    token, location = services.link_start(
        user=user, link_url=_string(body, "url", limit=1000), redirect_base=redirect_base
    )
    return {"location": location, "account_linking_token": token.token}


@control("POST")
def user_age(request, body, page_id, psid):
    """Move the user's last message back in time, to test the 24-hour and 7-day windows."""
    user = _user(page_id, psid)
    hours = body.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int | float) or not 0 < hours <= 24 * 60:
        raise BadRequest("'hours' must be a number above 0 and at most 1440.")
    if user.last_inbound_at is None:
        raise BadRequest("The user has not written yet: there is no window to age.")
    from datetime import timedelta

    user.last_inbound_at -= timedelta(hours=hours)
    user.save(update_fields=["last_inbound_at"])
    return user_json(user)


@control("GET", "DELETE")
def calls(request, body):
    """Every Graph API call received, oldest first; `?page_id=` and `?after=<id>` filter."""
    if request.method == "DELETE":
        deleted, _ = Call.objects.all().delete()
        rate_limiter.reset()
        return {"deleted": deleted}
    found = Call.objects.all()
    if request.GET.get("page_id"):
        found = found.filter(page_id=request.GET["page_id"])
    after = request.GET.get("after", "")
    if after:
        if not after.isdigit():
            raise BadRequest("'after' must be a call id.")
        found = found.filter(pk__gt=int(after))
    return {
        "calls": [
            {
                "id": c.id,
                "page_id": c.page_id,
                "method": c.method,
                "path": c.path,
                "query": c.query,
                "body": c.body,
                "status": c.status,
                "response": c.response,
                "error_code": c.error_code,
                "error_subcode": c.error_subcode,
                "created_at": c.created_at,
            }
            for c in found[:1000]
        ]
    }


@control("GET", "POST")
def webhook_deliveries(request, body):
    """The webhooks sent to the bank and their outcome; POST delivers what is due now."""
    if request.method == "POST":
        return {"attempted": webhooks.deliver_due()}
    found = WebhookDelivery.objects.select_related("page")
    if request.GET.get("page_id"):
        found = found.filter(page__page_id=request.GET["page_id"])
    return {
        "deliveries": [
            {
                "id": d.id,
                "page_id": d.page.page_id,
                "field": d.field,
                "body": json.loads(d.body),
                "status": d.status,
                "attempts": d.attempts,
                "last_status_code": d.last_status_code,
                "last_error": d.last_error,
                "created_at": d.created_at,
                "delivered_at": d.delivered_at,
            }
            for d in found.order_by("-id")[:500]
        ]
    }
