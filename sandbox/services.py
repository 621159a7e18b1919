"""What a simulated Messenger user does, and what Messenger then tells the bank."""

import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

from django.db import transaction
from django.utils import timezone

from sandbox import webhooks
from sandbox.models import PAGE_INBOX_APP_ID, LinkingToken, Message, Page, User
from sandbox.webhooks import enqueue_echo, enqueue_messaging


class SandboxError(ValueError):
    """A user action the sandbox refuses, with a message to show."""


def _text(value, what: str, *, limit: int = 2000) -> str:
    if not isinstance(value, str) or not value.strip():
        raise SandboxError(f"{what} must be a non-empty string")
    if len(value) > limit:
        raise SandboxError(f"{what} must be at most {limit} characters")
    return value


@transaction.atomic
def user_create(*, page: Page, name: str, locale: str = "en_GB") -> User:
    return User.objects.create(page=page, name=_text(name, "name", limit=100), locale=locale)


def _touch(user: User) -> None:
    user.last_inbound_at = timezone.now()
    user.save(update_fields=["last_inbound_at"])


@transaction.atomic
def user_send(*, user: User, text: str, quick_reply_payload: str | None = None) -> Message:
    """The user types (or taps a quick reply): opens the 24-hour window, webhook `messages`."""
    text = _text(text, "text")
    content = {"text": text}
    if quick_reply_payload is not None:
        content["quick_reply"] = {"payload": _text(quick_reply_payload, "payload", limit=1000)}
    message = Message.objects.create(
        page=user.page, user=user, direction=Message.Direction.INBOUND, body=content
    )
    _touch(user)
    enqueue_messaging(user.page, "messages", user.psid, message={"mid": message.mid, **content})
    return message


@transaction.atomic
def user_postback(*, user: User, title: str, payload: str) -> Message:
    """The user taps a postback button: webhook `messaging_postbacks`."""
    content = {"title": _text(title, "title", limit=640), "payload": _text(payload, "payload")}
    message = Message.objects.create(
        page=user.page,
        user=user,
        direction=Message.Direction.INBOUND,
        body={"text": title, "postback": content},
    )
    _touch(user)
    enqueue_messaging(
        user.page, "messaging_postbacks", user.psid, postback={"mid": message.mid, **content}
    )
    return message


@transaction.atomic
def user_read(*, user: User) -> int:
    """The user reads the thread: webhook `message_reads` if anything was unread."""
    moment = timezone.now()
    unread = Message.objects.filter(
        user=user, direction=Message.Direction.OUTBOUND, read_at__isnull=True
    )
    count = unread.update(read_at=moment)
    if count:
        enqueue_messaging(
            user.page,
            "message_reads",
            user.psid,
            read={"watermark": int(moment.timestamp() * 1000)},
        )
    return count


@transaction.atomic
def page_inbox_send(*, user: User, text: str) -> Message:
    """A person at the bank writes from Meta's Page inbox: the message reaches the user and
    its echo reaches the bank, from the Page Inbox app (webhook `message_echoes`)."""
    content = {"text": _text(text, "text")}
    message = Message.objects.create(
        page=user.page,
        user=user,
        direction=Message.Direction.OUTBOUND,
        body=content,
        messaging_type="RESPONSE",
    )
    enqueue_echo(user.page, user.psid, content, mid=message.mid, app_id=PAGE_INBOX_APP_ID)
    return message


@transaction.atomic
def user_logout(*, user: User) -> None:
    """The user taps Log Out: webhook `messaging_account_linking` with status unlinked."""
    User.objects.filter(pk=user.pk).update(linked=False)
    enqueue_messaging(
        user.page, "messaging_account_linking", user.psid, account_linking={"status": "unlinked"}
    )


M_ME_NOTE = "You entered this conversation by following a link."
GET_STARTED = "Get Started"


def _ref(value: object) -> str:
    ref = _text(value, "ref", limit=250)
    if not all(ch.isalnum() or ch in "-_=+/.:" for ch in ref):
        raise SandboxError("An m.me ref holds letters, digits and - _ = + / . : only")
    return ref


@transaction.atomic
def user_open_link(*, user: User, ref: str) -> Message:
    """The user opens `m.me/<page>?ref=<ref>`, as Messenger delivers it to the bank.

    Into an existing thread (the user has written to the Page before) it is a
    `messaging_referrals` event; into a new one the user taps *Get Started*, and the
    `messaging_postbacks` event carries the referral. Either opens the 24-hour window.
    """
    referral = {"ref": _ref(ref), "source": "SHORTLINK", "type": "OPEN_THREAD"}
    existing = user.messages.filter(direction=Message.Direction.INBOUND).exists()
    if existing:
        message = Message.objects.create(
            page=user.page,
            user=user,
            direction=Message.Direction.INBOUND,
            body={"text": M_ME_NOTE, "referral": referral},
        )
        _touch(user)
        enqueue_messaging(user.page, "messaging_referrals", user.psid, referral=referral)
        return message
    postback = {"title": GET_STARTED, "payload": "GET_STARTED", "referral": referral}
    message = Message.objects.create(
        page=user.page,
        user=user,
        direction=Message.Direction.INBOUND,
        body={"text": GET_STARTED, "postback": postback},
    )
    _touch(user)
    enqueue_messaging(
        user.page, "messaging_postbacks", user.psid, postback={"mid": message.mid, **postback}
    )
    return message


def _with_query(url: str, params: dict) -> str:
    parts = urlsplit(url)
    query = f"{parts.query}&{urlencode(params)}" if parts.query else urlencode(params)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


@transaction.atomic
def link_start(*, user: User, link_url: str, redirect_base: str) -> tuple[LinkingToken, str]:
    """The user taps Log In: Messenger opens the bank's page with a fresh 5-minute token.

    Returns the token and the address to open: `link_url` with `account_linking_token`
    and a `redirect_uri` that brings the browser back to the sandbox.
    """
    parts = urlsplit(link_url)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        raise SandboxError("The Log In button's url must be an absolute http(s) address")

    token = LinkingToken.objects.create(
        token=secrets.token_urlsafe(48), page=user.page, user=user, link_url=link_url
    )
    redirect_uri = _with_query(redirect_base, {"account_linking_token": token.token})
    location = _with_query(
        link_url, {"account_linking_token": token.token, "redirect_uri": redirect_uri}
    )
    return token, location


@transaction.atomic
def link_finish(*, token: str, authorization_code: str | None) -> LinkingToken:
    """The bank sent the browser back: with a code the link is made and the bank is told."""
    linking = (
        LinkingToken.objects.select_for_update()
        .select_related("user", "page")
        .filter(token=token)
        .first()
    )
    if linking is None:
        raise SandboxError("Unknown account_linking_token")
    if linking.used_at is not None:
        raise SandboxError("This account_linking_token was already used")
    if linking.expired:
        raise SandboxError("This account_linking_token has expired (5 minutes)")
    linking.used_at = timezone.now()
    linking.authorization_code = authorization_code or ""
    linking.save(update_fields=["used_at", "authorization_code"])
    if authorization_code:
        User.objects.filter(pk=linking.user_id).update(linked=True)
        webhooks.enqueue_messaging(
            linking.page,
            "messaging_account_linking",
            linking.user.psid,
            account_linking={"status": "linked", "authorization_code": authorization_code},
        )
    return linking
