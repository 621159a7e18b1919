"""Send API request bodies, validated against the platform's limits before they leave.

Every builder returns the exact JSON dict to POST to `/{page_id}/messages`; invalid
input raises `ValueError` naming the rule it broke.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, cast
from urllib.parse import urlsplit

__all__ = [
    "DEPRECATED_TAGS",
    "RETIRED_2020_TAGS",
    "button_template",
    "check_tag",
    "human_agent_message",
    "login_button",
    "logout_button",
    "postback_button",
    "quick_reply",
    "receipt_element",
    "receipt_template",
    "sender_action",
    "text_message",
    "url_button",
    "utility_template_message",
]

Json = dict[str, Any]
Amount = Decimal | int | float
MessagingType = Literal["RESPONSE", "UPDATE", "MESSAGE_TAG"]
NotificationType = Literal["REGULAR", "SILENT_PUSH", "NO_PUSH"]
SenderAction = Literal["typing_on", "typing_off", "mark_seen"]

TEXT_MAX = 2000  # exclusive: "under 2000 characters"
METADATA_MAX = 1000  # exclusive
QUICK_REPLIES_MAX = 13
QUICK_REPLY_TITLE_MAX = 20
PAYLOAD_MAX = 1000
BUTTON_TEXT_MAX = 640
BUTTON_TITLE_MAX = 20
RECEIPT_ELEMENTS_MAX = 100

DEPRECATED_TAGS = frozenset({"ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE", "POST_PURCHASE_UPDATE"})
RETIRED_2020_TAGS = frozenset(
    {
        "APPLICATION_UPDATE",
        "APPOINTMENT_UPDATE",
        "BUSINESS_PRODUCTIVITY",
        "COMMUNITY_ALERT",
        "CONFIRMED_EVENT_REMINDER",
        "FEATURE_FUNCTIONALITY_UPDATE",
        "GAME_EVENT",
        "ISSUE_RESOLUTION",
        "NON_PROMOTIONAL_SUBSCRIPTION",
        "PAIRING_UPDATE",
        "PAYMENT_UPDATE",
        "PERSONAL_FINANCE_UPDATE",
        "RESERVATION_UPDATE",
        "SHIPPING_UPDATE",
        "TICKET_UPDATE",
        "TRANSPORTATION_UPDATE",
    }
)
ALLOWED_TAGS = frozenset({"HUMAN_AGENT"})

_MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
_NOTIFICATION_TYPES = frozenset({"REGULAR", "SILENT_PUSH", "NO_PUSH"})
_SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


# Quick replies and buttons


def quick_reply(title: str, payload: str) -> Json:
    _check_text("quick reply title", title, max_len=QUICK_REPLY_TITLE_MAX, inclusive=True)
    _check_text("quick reply payload", payload, max_len=PAYLOAD_MAX, inclusive=True)
    return {"content_type": "text", "title": title, "payload": payload}


def login_button(url: str) -> Json:
    """The Log In button that starts account linking; Meta requires an HTTPS URL."""
    _check_https("login button url", url)
    return {"type": "account_link", "url": url}


def logout_button() -> Json:
    return {"type": "account_unlink"}


def postback_button(title: str, payload: str) -> Json:
    _check_text("button title", title, max_len=BUTTON_TITLE_MAX, inclusive=True)
    _check_text("postback payload", payload, max_len=PAYLOAD_MAX, inclusive=True)
    return {"type": "postback", "title": title, "payload": payload}


def url_button(title: str, url: str) -> Json:
    _check_text("button title", title, max_len=BUTTON_TITLE_MAX, inclusive=True)
    _check_https("url button url", url)
    return {"type": "web_url", "title": title, "url": url}


# The Messenger profile: the persistent menu (Messenger Profile API)

PERSISTENT_MENU_TITLE_MAX = 30
PERSISTENT_MENU_ITEMS_MAX = 20


def persistent_menu(
    menus: Mapping[str, Sequence[Mapping[str, Any]]], *, composer_input_disabled: bool = False
) -> list[Json]:
    """The `persistent_menu` property: one menu per locale (`default` required, others as
    `fr_FR`), each a list of postback or web_url buttons (titles up to 30 characters, at
    most 20 buttons)."""
    if "default" not in menus:
        raise ValueError("a persistent menu needs a 'default' locale")
    result: list[Json] = []
    for locale, items in menus.items():
        if locale != "default" and not re.fullmatch(r"[a-z]{2}_[A-Z]{2}", locale):
            raise ValueError(f"invalid persistent menu locale {locale!r}")
        if not 1 <= len(items) <= PERSISTENT_MENU_ITEMS_MAX:
            raise ValueError(f"a persistent menu has 1 to 20 items, got {len(items)}")
        actions: list[Json] = []
        for item in items:
            kind = item.get("type")
            title = _check_text(
                "menu item title",
                item.get("title"),
                max_len=PERSISTENT_MENU_TITLE_MAX,
                inclusive=True,
            )
            if kind == "postback":
                payload = _check_text(
                    "menu item payload", item.get("payload"), max_len=PAYLOAD_MAX, inclusive=True
                )
                actions.append({"type": "postback", "title": title, "payload": payload})
            elif kind == "web_url":
                url = _check_https("menu item url", item.get("url"))
                actions.append({"type": "web_url", "title": title, "url": url})
            else:
                raise ValueError(f"a menu item is a postback or web_url, got {kind!r}")
        result.append(
            {
                "locale": locale,
                "composer_input_disabled": composer_input_disabled,
                "call_to_actions": actions,
            }
        )
    return result


# Messages


def text_message(
    psid: str,
    text: str,
    *,
    quick_replies: Sequence[Mapping[str, Any]] | None = None,
    messaging_type: MessagingType = "RESPONSE",
    tag: str | None = None,
    notification_type: NotificationType | None = None,
    metadata: str | None = None,
) -> Json:
    _check_text("text", text, max_len=TEXT_MAX)
    message: Json = {"text": text}
    if quick_replies is not None:
        message["quick_replies"] = _quick_replies(quick_replies)
    _metadata(message, metadata)
    return _envelope(psid, message, messaging_type, tag, notification_type)


def human_agent_message(
    psid: str, text: str, *, persona_id: str | None = None, metadata: str | None = None
) -> Json:
    """A manual reply by bank staff, allowed up to 7 days after the customer's last message.

    Never use this for automated sends: the HUMAN_AGENT tag is for people only.
    """
    body = text_message(
        psid, text, messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT", metadata=metadata
    )
    if persona_id is not None:
        body["persona_id"] = _check_id("persona_id", persona_id)
    return body


def button_template(
    psid: str,
    text: str,
    buttons: Sequence[Mapping[str, Any]],
    *,
    messaging_type: MessagingType = "RESPONSE",
    tag: str | None = None,
    notification_type: NotificationType | None = None,
    metadata: str | None = None,
) -> Json:
    _check_text("button template text", text, max_len=BUTTON_TEXT_MAX, inclusive=True)
    if not 1 <= len(buttons) <= 3:
        raise ValueError(f"a button template needs 1 to 3 buttons, got {len(buttons)}")
    for button in buttons:
        if not isinstance(button, Mapping) or not isinstance(button.get("type"), str):
            raise ValueError(f"each button must be a dict with a 'type', got {button!r}")
    payload = {"template_type": "button", "text": text, "buttons": [dict(b) for b in buttons]}
    message: Json = {"attachment": {"type": "template", "payload": payload}}
    _metadata(message, metadata)
    return _envelope(psid, message, messaging_type, tag, notification_type)


def receipt_element(
    title: str,
    price: Amount,
    *,
    subtitle: str | None = None,
    quantity: int | None = None,
    currency: str | None = None,
    image_url: str | None = None,
) -> Json:
    _check_text("receipt element title", title, max_len=None)
    element: Json = {"title": title, "price": _amount("price", price, allow_negative=True)}
    if subtitle is not None:
        element["subtitle"] = subtitle
    if quantity is not None:
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise ValueError(f"quantity must be a non-negative integer, got {quantity!r}")
        element["quantity"] = quantity
    if currency is not None:
        element["currency"] = _check_currency(currency)
    if image_url is not None:
        element["image_url"] = _check_https("image_url", image_url)
    return element


def receipt_template(
    psid: str,
    *,
    recipient_name: str,
    order_number: str,
    currency: str,
    payment_method: str,
    total_cost: Amount,
    elements: Sequence[Mapping[str, Any]] = (),
    subtotal: Amount | None = None,
    shipping_cost: Amount | None = None,
    total_tax: Amount | None = None,
    timestamp: int | None = None,
    order_url: str | None = None,
    messaging_type: MessagingType = "UPDATE",
    notification_type: NotificationType | None = None,
) -> Json:
    """A receipt. `payment_method` is shown to the customer: at most the last 4 digits."""
    _check_text("recipient_name", recipient_name, max_len=None)
    _check_text("order_number", order_number, max_len=None)
    _check_text("payment_method", payment_method, max_len=None)
    if len(elements) > RECEIPT_ELEMENTS_MAX:
        raise ValueError(
            f"a receipt holds at most {RECEIPT_ELEMENTS_MAX} elements, got {len(elements)}"
        )
    for element in elements:
        if not isinstance(element, Mapping) or "title" not in element:
            raise ValueError(f"each receipt element must be a dict with a title: {element!r}")

    summary: Json = {}
    for name, value in (
        ("subtotal", subtotal),
        ("shipping_cost", shipping_cost),
        ("total_tax", total_tax),
    ):
        if value is not None:
            summary[name] = _amount(name, value)
    summary["total_cost"] = _amount("total_cost", total_cost)

    payload: Json = {
        "template_type": "receipt",
        "recipient_name": recipient_name,
        "order_number": order_number,
        "currency": _check_currency(currency),
        "payment_method": payment_method,
        "summary": summary,
        "elements": [dict(e) for e in elements],
    }
    if timestamp is not None:
        if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
            raise ValueError(f"timestamp must be a non-negative integer, got {timestamp!r}")
        payload["timestamp"] = str(timestamp)
    if order_url is not None:
        payload["order_url"] = _check_https("order_url", order_url)
    message = {"attachment": {"type": "template", "payload": payload}}
    return _envelope(psid, message, messaging_type, None, notification_type)


def utility_template_message(
    psid: str,
    template_name: str,
    language_code: str,
    body_params: Sequence[str] = (),
    *,
    messaging_type: Literal["UTILITY", "UPDATE"] = "UTILITY",
    notification_type: NotificationType | None = None,
    metadata: str | None = None,
) -> Json:
    """An approved utility template: the way to reach a customer outside the 24-hour window.

    Meta's examples disagree on `messaging_type`; "UTILITY" is the default and "UPDATE"
    is accepted for the other shape.
    """
    if messaging_type not in ("UTILITY", "UPDATE"):
        raise ValueError(f"messaging_type must be UTILITY or UPDATE, got {messaging_type!r}")
    if not isinstance(template_name, str) or not _TEMPLATE_NAME.match(template_name):
        raise ValueError(
            f"template name must be lowercase letters, digits and underscores: {template_name!r}"
        )
    if not isinstance(language_code, str) or not _LANGUAGE_CODE.match(language_code):
        raise ValueError(f"language code must look like 'en' or 'en_US': {language_code!r}")
    template: Json = {"name": template_name, "language": {"code": language_code}}
    if body_params:
        parameters = []
        for index, param in enumerate(body_params, start=1):
            _check_text(f"body parameter {index}", param, max_len=None)
            parameters.append({"type": "text", "text": param})
        template["components"] = [{"type": "body", "parameters": parameters}]
    message: Json = {"template": template}
    _metadata(message, metadata)
    body: Json = {
        "recipient": {"id": _check_id("psid", psid)},
        "messaging_type": messaging_type,
        "message": message,
    }
    if notification_type is not None:
        body["notification_type"] = _check_notification_type(notification_type)
    return body


def sender_action(psid: str, action: SenderAction) -> Json:
    if action not in _SENDER_ACTIONS:
        raise ValueError(
            f"sender action must be one of {', '.join(sorted(_SENDER_ACTIONS))}, got {action!r}"
        )
    return {"recipient": {"id": _check_id("psid", psid)}, "sender_action": action}


# Validation helpers


def check_tag(tag: str) -> str:
    """Return `tag` if the platform still accepts it, else explain why not."""
    if tag in DEPRECATED_TAGS:
        raise ValueError(
            f"the {tag} tag was retired by Meta on 27 April 2026 and now fails with error "
            "100; send an approved utility template (utility_template_message) instead"
        )
    if tag in RETIRED_2020_TAGS:
        raise ValueError(
            f"the {tag} tag was retired by Meta on 4 March 2020; send an approved utility "
            "template (utility_template_message) instead"
        )
    if tag not in ALLOWED_TAGS:
        raise ValueError(f"unknown message tag {tag!r}; only HUMAN_AGENT is accepted")
    return tag


def _envelope(
    psid: str,
    message: Json,
    messaging_type: str,
    tag: str | None,
    notification_type: str | None,
) -> Json:
    if messaging_type not in _MESSAGING_TYPES:
        raise ValueError(
            f"messaging_type must be one of {', '.join(sorted(_MESSAGING_TYPES))}, "
            f"got {messaging_type!r}"
        )
    if messaging_type == "MESSAGE_TAG" and tag is None:
        raise ValueError("messaging_type MESSAGE_TAG needs a tag")
    if tag is not None and messaging_type != "MESSAGE_TAG":
        raise ValueError("a tag is only allowed with messaging_type MESSAGE_TAG")
    body: Json = {"recipient": {"id": _check_id("psid", psid)}, "messaging_type": messaging_type}
    if tag is not None:
        body["tag"] = check_tag(tag)
    if notification_type is not None:
        body["notification_type"] = _check_notification_type(notification_type)
    body["message"] = message
    return body


def _metadata(message: Json, metadata: str | None) -> None:
    """`message.metadata`: returned in the message's echo (messenger-platform §3)."""
    if metadata is not None:
        _check_text("metadata", metadata, max_len=METADATA_MAX)
        message["metadata"] = metadata


