"""Webhook intake: signature checks, the subscribe handshake and typed event parsing.

`parse_envelope` never drops an event: an unknown kind, or a messaging item it cannot
read, becomes an `UnknownEvent` holding the raw dict, so the caller can log it and still
answer 200 for the rest of the batch. Only an envelope that is not a Page webhook at
all raises `WebhookPayloadError`.

An event is read only if every value in it has the platform's shape: ids (PSIDs, Page
and app ids) are 1 to 32 digits, times are milliseconds between the epoch and 2100, and
no text holds a NUL. Anything else is an `UnknownEvent` with an `error`, never a typed
event carrying a value the bank could not store or compute with.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "TEMPLATE_STATUS_FIELDS",
    "AccountLinkingEvent",
    "Attachment",
    "DeliveryEvent",
    "EchoEvent",
    "Event",
    "MessageEvent",
    "OptinEvent",
    "PostbackEvent",
    "ReactionEvent",
    "ReadEvent",
    "Referral",
    "ReferralEvent",
    "TemplateStatusEvent",
    "UnknownEvent",
    "WebhookPayloadError",
    "opens_window",
    "parse_envelope",
    "verify_handshake",
    "verify_request_signature",
    "verify_signature",
    "verify_signature_sha1",
]

SIGNATURE_HEADER = "X-Hub-Signature-256"
LEGACY_SIGNATURE_HEADER = "X-Hub-Signature"
# Meta's utility-messages page names the field `message_template_status_update`; an older
# reading said `messenger_template_status_update`. Both are read (messenger-platform.md §2).
TEMPLATE_STATUS_FIELD = "message_template_status_update"
TEMPLATE_STATUS_FIELDS = (TEMPLATE_STATUS_FIELD, "messenger_template_status_update")
# Milliseconds since the epoch, up to 2100-01-01: anything later is no Meta timestamp, and
# keeps clear of the end of the calendar (datetime's year 9999) when a window is added.
MAX_TIMESTAMP_MS = 4_102_444_800_000
MAX_ID_DIGITS = 32


class WebhookPayloadError(ValueError):
    """The body is not a Messenger Page webhook envelope."""


# Signatures and handshake


def verify_signature(raw_body: bytes, header_value: str | None, app_secret: str) -> bool:
    """Check `X-Hub-Signature-256: sha256=<hex>` against the body exactly as received.

    Meta signs the escaped-unicode form (`\\u00e4`), so the bytes must not be decoded
    and re-encoded first.
    """
    return _verify(raw_body, header_value, app_secret, "sha256", hashlib.sha256)


def verify_signature_sha1(raw_body: bytes, header_value: str | None, app_secret: str) -> bool:
    """Check the legacy `X-Hub-Signature: sha1=<hex>`. Opt-in only: SHA-1 is weaker."""
    return _verify(raw_body, header_value, app_secret, "sha1", hashlib.sha1)


def verify_request_signature(
    raw_body: bytes,
    headers: Mapping[str, str],
    app_secret: str,
    *,
    allow_sha1: bool = False,
) -> bool:
    """Verify from request headers, preferring SHA-256.

    SHA-1 is consulted only when `allow_sha1` is set and no SHA-256 header is present,
    so a request carrying a bad SHA-256 signature cannot be downgraded to SHA-1.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    sha256 = lowered.get(SIGNATURE_HEADER.lower())
    if sha256 is not None:
        return verify_signature(raw_body, sha256, app_secret)
    if allow_sha1:
        return verify_signature_sha1(
            raw_body, lowered.get(LEGACY_SIGNATURE_HEADER.lower()), app_secret
        )
    return False


def _verify(
    raw_body: bytes,
    header_value: str | None,
    app_secret: str,
    algorithm: str,
    digestmod: Callable[..., Any],
) -> bool:
    if not isinstance(raw_body, (bytes, bytearray, memoryview)):
        raise TypeError("raw_body must be the request body as bytes, exactly as received")
    if not header_value or not app_secret:
        return False
    name, sep, received = header_value.strip().partition("=")
    if not sep or name.strip().lower() != algorithm or not received:
        return False
    expected = hmac.new(app_secret.encode(), bytes(raw_body), digestmod).hexdigest()
    return hmac.compare_digest(expected.encode(), received.strip().lower().encode())


