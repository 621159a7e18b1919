"""The Graph API endpoints bankside calls, answering as Meta does (messenger-platform.md).

Every request is checked as Meta checks it (access token, then `appsecret_proof`), goes
through the Page's injected faults and its rate limit, and is recorded as a `Call`.
"""

import hashlib
import hmac
import json
import random
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from sandbox import webhooks
from sandbox.models import Call, LinkingToken, Message, Page, Template, User

RESPONSE_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
RETIRED_2026_TAGS = {"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE"}
RETIRED_2020_TAGS = {
    "BUSINESS_PRODUCTIVITY",
    "COMMUNITY_ALERT",
    "GAME_EVENT",
    "ISSUE_RESOLUTION",
    "PAIRING_UPDATE",
    "PAYMENT_UPDATE",
    "PERSONAL_FINANCE_UPDATE",
    "RESERVATION_UPDATE",
    "SHIPPING_UPDATE",
    "TICKET_UPDATE",
    "TRANSPORTATION_UPDATE",
    "APPLICATION_UPDATE",
    "APPOINTMENT_UPDATE",
    "FEATURE_FUNCTIONALITY_UPDATE",
}
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG", "UTILITY"}
SENDER_ACTIONS = {"typing_on", "typing_off", "mark_seen"}
TEMPLATE_REVIEW = timedelta(seconds=1)
TYPING_SHOWN = timedelta(seconds=20)
MARKETING_WORDS = ("sale", "discount", "% off", "offer", "promo", "coupon", "buy now")


class GraphError(Exception):
    """An error answered in Meta's shape: `{"error": {message, type, code, …}}`."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        subcode: int | None = None,
        status: int = 400,
        error_type: str = "OAuthException",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code, self.subcode, self.status = code, subcode, status
        self.error_type, self.headers = error_type, headers or {}

    def body(self) -> dict:
        error = {
            "message": self.args[0],
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": secrets.token_urlsafe(8),
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return {"error": error}


def bad_parameter(message: str, subcode=None) -> GraphError:
    return GraphError(100, f"(#100) {message}", subcode=subcode)


class RateLimiter:
    """Calls per Page in the last second, shared by every thread of this process."""

    def __init__(self) -> None:
        self._calls: dict[str, deque] = {}
        self._lock = threading.Lock()

    def allow(self, page_id: str, limit: int) -> tuple[bool, int]:
        now = time.monotonic()
        with self._lock:
            window = self._calls.setdefault(page_id, deque())
            while window and now - window[0] >= 1.0:
                window.popleft()
            if len(window) >= limit:
                return False, len(window)
            window.append(now)
            return True, len(window)

    def reset(self, page_id: str | None = None) -> None:
        with self._lock:
            if page_id is None:
                self._calls.clear()
            else:
                self._calls.pop(page_id, None)


rate_limiter = RateLimiter()


def usage_header(page: Page, *, percent: int, regain_minutes: int) -> dict[str, str]:
    usage = {
        page.page_id: [
            {
                "type": "messenger",
                "call_count": percent,
                "total_cputime": min(percent, 100),
                "total_time": min(percent, 100),
                "estimated_time_to_regain_access": regain_minutes,
            }
        ]
    }
    return {"X-Business-Use-Case-Usage": json.dumps(usage)}


@dataclass
class Faults:
    """What a Page's `faults` setting asks the sandbox to do to its calls."""

    error_rate: float = 0.0
    latency_ms: int = 0
    timeout_rate: float = 0.0
    timeout_seconds: float = 31.0
    throttle: bool = False
    throttle_minutes: int = 1
    seed: int | None = None
    # The app lacks profile access (Meta's "Business Asset User Profile Access" feature):
    # the User Profile API refuses every person.
    profile_denied: bool = False
    echo_drop_rate: float = 0.0  # share of sent messages whose echo never comes
    echo_delay_seconds: float = 0.0  # how late the echoes that do come arrive

    FIELDS = (
        "error_rate",
        "latency_ms",
        "timeout_rate",
        "timeout_seconds",
        "throttle",
        "throttle_minutes",
        "seed",
        "profile_denied",
        "echo_drop_rate",
        "echo_delay_seconds",
    )

    @classmethod
    def parse(cls, raw: dict) -> "Faults":
        """Validate a faults document; raises ValueError naming the bad field."""
        if not isinstance(raw, dict):
            raise ValueError("faults must be a JSON object")
        unknown = set(raw) - set(cls.FIELDS)
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        faults = cls()
        for name in ("error_rate", "timeout_rate", "echo_drop_rate"):
            if name in raw:
                value = raw[name]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not (0 <= value <= 1)
                ):
                    raise ValueError(f"{name} must be a number from 0 to 1")
                setattr(faults, name, float(value))
        for name, upper in (
            ("latency_ms", 60_000),
            ("timeout_seconds", 120),
            ("throttle_minutes", 1440),
            ("echo_delay_seconds", 600),
        ):
            if name in raw:
                value = raw[name]
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not (0 <= value <= upper)
                ):
                    raise ValueError(f"{name} must be a number from 0 to {upper}")
                setattr(faults, name, value)
        for name in ("throttle", "profile_denied"):
            if name in raw:
                if not isinstance(raw[name], bool):
                    raise ValueError(f"{name} must be true or false")
                setattr(faults, name, raw[name])
        if "seed" in raw:
            if raw["seed"] is not None and (
                isinstance(raw["seed"], bool) or not isinstance(raw["seed"], int)
            ):
                raise ValueError("seed must be an integer or null")
            faults.seed = raw["seed"]
        return faults

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.FIELDS}