def _quick_replies(replies: Sequence[Mapping[str, Any]]) -> list[Json]:
    if not 1 <= len(replies) <= QUICK_REPLIES_MAX:
        raise ValueError(f"quick replies must number 1 to {QUICK_REPLIES_MAX}, got {len(replies)}")
    result = []
    for reply in replies:
        if not isinstance(reply, Mapping):
            raise ValueError(f"each quick reply must be a dict, got {reply!r}")
        if reply.get("content_type", "text") != "text":
            raise ValueError("only text quick replies are supported")
        # quick_reply checks the types at run time.
        result.append(quick_reply(cast(str, reply.get("title")), cast(str, reply.get("payload"))))
    return result


def _check_text(what: str, value: Any, *, max_len: int | None, inclusive: bool = False) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string")
    if max_len is not None:
        too_long = len(value) > max_len if inclusive else len(value) >= max_len
        if too_long:
            limit = f"at most {max_len}" if inclusive else f"under {max_len}"
            raise ValueError(f"{what} must be {limit} characters, got {len(value)}")
    return value


def _check_id(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value or value != value.strip():
        raise ValueError(f"{what} must be a non-empty id string without spaces, got {value!r}")
    return value


# Messenger only opens https:// links. Plain http is let through for loopback hosts alone,
# where the portal and the sandbox run side by side in development and the demo.
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def _check_https(what: str, url: Any) -> str:
    if isinstance(url, str):
        parts = urlsplit(url)
        if parts.hostname and (
            parts.scheme == "https"
            or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
        ):
            return url
    raise ValueError(f"{what} must be an absolute https:// URL, got {url!r}")


def _check_currency(currency: Any) -> str:
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise ValueError(f"currency must be an ISO 4217 code such as 'EUR', got {currency!r}")
    return currency


def _check_notification_type(value: Any) -> str:
    if not isinstance(value, str) or value not in _NOTIFICATION_TYPES:
        raise ValueError(
            f"notification_type must be one of {', '.join(sorted(_NOTIFICATION_TYPES))}, "
            f"got {value!r}"
        )
    return value


def _amount(what: str, value: Any, *, allow_negative: bool = False) -> int | float:
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    try:
        number = value if isinstance(value, int) else float(value)
    except ValueError as exc:
        raise ValueError(f"{what} must be a finite number, got {value!r}") from exc
    if not math.isfinite(number):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    if number < 0 and not allow_negative:
        raise ValueError(f"{what} must not be negative, got {value!r}")
    return number