def verify_handshake(params: Mapping[str, Any], expected_token: str) -> str | None:
    """Return `hub.challenge` to echo back, or None when the request must get a 403."""
    mode = _param(params, "hub.mode")
    token = _param(params, "hub.verify_token")
    challenge = _param(params, "hub.challenge")
    if mode != "subscribe" or not token or not expected_token or not challenge:
        return None
    if not hmac.compare_digest(token.encode(), expected_token.encode()):
        return None
    return challenge


def _param(params: Mapping[str, Any], name: str) -> str | None:
    value = params.get(name)
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    return value if isinstance(value, str) else None


# Events


@dataclass(frozen=True, kw_only=True)
class Attachment:
    type: str
    url: str | None
    payload: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, kw_only=True)
class _BaseEvent:
    page_id: str
    timestamp: int
    raw: Mapping[str, Any] = field(repr=False, compare=False)
    standby: bool = False


@dataclass(frozen=True, kw_only=True)
class MessageEvent(_BaseEvent):
    sender_id: str
    recipient_id: str
    mid: str
    text: str | None = None
    quick_reply_payload: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_mid: str | None = None


@dataclass(frozen=True, kw_only=True)
class EchoEvent(_BaseEvent):
    """A copy of a message the Page sent: `sender_id` is the Page, `recipient_id` the PSID."""

    sender_id: str
    recipient_id: str
    mid: str
    app_id: str | None = None
    text: str | None = None
    metadata: str | None = None
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Referral:
    """How a person came into the conversation: an m.me link's `ref`, an ad, a QR code.

    `source` is absent for people in Europe and Japan, and Meta's examples write it as
    `SHORTLINK`, `SHORT-URL` or `SHORT_URL`: nothing may depend on it.
    """

    ref: str | None
    source: str | None = None
    type: str | None = None


@dataclass(frozen=True, kw_only=True)
class PostbackEvent(_BaseEvent):
    """A tapped button; a *Get Started* that opened a new thread from an m.me link
    carries the link's `referral`."""

    sender_id: str
    recipient_id: str
    payload: str | None = None
    title: str | None = None
    mid: str | None = None
    referral: Referral | None = None


@dataclass(frozen=True, kw_only=True)
class ReferralEvent(_BaseEvent):
    """`messaging_referrals`: a person with a thread already came back to it through an
    m.me link (or an ad, a QR code); for a new thread the referral rides on the *Get
    Started* postback instead."""

    sender_id: str
    recipient_id: str
    referral: Referral


@dataclass(frozen=True, kw_only=True)
class ReactionEvent(_BaseEvent):
    """A person reacted to a message (`action` "react") or took the reaction back ("unreact")."""

    sender_id: str
    recipient_id: str
    mid: str | None = None
    action: str | None = None
    reaction: str | None = None
    emoji: str | None = None


@dataclass(frozen=True, kw_only=True)
class DeliveryEvent(_BaseEvent):
    sender_id: str
    recipient_id: str
    watermark: int
    mids: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class ReadEvent(_BaseEvent):
    sender_id: str
    recipient_id: str
    watermark: int


@dataclass(frozen=True, kw_only=True)
class AccountLinkingEvent(_BaseEvent):
    sender_id: str
    recipient_id: str
    status: Literal["linked", "unlinked"]
    authorization_code: str | None = None


@dataclass(frozen=True, kw_only=True)
class OptinEvent(_BaseEvent):
    """`sender_id` is None when the opt-in identifies the person by `user_ref` only."""

    sender_id: str | None
    recipient_id: str
    ref: str | None = None
    user_ref: str | None = None
    optin_type: str | None = None
    payload: str | None = None


@dataclass(frozen=True, kw_only=True)
class TemplateStatusEvent(_BaseEvent):
    template_id: str | None
    template_name: str | None
    status: str | None
    language: str | None = None
    reason: str | None = None
    sender_id: None = None
    recipient_id: None = None


@dataclass(frozen=True, kw_only=True)
class UnknownEvent(_BaseEvent):
    """An event this module does not model, or one it could not read (`error` says why)."""

    kind: str
    sender_id: str | None = None
    recipient_id: str | None = None
    error: str | None = None