_random_by_page: dict[str, random.Random] = {}
_random_lock = threading.Lock()


def _page_random(page: Page, faults: Faults) -> random.Random:
    key = f"{page.page_id}:{faults.seed}"
    with _random_lock:
        if key not in _random_by_page:
            _random_by_page[key] = random.Random(faults.seed)  # noqa: S311 - not for secrets
        return _random_by_page[key]


def apply_faults(page: Page) -> None:
    """Sleep, time out, fail or throttle as the Page's fault settings ask."""
    faults = Faults.parse(page.faults or {})
    rng = _page_random(page, faults)
    with _random_lock:
        roll_timeout, roll_error, roll_kind = rng.random(), rng.random(), rng.random()
    if faults.latency_ms:
        time.sleep(faults.latency_ms / 1000)
    if faults.timeout_rate and roll_timeout < faults.timeout_rate:
        time.sleep(faults.timeout_seconds)
        raise GraphError(
            2, "An unexpected error has occurred. Please retry your request later.", status=504
        )
    if faults.error_rate and roll_error < faults.error_rate:
        if roll_kind < 0.5:
            raise GraphError(
                2, "An unexpected error has occurred. Please retry your request later.", status=500
            )
        raise GraphError(1, "An unknown error occurred", status=500)
    if faults.throttle:
        raise GraphError(
            613,
            "(#613) Calls to this api have exceeded the rate limit.",
            headers=usage_header(page, percent=100, regain_minutes=faults.throttle_minutes),
        )


# From v27.0, new apps cannot use these (messenger-platform.md §0); bankside is a new app.
V27_REMOVED_PARAMS = {
    "ids": "multi-ID requests",
    "batch": "batch requests",
    "method": "HTTP method override",
    "callback": "JSONP",
}


def _version_number(version: str) -> float:
    try:
        return float(version.removeprefix("v"))
    except ValueError:
        return 0.0