Event = (
    MessageEvent
    | EchoEvent
    | PostbackEvent
    | ReferralEvent
    | ReactionEvent
    | DeliveryEvent
    | ReadEvent
    | AccountLinkingEvent
    | OptinEvent
    | TemplateStatusEvent
    | UnknownEvent
)


# What counts as the person acting, which opens the platform's 24-hour window
# (messenger-platform.md §2): a message, a postback, a referral, a reaction, an opt-in.
# Deliveries, reads and echoes do not; neither does anything this module cannot read.
WINDOW_OPENING = (MessageEvent, PostbackEvent, ReferralEvent, ReactionEvent, OptinEvent)


def opens_window(event: Event) -> bool:
    """Whether `event` is the person acting, with a PSID whose 24-hour window it opens."""
    return isinstance(event, WINDOW_OPENING) and bool(event.sender_id)


class _Malformed(Exception):
    pass


def parse_envelope(body: bytes | bytearray | str | Mapping[str, Any]) -> list[Event]:
    """Parse a Page webhook body into events sorted by timestamp (Meta does not order them)."""
    data = _load(body)
    if data.get("object") != "page":
        raise WebhookPayloadError(f"expected object 'page', got {data.get('object')!r}")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise WebhookPayloadError("envelope has no 'entry' list")

    events: list[Event] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise WebhookPayloadError(f"entry[{index}] is not an object")
        try:
            page_id = _id(entry.get("id"), "id")
        except _Malformed:
            page_id = None
        if page_id is None:
            # Nothing in an entry without its Page can be used: it is one unreadable event.
            events.append(
                UnknownEvent(
                    page_id="",
                    timestamp=0,
                    raw=entry,
                    kind="invalid",
                    error=f"entry[{index}] has no page id of 1 to 32 digits",
                )
            )
            continue
        entry_time = _entry_time_ms(entry.get("time"))
        for key, standby in (("messaging", False), ("standby", True)):
            items = _list(entry, key, index)
            events.extend(_messaging_event(page_id, entry_time, item, standby) for item in items)
        events.extend(
            _change_event(page_id, entry_time, change) for change in _list(entry, "changes", index)
        )
    return sorted(events, key=lambda event: event.timestamp)


def _load(body: bytes | bytearray | str | Mapping[str, Any]) -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise WebhookPayloadError("webhook body is not valid JSON") from exc
    if not isinstance(data, Mapping):
        raise WebhookPayloadError("webhook body must be a JSON object")
    return data


def _list(entry: Mapping[str, Any], key: str, index: int) -> list[Any]:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise WebhookPayloadError(f"entry[{index}].{key} is not a list")
    return value


_KINDS = (
    "message",
    "postback",
    "delivery",
    "read",
    "account_linking",
    "optin",
    "referral",
    "reaction",
    *TEMPLATE_STATUS_FIELDS,
)


def _messaging_event(page_id: str, entry_time: int, item: Any, standby: bool) -> Event:
    if not isinstance(item, Mapping):
        return UnknownEvent(
            page_id=page_id,
            timestamp=entry_time,
            raw={"item": item},
            standby=standby,
            kind="invalid",
            error="messaging item is not an object",
        )
    kind = _kind(item)
    common: dict[str, Any] = {
        "page_id": page_id,
        "timestamp": entry_time,
        "raw": item,
        "standby": standby,
    }
    sender_id = recipient_id = None
    try:
        sender, recipient = _mapping(item.get("sender")), _mapping(item.get("recipient"))
        sender_id = _id(sender.get("id"), "sender.id")
        recipient_id = _id(recipient.get("id"), "recipient.id")
        timestamp = _timestamp(item.get("timestamp"), "timestamp")
        if timestamp is not None:
            common["timestamp"] = timestamp
        if kind in TEMPLATE_STATUS_FIELDS:
            return _template_status(common, item.get(kind))
        if timestamp is None:
            raise _Malformed("no integer timestamp")
        if kind == "optin":
            return _optin(common, sender_id, sender, recipient_id, item["optin"])
        if sender_id is None or recipient_id is None:
            raise _Malformed("no sender.id or recipient.id")
        parser = _PARSERS.get(kind)
        if parser is None:
            return UnknownEvent(**common, kind=kind, sender_id=sender_id, recipient_id=recipient_id)
        value = item[kind]
        if not isinstance(value, Mapping):
            raise _Malformed(f"'{kind}' is not an object")
        return parser(common | {"sender_id": sender_id, "recipient_id": recipient_id}, value)
    except _Malformed as exc:
        return UnknownEvent(
            **common, kind=kind, sender_id=sender_id, recipient_id=recipient_id, error=str(exc)
        )


def _kind(item: Mapping[str, Any]) -> str:
    for kind in _KINDS:
        if kind in item:
            return kind
    extra = [k for k in item if k not in ("sender", "recipient", "timestamp")]
    return str(extra[0]) if extra else "unknown"


def _message(common: dict[str, Any], message: Mapping[str, Any]) -> Event:
    mid = _str(message.get("mid"))
    if mid is None:
        raise _Malformed("message has no mid")
    text = _str(message.get("text"))
    attachments = _attachments(message.get("attachments"))
    if message.get("is_echo") is True:
        return EchoEvent(
            **common,
            mid=mid,
            app_id=_id(message.get("app_id"), "app_id"),
            text=text,
            metadata=_str(message.get("metadata")),
            attachments=attachments,
        )
    quick_reply = message.get("quick_reply")
    reply_to = message.get("reply_to")
    return MessageEvent(
        **common,
        mid=mid,
        text=text,
        quick_reply_payload=(
            _str(quick_reply.get("payload")) if isinstance(quick_reply, Mapping) else None
        ),
        attachments=attachments,
        reply_to_mid=_str(reply_to.get("mid")) if isinstance(reply_to, Mapping) else None,
    )


def _postback(common: dict[str, Any], postback: Mapping[str, Any]) -> Event:
    return PostbackEvent(
        **common,
        payload=_str(postback.get("payload")),
        title=_str(postback.get("title")),
        mid=_str(postback.get("mid")),
        referral=_referral(postback["referral"]) if "referral" in postback else None,
    )


def _referral_event(common: dict[str, Any], referral: Mapping[str, Any]) -> Event:
    return ReferralEvent(**common, referral=_referral(referral))


def _referral(value: Any) -> Referral:
    if not isinstance(value, Mapping):
        raise _Malformed("'referral' is not an object")
    return Referral(
        ref=_str(value.get("ref")), source=_str(value.get("source")), type=_str(value.get("type"))
    )


def _reaction(common: dict[str, Any], reaction: Mapping[str, Any]) -> Event:
    return ReactionEvent(
        **common,
        mid=_str(reaction.get("mid")),
        action=_str(reaction.get("action")),
        reaction=_str(reaction.get("reaction")),
        emoji=_str(reaction.get("emoji")),
    )


def _delivery(common: dict[str, Any], delivery: Mapping[str, Any]) -> Event:
    watermark = _timestamp(delivery.get("watermark"), "watermark")
    if watermark is None:
        raise _Malformed("delivery has no watermark")
    mids = delivery.get("mids") or []
    if not isinstance(mids, list) or not all(isinstance(m, str) for m in mids):
        raise _Malformed("delivery.mids is not a list of strings")
    return DeliveryEvent(**common, watermark=watermark, mids=tuple(_text(m) for m in mids))


def _read(common: dict[str, Any], read: Mapping[str, Any]) -> Event:
    watermark = _timestamp(read.get("watermark"), "watermark")
    if watermark is None:
        raise _Malformed("read has no watermark")
    return ReadEvent(**common, watermark=watermark)


def _account_linking(common: dict[str, Any], linking: Mapping[str, Any]) -> Event:
    status = linking.get("status")
    if status == "linked":
        return AccountLinkingEvent(
            **common, status="linked", authorization_code=_str(linking.get("authorization_code"))
        )
    if status == "unlinked":
        return AccountLinkingEvent(**common, status="unlinked")
    raise _Malformed(f"unknown account_linking status {status!r}")


def _optin(
    common: dict[str, Any],
    sender_id: str | None,
    sender: Mapping[str, Any],
    recipient_id: str | None,
    optin: Any,
) -> Event:
    if not isinstance(optin, Mapping):
        raise _Malformed("'optin' is not an object")
    user_ref = _str(optin.get("user_ref")) or _str(sender.get("user_ref"))
    if recipient_id is None or (sender_id is None and user_ref is None):
        raise _Malformed("optin has neither a sender id nor a user_ref, or no recipient id")
    return OptinEvent(
        **common,
        sender_id=sender_id,
        recipient_id=recipient_id,
        ref=_str(optin.get("ref")),
        user_ref=user_ref,
        optin_type=_str(optin.get("type")),
        payload=_str(optin.get("payload")),
    )