def refuse_removed_features(request: HttpRequest, version: str) -> None:
    """Refuse, from v27.0, what Meta removed for new apps: multi-ID and batch requests,
    field aliases, HTTP method override and JSONP (the error's exact shape is the sandbox's)."""
    if _version_number(version) < 27:
        return
    for param, feature in V27_REMOVED_PARAMS.items():
        if param in request.GET or param in request.POST:
            raise bad_parameter(f"{feature} are not available to new apps from v27.0")
    if request.headers.get("X-HTTP-Method-Override"):
        raise bad_parameter("HTTP method override is not available to new apps from v27.0")
    if ".as(" in request.GET.get("fields", ""):
        raise bad_parameter("field aliases are not available to new apps from v27.0")


def authenticate(request: HttpRequest) -> Page:
    """The Page behind the access token, with `appsecret_proof` checked as Meta checks it.

    The token comes as `Authorization: Bearer <token>` or as the `access_token`
    parameter: the Graph API takes both, and the header wins when both are sent.
    """
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        token = bearer.strip()
    else:
        token = request.GET.get("access_token", "")
    if not token:
        raise GraphError(
            2500, "An active access token must be used to query information about the current user."
        )
    page = Page.objects.filter(access_token=token).first()
    if page is None:
        raise GraphError(190, "Invalid OAuth access token - Cannot parse access token")
    proof = request.GET.get("appsecret_proof", "")
    if not proof:
        raise GraphError(
            100,
            "API calls from the server require an appsecret_proof argument",
            error_type="GraphMethodException",
        )
    expected = hmac.new(page.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(proof, expected):
        raise GraphError(
            100,
            "Invalid appsecret_proof provided in the API argument",
            error_type="GraphMethodException",
        )
    return page


def request_body(request: HttpRequest) -> dict:
    """A JSON body, or form fields whose values may themselves be JSON (Meta takes both)."""
    if request.content_type == "application/json":
        try:
            body = json.loads(request.body or b"{}")
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_parameter("Request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise bad_parameter("Request body must be a JSON object")
        return body
    body = {}
    for key, value in request.POST.items():
        try:
            body[key] = json.loads(value)
        except ValueError:
            body[key] = value
    return body


def graph_view(handler):
    """Wrap a handler: authenticate, fault-inject, rate-limit, answer errors, record the call."""

    @csrf_exempt
    def view(request, version, *args, **kwargs):
        started_page_id, body, status, payload, headers = "", None, 200, {}, {}
        try:
            if request.method == "POST":
                body = request_body(request)
            page = authenticate(request)
            started_page_id = page.page_id
            refuse_removed_features(request, version)
            apply_faults(page)
            allowed, count = rate_limiter.allow(page.page_id, page.rate_limit_per_second)
            if not allowed:
                raise GraphError(
                    613,
                    "(#613) Calls to this api have exceeded the rate limit.",
                    subcode=2534040,
                    headers=usage_header(
                        page,
                        percent=int(100 * count / page.rate_limit_per_second) + 1,
                        regain_minutes=0,
                    ),
                )
            payload = handler(request, page, body, *args, **kwargs)
        except GraphError as error:
            status, payload, headers = error.status, error.body(), error.headers
        response = JsonResponse(payload, status=status)
        for name, value in headers.items():
            response[name] = value
        query = {k: ("…" if k == "access_token" else v) for k, v in request.GET.items()}
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        Call.objects.create(
            page_id=started_page_id,
            method=request.method,
            path=f"/{version}/" + request.path.split(f"/{version}/", 1)[-1],
            query=query,
            body=body,
            status=status,
            response=payload,
            error_code=error.get("code"),
            error_subcode=error.get("error_subcode"),
        )
        return response

    return view


def _recipient(page: Page, body: dict) -> User:
    recipient = body.get("recipient")
    if not isinstance(recipient, dict) or not isinstance(recipient.get("id"), str | int):
        raise bad_parameter("param recipient must be an object with an id")
    user = User.objects.filter(page=page, psid=str(recipient["id"])).first()
    if user is None:
        raise GraphError(551, "This person isn't available right now.", subcode=1545041)
    return user


def _check_message(message) -> None:
    if not isinstance(message, dict):
        raise bad_parameter("param message must be an object")
    text, attachment = message.get("text"), message.get("attachment")
    if (text is None) == (attachment is None):
        raise bad_parameter("param message must have exactly one of text or attachment")
    if text is not None and (not isinstance(text, str) or not text or len(text) > 2000):
        raise bad_parameter("param message[text] must be a UTF-8 string of 1 to 2000 characters")
    if attachment is not None:
        payload = attachment.get("payload") if isinstance(attachment, dict) else None
        if not isinstance(payload, dict):
            raise bad_parameter("param message[attachment][payload] must be an object")
        if payload.get("template_type") == "button":
            buttons = payload.get("buttons")
            if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
                raise bad_parameter("button template needs 1 to 3 buttons")
            if len(payload.get("text", "")) > 640:
                raise bad_parameter("button template text must be at most 640 characters")
    quick_replies = message.get("quick_replies")
    if quick_replies is not None and (
        not isinstance(quick_replies, list) or len(quick_replies) > 13
    ):
        raise bad_parameter("param message[quick_replies] must be a list of at most 13")
    metadata = message.get("metadata")
    if metadata is not None and len(str(metadata)) >= 1000:
        raise bad_parameter("param message[metadata] must be under 1000 characters")


def _check_allowed_now(page: Page, user: User, body: dict) -> None:
    messaging_type = body.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise bad_parameter(
            "param messaging_type must be one of {RESPONSE, UPDATE, MESSAGE_TAG, UTILITY}"
        )
    if messaging_type in {"RESPONSE", "UPDATE"}:
        if not user.within(RESPONSE_WINDOW):
            raise GraphError(
                10,
                "(#10) This message is sent outside of allowed window.",
                subcode=2018278,
            )
        return
    if messaging_type == "MESSAGE_TAG":
        tag = body.get("tag")
        if tag in RETIRED_2026_TAGS or tag in RETIRED_2020_TAGS:
            raise bad_parameter(f"The tag {tag} is deprecated and can no longer be used.")
        if tag != "HUMAN_AGENT":
            raise bad_parameter("param tag must be HUMAN_AGENT")
        if not user.within(HUMAN_AGENT_WINDOW):
            raise GraphError(
                10,
                "(#10) This message is sent outside of allowed window.",
                subcode=2018278,
            )
        return
    template = (body.get("message") or {}).get("template")
    if not isinstance(template, dict) or not isinstance(template.get("name"), str):
        raise bad_parameter("UTILITY messages must carry message[template] with a name")
    language = (template.get("language") or {}).get("code", "")
    found = Template.objects.filter(page=page, name=template["name"], language=language).first()
    if found is None or _template_status(found) != Template.Status.APPROVED:
        raise bad_parameter(
            f"Template {template['name']!r} ({language}) does not exist or is not approved",
            subcode=2018001,
        )


@graph_view
def messages(request, page, body, page_ref):
    if request.method != "POST":
        raise bad_parameter("Unsupported get request.")
    if page_ref not in {"me", page.page_id}:
        raise bad_parameter(
            f"Unsupported post request. Object with ID '{page_ref}' does not "
            "exist or cannot be used by this token."
        )
    user = _recipient(page, body)
    if "sender_action" in body:
        action = body["sender_action"]
        if action not in SENDER_ACTIONS:
            raise bad_parameter("param sender_action must be typing_on, typing_off or mark_seen")
        if action == "mark_seen":
            User.objects.filter(pk=user.pk).update(page_seen_at=timezone.now())
        else:  # Messenger hides the indicator after about 20 seconds, or at the next message
            until = timezone.now() + TYPING_SHOWN if action == "typing_on" else None
            User.objects.filter(pk=user.pk).update(typing_until=until)
        return {"recipient_id": user.psid}
    message = body.get("message")
    if message is not None and "template" in message:
        if not isinstance(message["template"], dict):
            raise bad_parameter("param message[template] must be an object")
    else:
        _check_message(message)
    _check_allowed_now(page, user, body)
    User.objects.filter(pk=user.pk).update(typing_until=None)
    sent = Message.objects.create(
        page=page,
        user=user,
        direction=Message.Direction.OUTBOUND,
        body=message,
        messaging_type=body["messaging_type"],
        tag=body.get("tag", ""),
    )
    _echo(page, user, message, sent.mid)
    webhooks.enqueue_messaging(
        page,
        "message_deliveries",
        user.psid,
        delivery={"mids": [sent.mid], "watermark": webhooks.now_ms()},
    )
    return {"recipient_id": user.psid, "message_id": sent.mid}


def _echo(page: Page, user: User, message: dict[str, Any], mid: str) -> None:
    """Echo the message to the bank as Meta does, unless the Page's faults drop this one
    (`echo_drop_rate`) or hold it back (`echo_delay_seconds`)."""
    faults = Faults.parse(page.faults or {})
    if faults.echo_drop_rate:
        rng = _page_random(page, faults)
        with _random_lock:
            dropped = rng.random() < faults.echo_drop_rate
        if dropped:
            return
    webhooks.enqueue_echo(
        page,
        user.psid,
        message,
        mid=mid,
        app_id=page.app_id,
        delay_seconds=faults.echo_delay_seconds,
    )


@graph_view
def me(request, page, body):
    token = request.GET.get("account_linking_token")
    if token is None:
        return {"id": page.page_id, "name": page.name}
    linking = LinkingToken.objects.select_related("user").filter(token=token, page=page).first()
    if linking is None or linking.expired:
        raise GraphError(10303, "Invalid account_linking_token")
    return {"recipient": linking.user.psid, "id": page.page_id}


@graph_view
def unlink_accounts(request, page, body):
    if request.method != "POST":
        raise bad_parameter("Unsupported get request.")
    psid = body.get("psid")
    if not isinstance(psid, str | int) or not str(psid):
        raise bad_parameter("param psid must be a non-empty string")
    user = User.objects.filter(page=page, psid=str(psid)).first()
    if user is None:
        raise GraphError(551, "This person isn't available right now.", subcode=1545041)
    if user.linked:
        User.objects.filter(pk=user.pk).update(linked=False)
        webhooks.enqueue_messaging(
            page, "messaging_account_linking", user.psid, account_linking={"status": "unlinked"}
        )
    return {"result": "unlink account success"}


PROFILE_PROPERTIES = (
    "get_started",
    "greeting",
    "ice_breakers",
    "persistent_menu",
    "whitelisted_domains",
    "account_linking_url",
)
MENU_TITLE_MAX = 30
MENU_ITEMS_MAX = 20
MENU_LOCALE = re.compile(r"^(default|[a-z]{2}_[A-Z]{2})$")


def _check_persistent_menu(menus: object) -> None:
    """The checks Meta makes of `persistent_menu`: a list of menus, one `default`, each with
    1 to 20 postback or web_url buttons whose titles have at most 30 characters."""
    if not isinstance(menus, list) or not menus:
        raise bad_parameter("param persistent_menu must be a non-empty array")
    locales = []
    for index, menu in enumerate(menus):
        if not isinstance(menu, dict):
            raise bad_parameter(f"param persistent_menu[{index}] must be an object")
        locale = menu.get("locale")
        if not isinstance(locale, str) or not MENU_LOCALE.match(locale):
            raise bad_parameter(f"param persistent_menu[{index}][locale] is not a valid locale")
        locales.append(locale)
        actions = menu.get("call_to_actions")
        if menu.get("composer_input_disabled") and not actions:
            continue
        if not isinstance(actions, list) or not 1 <= len(actions) <= MENU_ITEMS_MAX:
            raise bad_parameter(
                f"param persistent_menu[{index}][call_to_actions] must have 1 to 20 items"
            )
        for n, action in enumerate(actions):
            where = f"persistent_menu[{index}][call_to_actions][{n}]"
            if not isinstance(action, dict) or action.get("type") not in {"postback", "web_url"}:
                raise bad_parameter(f"param {where}[type] must be one of {{postback, web_url}}")
            title = action.get("title")
            if not isinstance(title, str) or not title or len(title) > MENU_TITLE_MAX:
                raise bad_parameter(f"param {where}[title] must be 1 to 30 characters")
            if action["type"] == "postback":
                payload = action.get("payload")
                if not isinstance(payload, str) or not payload or len(payload) > 1000:
                    raise bad_parameter(f"param {where}[payload] must be 1 to 1000 characters")
            elif not isinstance(action.get("url"), str) or not action["url"].startswith(
                ("https://", "http://")
            ):
                raise bad_parameter(f"param {where}[url] must be a URL")
    if "default" not in locales:
        raise bad_parameter("persistent_menu must have a menu for the 'default' locale")
    if len(set(locales)) != len(locales):
        raise bad_parameter("persistent_menu has two menus for one locale")


@graph_view  # type: ignore[untyped-decorator]
def messenger_profile(
    request: HttpRequest, page: Page, body: dict[str, Any] | None
) -> dict[str, Any]:
    """The Messenger Profile API (`/me/messenger_profile`): a POST sets the properties it
    names (each replacing the one before), a GET with `fields` reads them, a DELETE with
    `fields` removes them. As Meta does, a persistent menu needs a Get Started button."""
    profile = dict(page.messenger_profile or {})
    if request.method == "GET":
        names = [f for f in request.GET.get("fields", "").split(",") if f]
        if not names:
            raise bad_parameter("The parameter fields is required.")
        found = {name: profile[name] for name in names if name in profile}
        return {"data": [found] if found else []}
    body = body or {}
    if request.method == "DELETE":
        names = body.get("fields") or request.GET.get("fields", "").split(",")
        if not isinstance(names, list) or not any(names):
            raise bad_parameter("The parameter fields is required.")
        if (
            "get_started" in names
            and "persistent_menu" in profile
            and ("persistent_menu" not in names)
        ):
            raise bad_parameter("You must delete the persistent menu before Get Started.")
        for name in names:
            profile.pop(name, None)
    elif request.method == "POST":
        given = {k: v for k, v in body.items() if k in PROFILE_PROPERTIES}
        unknown = [k for k in body if k not in PROFILE_PROPERTIES]
        if unknown:
            raise bad_parameter(f"Unknown profile property {unknown[0]!r}")
        if not given:
            raise bad_parameter("At least one profile property must be set.")
        if "get_started" in given:
            started = given["get_started"]
            if not isinstance(started, dict) or not isinstance(started.get("payload"), str):
                raise bad_parameter("param get_started must be an object with a payload")
        if "persistent_menu" in given:
            _check_persistent_menu(given["persistent_menu"])
            if "get_started" not in given and "get_started" not in profile:
                raise bad_parameter(
                    "You must set a Get Started button if you also wish to use persistent menu."
                )
        profile.update(given)
    else:
        raise bad_parameter(f"Unsupported {(request.method or '').lower()} request.")
    page.messenger_profile = profile
    page.save(update_fields=["messenger_profile"])
    return {"result": "success"}


def _template_status(template: Template) -> str:
    """Review finishes a second after creation: approved, or rejected for marketing words."""
    if template.status == Template.Status.PENDING and timezone.now() >= template.review_due_at:
        lowered = template.body_text.lower()
        marketing = next((word for word in MARKETING_WORDS if word in lowered), None)
        template.status = Template.Status.REJECTED if marketing else Template.Status.APPROVED
        template.rejected_reason = "PROMOTIONAL" if marketing else ""
        template.save(update_fields=["status", "rejected_reason"])
        webhooks.enqueue(
            template.page,
            webhooks.TEMPLATE_STATUS_FIELD,
            {
                "object": "page",
                "entry": [
                    {
                        "id": template.page.page_id,
                        "time": int(time.time()),
                        "changes": [
                            {
                                "field": webhooks.TEMPLATE_STATUS_FIELD,
                                "value": {
                                    "event": template.status,
                                    "message_template_id": template.template_id,
                                    "message_template_name": template.name,
                                    "message_template_language": template.language,
                                    "reason": template.rejected_reason or None,
                                },
                            }
                        ],
                    }
                ],
            },
        )
    return template.status


def _template_json(template: Template) -> dict:
    return {
        "id": template.template_id,
        "name": template.name,
        "language": template.language,
        "category": template.category,
        "status": _template_status(template),
        "rejected_reason": template.rejected_reason or "NONE",
    }


@graph_view
def message_templates(request, page, body, page_ref):
    if page_ref != page.page_id:
        raise bad_parameter(f"Object with ID '{page_ref}' does not exist or cannot be used.")
    if request.method == "GET":
        found = Template.objects.filter(page=page).select_related("page").order_by("id")
        if request.GET.get("name"):
            found = found.filter(name=request.GET["name"])
        return {"data": [_template_json(t) for t in found]}
    name, language, category = body.get("name"), body.get("language"), body.get("category")
    if not isinstance(name, str) or not name or len(name) > 512:
        raise bad_parameter("param name is required")
    if not isinstance(language, str) or not language:
        raise bad_parameter("param language is required")
    if category != "UTILITY":
        raise bad_parameter("param category must be UTILITY for Messenger utility messages")
    components = body.get("components")
    body_component = (
        next((c for c in components if isinstance(c, dict) and c.get("type") == "BODY"), None)
        if isinstance(components, list)
        else None
    )
    if body_component is None or not isinstance(body_component.get("text"), str):
        raise bad_parameter("param components must include a BODY component with text")
    if Template.objects.filter(page=page, name=name, language=language).exists():
        raise bad_parameter(f"Template {name} already exists in {language}", subcode=2388024)
    template = Template.objects.create(
        page=page,
        template_id=str(secrets.randbelow(9 * 10**14) + 10**14),
        name=name,
        language=language,
        category=category,
        body_text=body_component["text"],
        review_due_at=timezone.now() + TEMPLATE_REVIEW,
    )
    return {"id": template.template_id, "status": template.status, "category": category}


# The Page webhook fields Meta takes in `subscribed_fields` (messaging ones, and the
# Page's own that a bank might try); anything else is refused the way Meta refuses it.
PAGE_WEBHOOK_FIELDS = (
    "messages",
    "messaging_postbacks",
    "messaging_optins",
    "messaging_referrals",
    "messaging_handovers",
    "messaging_policy_enforcement",
    "messaging_account_linking",
    "messaging_game_plays",
    "messaging_customer_information",
    "messaging_feedback",
    "messaging_in_thread_lead_form_submit",
    "message_deliveries",
    "message_reads",
    "message_echoes",
    "message_reactions",
    "message_edits",
    "message_template_status_update",
    "standby",
    "inbox_labels",
    "response_feedback",
    "feed",
    "mention",
    "name",
    "picture",
    "category",
    "description",
    "conversations",
    "ratings",
    "leadgen",
)


def _subscribed_fields(request: HttpRequest, body: dict[str, object]) -> list[str]:
    raw: object = request.GET.get("subscribed_fields")
    if raw is None:
        raw = body.get("subscribed_fields", "")
    names = raw if isinstance(raw, list) else str(raw).split(",")
    fields = [str(name).strip() for name in names]
    if not any(fields):
        raise bad_parameter("The parameter subscribed_fields is required.")
    for index, name in enumerate(fields):
        if name not in PAGE_WEBHOOK_FIELDS:
            raise bad_parameter(
                f"Param subscribed_fields[{index}] must be one of "
                f'{{{", ".join(PAGE_WEBHOOK_FIELDS)}}} - got "{name}"'
            )
    return list(dict.fromkeys(fields))


@graph_view
def subscribed_apps(request, page, body, page_ref):
    """The app's webhook subscription on the Page, as Meta keeps it: a POST sets the fields
    (the list given replaces the one before), a GET lists the apps subscribed (none once
    the app is unsubscribed), a DELETE unsubscribes the app."""
    if page_ref != page.page_id:
        raise bad_parameter(f"Object with ID '{page_ref}' does not exist or cannot be used.")
    if request.method == "GET":
        if not page.subscribed_fields or page.webhook_disabled_at:
            return {"data": []}
        return {
            "data": [
                {
                    "category": "Business",
                    "link": "https://bank.example/",
                    "name": "bankside",
                    "id": page.app_id,
                    "subscribed_fields": page.subscribed_fields,
                }
            ]
        }
    if request.method == "DELETE":
        page.subscribed_fields = []
        page.save(update_fields=["subscribed_fields"])
        return {"success": True}
    page.subscribed_fields = _subscribed_fields(request, body or {})
    page.webhook_disabled_at = None
    page.webhook_failing_since = None
    page.webhook_alerted_at = None
    page.save(
        update_fields=[
            "subscribed_fields",
            "webhook_disabled_at",
            "webhook_failing_since",
            "webhook_alerted_at",
        ]
    )
    return {"success": True}


PROFILE_FIELDS = {"id", "first_name", "last_name", "name", "profile_pic", "locale"}


def _user_profile(page: Page, user: User, fields: str) -> dict[str, str]:
    """The User Profile API: the person's name, once they opened the conversation (wrote,
    tapped Get Started or a button) and only if the app has profile access."""
    if Faults.parse(page.faults or {}).profile_denied:
        raise GraphError(
            200,
            "(#200) This app does not have permission to access this user's profile "
            "(Business Asset User Profile Access)",
        )
    if user.last_inbound_at is None:
        raise bad_parameter(
            f"Unsupported get request. Object with ID '{user.psid}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation",
            subcode=33,
        )
    asked = [f.strip() for f in fields.split(",") if f.strip()]
    unknown = [f for f in asked if f not in PROFILE_FIELDS]
    if unknown:
        raise bad_parameter(f"(#100) Tried accessing nonexisting field ({unknown[0]})")
    first, _, last = user.name.strip().partition(" ")
    known = {
        "id": user.psid,
        "first_name": first,
        "last_name": last.strip(),
        "name": user.name.strip(),
        "profile_pic": "https://platform-lookaside.fbsbx.com/platform/profilepic/?psid="
        + user.psid,
        "locale": user.locale,
    }
    return {"id": user.psid, **{key: known[key] for key in asked if known[key]}}


@graph_view
def node(request, page, body, node_id):
    if request.method != "GET":
        raise bad_parameter("Unsupported post request.")
    if node_id == page.page_id:
        fields = request.GET.get("fields", "id,name").split(",")
        known = {"id": page.page_id, "name": page.name}
        return {key: known[key] for key in fields if key in known} or {"id": page.page_id}
    user = User.objects.filter(page=page, psid=node_id).first()
    if user is not None:
        return _user_profile(page, user, request.GET.get("fields", "first_name,last_name"))
    template = (
        Template.objects.select_related("page").filter(page=page, template_id=node_id).first()
    )
    if template is not None:
        return _template_json(template)
    raise bad_parameter(
        f"Unsupported get request. Object with ID '{node_id}' does not exist, cannot be "
        "loaded due to missing permissions, or does not support this operation",
        subcode=33,
    )