def _template_status(common: dict[str, Any], value: Any) -> Event:
    """Meta's shape for this event is unconfirmed: read the likely field names of both."""
    if not isinstance(value, Mapping):
        raise _Malformed("the template status update is not an object")
    status = _first_str(value, "event", "status")
    template_id = _first_id(value, "message_template_id", "template_id", "id")
    name = _first_str(value, "message_template_name", "template_name", "name")
    if status is None or (template_id is None and name is None):
        raise _Malformed("template status update without a status or a template")
    language = value.get("message_template_language", value.get("language"))
    if isinstance(language, Mapping):
        language = language.get("code")
    return TemplateStatusEvent(
        **common,
        template_id=template_id,
        template_name=name,
        status=status,
        language=_str(language),
        reason=_first_str(value, "reason", "rejected_reason"),
    )


def _change_event(page_id: str, entry_time: int, change: Any) -> Event:
    common: dict[str, Any] = {"page_id": page_id, "timestamp": entry_time}
    if not isinstance(change, Mapping):
        return UnknownEvent(
            **common, raw={"item": change}, kind="invalid", error="change is not an object"
        )
    try:
        field_name = _str(change.get("field")) or "unknown"
    except _Malformed as exc:
        return UnknownEvent(**common, raw=change, kind="invalid", error=str(exc))
    if field_name not in TEMPLATE_STATUS_FIELDS:
        return UnknownEvent(**common, raw=change, kind=field_name)
    try:
        return _template_status(common | {"raw": change}, change.get("value"))
    except _Malformed as exc:
        return UnknownEvent(**common, raw=change, kind=field_name, error=str(exc))


_PARSERS: dict[str, Callable[[dict[str, Any], Mapping[str, Any]], Event]] = {
    "message": _message,
    "postback": _postback,
    "reaction": _reaction,
    "delivery": _delivery,
    "read": _read,
    "account_linking": _account_linking,
    "referral": _referral_event,
}


def _attachments(value: Any) -> tuple[Attachment, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Malformed("message.attachments is not a list")
    result = []
    for item in value:
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise _Malformed("attachment without a type")
        payload = _mapping(item.get("payload"))
        result.append(Attachment(type=item["type"], url=_str(payload.get("url")), payload=payload))
    return tuple(result)


def _entry_time_ms(value: Any) -> int:
    """Entry `time` is milliseconds for messaging and seconds for `changes` webhooks; a
    time out of range counts as none."""
    number = _int(value)
    if number is None or not 0 <= number <= MAX_TIMESTAMP_MS:
        return 0
    return number * 1000 if number < 100_000_000_000 else number


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _timestamp(value: Any, name: str) -> int | None:
    """Milliseconds since the epoch; None when absent, `_Malformed` when out of range."""
    number = _int(value)
    if number is not None and not 0 <= number <= MAX_TIMESTAMP_MS:
        raise _Malformed(f"{name} out of range")
    return number


def _str(value: Any) -> str | None:
    """A text value, or None when absent or not text; `_Malformed` when it holds a NUL,
    which no text the platform sends holds and no database column can store."""
    return _text(value) if isinstance(value, str) else None


def _text(value: str) -> str:
    if "\x00" in value:
        raise _Malformed("text holds a NUL character")
    return value


def _id(value: Any, name: str) -> str | None:
    """A platform id (PSID, Page id, app id): 1 to 32 digits, as a string or a number.

    None when absent; `_Malformed` when present in any other shape.
    """
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if not 0 <= value < 10**MAX_ID_DIGITS:
            raise _Malformed(f"{name} is not 1 to 32 digits")
        return str(value)
    if (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ID_DIGITS
        and value.isascii()
        and value.isdigit()
    ):
        return value
    raise _Malformed(f"{name} is not 1 to 32 digits")


def _first_str(value: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        found = _str(value.get(key))
        if found:
            return found
    return None


def _first_id(value: Mapping[str, Any], *keys: str) -> str | None:
    for key in keys:
        found = _id(value.get(key), key)
        if found:
            return found
    return None
