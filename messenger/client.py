"""Graph API / Send API client.

Every call carries the Page token and its `appsecret_proof`. Failures surface as the
`messenger.errors` classes; nothing here retries, because the caller owns the retry
schedule (it lives in the database, not in this process).

The Page token travels as `Authorization: Bearer <token>`, which the Graph API accepts
as well as the `access_token` parameter: URLs end up in proxies' and servers' access
logs, headers do not. `appsecret_proof` stays a parameter, as Meta documents it. httpx
logs request URLs at INFO level, so a filter on the `httpx` logger masks the proof (and
any token a URL may still carry) before anything is written.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import json as jsonlib
import logging
import os
import re
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httpx

from messenger import builders
from messenger.errors import (
    ConfigError,
    TransientError,
    UnexpectedResponseError,
    classify,
)

__all__ = [
    "DEFAULT_GRAPH_API_URL",
    "DEFAULT_GRAPH_API_VERSION",
    "GraphClient",
    "PageCredentials",
    "PageInfo",
    "SendResult",
    "SubscribedApp",
    "TemplateInfo",
    "UserProfile",
    "get_client",
]

DEFAULT_GRAPH_API_URL = "https://graph.facebook.com"
DEFAULT_GRAPH_API_VERSION = "v27.0"
MAX_TIMEOUT_SECONDS = 30.0

_API_VERSION = re.compile(r"^v\d+\.\d+$")
_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")
_PLACEHOLDER = re.compile(r"\{\{\s*(\d+)\s*\}\}")
_FIELD_NAME = re.compile(r"^[a-z_]+$")
_TEMPLATE_FIELDS = "id,name,status,category,language,rejected_reason"


@dataclass(frozen=True)
class PageCredentials:
    page_id: str
    access_token: str
    app_secret: str

    def __post_init__(self) -> None:
        for name in ("page_id", "access_token", "app_secret"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be a non-empty string")

    def __repr__(self) -> str:
        return f"PageCredentials(page_id={self.page_id!r}, access_token='***', app_secret='***')"

    @functools.cached_property
    def appsecret_proof(self) -> str:
        return hmac.new(
            self.app_secret.encode(), self.access_token.encode(), hashlib.sha256
        ).hexdigest()


@dataclass(frozen=True)
class SendResult:
    recipient_id: str | None
    message_id: str


@dataclass(frozen=True)
class PageInfo:
    id: str
    name: str | None


@dataclass(frozen=True)
class UserProfile:
    """A Messenger user's name as the User Profile API gives it to the Page: either part
    may be missing (the Page may read a name only once the person opted in)."""

    first_name: str | None
    last_name: str | None


@dataclass(frozen=True)
class TemplateInfo:
    id: str
    name: str | None
    status: str | None
    category: str | None = None
    language: str | None = None
    rejected_reason: str | None = None


@dataclass(frozen=True)
class SubscribedApp:
    id: str
    name: str | None
    subscribed_fields: tuple[str, ...]


class GraphClient:
    """A pooled keep-alive client for one Graph API base URL and version.

    httpx has no whole-request deadline: `timeout_total` bounds each of the read, write
    and pool waits, and `timeout_connect` the connection set-up.

    The Send API call, made thousands of times a second by the delivery workers, takes
    a leaner path (`_SendPath`): one keep-alive connection per sending thread on the
    standard library's HTTP client, the body encoded once as compact JSON. It fails the
    same way as every other call (the same error classes, from the same answers). httpx
    carries the other calls, every call when a `transport` is given (tests), and every
    call through a proxy.
    """

    def __init__(
        self,
        base_url: str,
        api_version: str,
        *,
        timeout_connect: float = 5.0,
        timeout_total: float = 20.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an http(s) URL, got {base_url!r}")
        if not isinstance(api_version, str) or not _API_VERSION.match(api_version):
            raise ValueError(f"api_version must look like 'v27.0', got {api_version!r}")
        for name, value in (("timeout_connect", timeout_connect), ("timeout_total", timeout_total)):
            if not 0 < value <= MAX_TIMEOUT_SECONDS:
                raise ValueError(f"{name} must be above 0 and at most 30 seconds, got {value}")
        if timeout_connect > timeout_total:
            raise ValueError("timeout_connect must not exceed timeout_total")
        _install_log_redaction()
        self.base_url = base_url.rstrip("/")
        self.api_version = api_version
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_total, connect=timeout_connect),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._send_path = (
            _SendPath(self.base_url, timeout_connect=timeout_connect, timeout=timeout_total)
            if transport is None and not _proxied(self.base_url)
            else None
        )

    def close(self) -> None:
        self._http.close()
        if self._send_path is not None:
            self._send_path.close()

    def __enter__(self) -> GraphClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # Send API

    def send(self, creds: PageCredentials, payload: Mapping[str, Any]) -> SendResult:
        """POST a message built by `messenger.builders`."""
        if not isinstance(payload.get("recipient"), Mapping):
            raise ValueError("payload needs a 'recipient' object; build it with messenger.builders")
        path = f"{_segment(creds.page_id)}/messages"
        if self._send_path is not None:
            data = self._send_path.post(
                f"/{self.api_version}/{path}?{_proof_query(creds)}",
                _json_bytes(payload),
                authorization=_bearer(creds),
            )
        else:
            data = self._call("POST", creds, path, json=payload)
        message_id = data.get("message_id")
        if not isinstance(message_id, str) or not message_id:
            raise UnexpectedResponseError("Send API answered without a message_id")
        recipient_id = data.get("recipient_id")
        return SendResult(
            recipient_id=recipient_id if isinstance(recipient_id, str) else None,
            message_id=message_id,
        )

    def sender_action(
        self, creds: PageCredentials, psid: str, action: builders.SenderAction
    ) -> None:
        payload = builders.sender_action(psid, action)
        self._call("POST", creds, f"{_segment(creds.page_id)}/messages", json=payload)

    # Account linking

    def psid_for_linking_token(
        self, creds: PageCredentials, account_linking_token: str, *, timeout: float | None = None
    ) -> str:
        """Look up the PSID behind an account-linking token (valid 5 minutes).

        `timeout` (seconds) bounds each phase of this one call, for a caller that must not
        keep a person waiting (the consent screen); the client's own timeouts otherwise.
        """
        if not account_linking_token:
            raise ValueError("account_linking_token must not be empty")
        data = self._call(
            "GET",
            creds,
            "me",
            params={"fields": "recipient", "account_linking_token": account_linking_token},
            timeout=timeout,
        )
        # The response shape is unconfirmed: accept a string, an object with an id, and
        # a bare `id` as long as it is not the Page's own id (which `/me` also returns).
        recipient = data.get("recipient")
        if isinstance(recipient, Mapping):
            recipient = recipient.get("id")
        if isinstance(recipient, (str, int)) and not isinstance(recipient, bool) and recipient:
            return str(recipient)
        fallback = data.get("id")
        if isinstance(fallback, str) and fallback and fallback != creds.page_id:
            return fallback
        raise UnexpectedResponseError("PSID lookup answered without a recipient")

    def user_profile(
        self, creds: PageCredentials, psid: str, *, timeout: float | None = None
    ) -> UserProfile:
        """The person's first and last name (User Profile API: `GET /<PSID>?fields=…`).

        Meta answers only where the Page may read the profile (the person opted in, and a
        business app has the profile access feature); otherwise it answers an error, which
        is raised as its class. A success without either name is an UnexpectedResponseError.
        """
        data = self._call(
            "GET",
            creds,
            _segment(_check_psid(psid)),
            params={"fields": "first_name,last_name"},
            timeout=timeout,
        )

        def text(key: str) -> str | None:
            value = data.get(key)
            return value.strip() if isinstance(value, str) and value.strip() else None

        profile = UserProfile(first_name=text("first_name"), last_name=text("last_name"))
        if profile.first_name is None and profile.last_name is None:
            raise UnexpectedResponseError("user profile answered without a name")
        return profile

    def unlink_account(self, creds: PageCredentials, psid: str) -> None:
        if not psid:
            raise ValueError("psid must not be empty")
        data = self._call("POST", creds, "me/unlink_accounts", json={"psid": psid})
        if data.get("success") is True or data.get("result") == "unlink account success":
            return
        raise UnexpectedResponseError("unlink answered without confirming success")

    # Page set-up

    def page_check(self, creds: PageCredentials) -> PageInfo:
        """Check the token, app secret and Page id together; raises on any mismatch."""
        data = self._call("GET", creds, _segment(creds.page_id), params={"fields": "id,name"})
        page_id = data.get("id")
        if not isinstance(page_id, str) or not page_id:
            raise UnexpectedResponseError("Page lookup answered without an id")
        if page_id != creds.page_id:
            raise ConfigError(
                f"token belongs to Page {page_id}, not {creds.page_id}",
                user_message="The access token belongs to a different Facebook Page than "
                "the Page ID entered. Check both values.",
            )
        name = data.get("name")
        return PageInfo(id=page_id, name=name if isinstance(name, str) else None)

    def subscribed_apps_set(self, creds: PageCredentials, fields: Sequence[str]) -> None:
        if isinstance(fields, str) or not fields:
            raise ValueError("fields must be a non-empty list of webhook field names")
        for name in fields:
            if not isinstance(name, str) or not _FIELD_NAME.match(name):
                raise ValueError(f"invalid webhook field name {name!r}")
        data = self._call(
            "POST",
            creds,
            f"{_segment(creds.page_id)}/subscribed_apps",
            params={"subscribed_fields": ",".join(fields)},
        )
        if data.get("success") is not True:
            raise UnexpectedResponseError("subscription answered without success")

    def messenger_profile_set(self, creds: PageCredentials, profile: Mapping[str, Any]) -> None:
        """Set properties of the Page's Messenger profile (`get_started`,
        `persistent_menu`, ...): `POST /me/messenger_profile`, answered
        `{"result": "success"}`. Build the menu with `builders.persistent_menu`."""
        if not isinstance(profile, Mapping) or not profile:
            raise ValueError("profile must be a non-empty mapping of profile properties")
        data = self._call("POST", creds, "me/messenger_profile", json=dict(profile))
        if data.get("result") != "success":
            raise UnexpectedResponseError("messenger profile answered without success")

    def subscribed_apps_get(self, creds: PageCredentials) -> list[SubscribedApp]:
        data = self._call("GET", creds, f"{_segment(creds.page_id)}/subscribed_apps")
        apps = []
        for item in _data_list(data):
            app_id = item.get("id")
            if not isinstance(app_id, str):
                continue
            fields = item.get("subscribed_fields")
            apps.append(
                SubscribedApp(
                    id=app_id,
                    name=item.get("name") if isinstance(item.get("name"), str) else None,
                    subscribed_fields=tuple(
                        f
                        for f in (fields if isinstance(fields, list) else [])
                        if isinstance(f, str)
                    ),
                )
            )
        return apps

    # Utility message templates

    def message_template_create(
        self,
        creds: PageCredentials,
        *,
        name: str,
        language: str,
        body_text: str,
        example_params: Sequence[str] = (),
    ) -> TemplateInfo:
        """Create a UTILITY template; `body_text` uses `{{1}}`, `{{2}}`… placeholders."""
        if not isinstance(name, str) or not _TEMPLATE_NAME.match(name):
            raise ValueError(f"template name must be lowercase letters, digits and _: {name!r}")
        if not language:
            raise ValueError("language must not be empty")
        if not isinstance(body_text, str) or not body_text.strip():
            raise ValueError("body_text must not be empty")
        numbers = sorted({int(n) for n in _PLACEHOLDER.findall(body_text)})
        if numbers != list(range(1, len(numbers) + 1)):
            raise ValueError("placeholders must be numbered {{1}}, {{2}}, … without gaps")
        if len(example_params) != len(numbers):
            raise ValueError(
                f"body_text has {len(numbers)} placeholders but {len(example_params)} "
                "example values were given"
            )
        component: dict[str, Any] = {"type": "BODY", "text": body_text}
        if example_params:
            component["example"] = {"body_text": [list(example_params)]}
        data = self._call(
            "POST",
            creds,
            f"{_segment(creds.page_id)}/message_templates",
            json={
                "name": name,
                "language": language,
                "category": "UTILITY",
                "components": [component],
            },
        )
        info = _template_info(data, default_name=name)
        if info is None:
            raise UnexpectedResponseError("template creation answered without an id")
        return info

    def message_template_status(
        self, creds: PageCredentials, template_id_or_name: str
    ) -> TemplateInfo:
        """Look a template up by numeric id, or by name among the Page's templates."""
        if not template_id_or_name:
            raise ValueError("template_id_or_name must not be empty")
        if template_id_or_name.isdigit():
            data = self._call(
                "GET", creds, _segment(template_id_or_name), params={"fields": _TEMPLATE_FIELDS}
            )
            info = _template_info(data, default_name=None)
        else:
            data = self._call(
                "GET",
                creds,
                f"{_segment(creds.page_id)}/message_templates",
                params={"name": template_id_or_name, "fields": _TEMPLATE_FIELDS},
            )
            matches = [
                _template_info(item, default_name=None)
                for item in _data_list(data)
                if item.get("name") == template_id_or_name
            ]
            info = next((m for m in matches if m is not None), None)
        if info is None:
            raise UnexpectedResponseError(f"no template found for {template_id_or_name!r}")
        return info

    # Transport

    def _call(
        self,
        method: str,
        creds: PageCredentials,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        query = {**(params or {}), "appsecret_proof": creds.appsecret_proof}
        url = f"/{self.api_version}/{path}"
        extra: dict[str, Any] = {}
        if timeout is not None:
            if not 0 < timeout <= MAX_TIMEOUT_SECONDS:
                raise ValueError(f"timeout must be above 0 and at most 30 seconds, got {timeout}")
            extra["timeout"] = httpx.Timeout(timeout)
        try:
            response = self._http.request(
                method,
                url,
                params=query,
                json=json,
                headers={"Authorization": _bearer(creds)},
                **extra,
            )
        except httpx.UnsupportedProtocol as exc:
            raise ConfigError(
                f"cannot reach the Graph API: {_describe(exc)}",
                user_message="The Graph API address is misconfigured (MESSENGER_GRAPH_API_URL).",
            ) from None
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientError(f"could not connect to the Graph API: {_describe(exc)}") from None
        except (httpx.TransportError, httpx.DecodingError) as exc:
            # The request may have been processed before the connection failed.
            raise TransientError(
                f"Graph API request failed in flight: {_describe(exc)}", maybe_processed=True
            ) from None
        return _parse(response)


def _parse(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except (ValueError, RecursionError):
        data = None
    return _answer(response.status_code, data, response.content, response.headers)


def _answer(status: int, data: Any, content: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
    """The body of a successful answer, or the error class the answer says."""
    success = 200 <= status < 300
    if success and isinstance(data, dict) and "error" not in data:
        return data
    if success and not isinstance(data, dict):
        raise UnexpectedResponseError(
            "Graph API answered success with an unreadable body", http_status=status
        )
    raise classify(status, data if data is not None else content, headers)


USER_AGENT = "bankside-messenger"


def _json_bytes(payload: Mapping[str, Any]) -> bytes:
    # As httpx encodes `json=`: compact, UTF-8, no NaN.
    return jsonlib.dumps(
        payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
    ).encode()


def _proof_query(creds: PageCredentials) -> str:
    return urlencode({"appsecret_proof": creds.appsecret_proof})


def _bearer(creds: PageCredentials) -> str:
    return f"Bearer {creds.access_token}"


def _proxied(base_url: str) -> bool:
    """Whether httpx would go through a proxy for this URL (it reads the same variables)."""
    parts = urlsplit(base_url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(parts.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(parts.hostname or "")


class _OneWrite(http.client.HTTPConnection):
    """An HTTP connection that writes a request's head and body in one send, where
    `http.client` writes them one after the other: one packet instead of two, and half
    the system calls, for each Send API call."""

    held: list[bytes] | None = None

    def send(self, data: Any) -> None:
        if self.held is not None and isinstance(data, bytes):
            self.held.append(data)
        else:
            super().send(data)

    def request_write(self, body: bytes) -> None:
        """`endheaders(body)`, the head and the body written together."""
        self.held = []
        try:
            self.endheaders(body)
            data = b"".join(self.held)
        finally:
            self.held = None
        super().send(data)


class _OneWriteTLS(_OneWrite, http.client.HTTPSConnection):
    """`_OneWrite` over TLS."""


class _SendPath:
    """POSTs to the Graph API over one keep-alive connection per calling thread.

    A connection is set up within `timeout_connect`; each read and write then has
    `timeout` seconds, as with httpx. A connection found closed by the server while it
    sat idle is replaced before use, so a request only fails in flight if it really was
    in flight. Failures map as in `GraphClient._call`: no connection is transient; a
    connection lost once the request went out is transient and may have been processed.
    """

    def __init__(self, base_url: str, *, timeout_connect: float, timeout: float) -> None:
        parts = urlsplit(base_url)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout_connect = timeout_connect
        self.timeout = timeout
        self.context = _ssl_context() if self.https else None
        self.local = threading.local()
        self.lock = threading.Lock()
        self.connections: set[_OneWrite] = set()

    def post(self, path: str, body: bytes, *, authorization: str) -> dict[str, Any]:
        conn = self._connection()
        try:
            conn.putrequest("POST", self.prefix + path, skip_accept_encoding=True)
            conn.putheader("User-Agent", USER_AGENT)
            conn.putheader("Authorization", authorization)
            conn.putheader("Accept", "*/*")
            conn.putheader("Content-Type", "application/json")
            conn.putheader("Content-Length", str(len(body)))
            conn.request_write(body)
            response = conn.getresponse()
            content = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            raise TransientError(
                f"Graph API request failed in flight: {_describe(exc)}", maybe_processed=True
            ) from None
        if response.will_close:
            self._drop(conn)
        try:
            data = jsonlib.loads(content)
        except (ValueError, RecursionError):
            data = None
        return _answer(response.status, data, content, dict(response.getheaders()))

    def _connection(self) -> _OneWrite:
        conn = getattr(self.local, "conn", None)
        if conn is not None and (conn.sock is None or _closed_while_idle(conn.sock)):
            self._drop(conn)
            conn = None
        if conn is None:
            if self.https:
                conn = _OneWriteTLS(
                    self.host, self.port, timeout=self.timeout_connect, context=self.context
                )
            else:
                conn = _OneWrite(self.host, self.port, timeout=self.timeout_connect)
            try:
                conn.connect()
            except OSError as exc:
                conn.close()
                raise TransientError(
                    f"could not connect to the Graph API: {_describe(exc)}"
                ) from None
            conn.sock.settimeout(self.timeout)
            self.local.conn = conn
            with self.lock:
                self.connections.add(conn)
        return conn

    def _drop(self, conn: _OneWrite) -> None:
        conn.close()
        if getattr(self.local, "conn", None) is conn:
            self.local.conn = None
        with self.lock:
            self.connections.discard(conn)

    def close(self) -> None:
        with self.lock:
            connections, self.connections = self.connections, set()
        for conn in connections:
            conn.close()


def _closed_while_idle(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed (or broken) by the server."""
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):
        return True


def _ssl_context() -> ssl.SSLContext:
    # The certificate authorities httpx verifies against.
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on certifi
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def _describe(exc: Exception) -> str:
    # `from None` above drops the httpx exception, whose request URL holds the token.
    return _SECRET_PARAM.sub(r"\1***", f"{type(exc).__name__}: {exc}")


def _template_info(data: Mapping[str, Any], *, default_name: str | None) -> TemplateInfo | None:
    template_id = data.get("id")
    if isinstance(template_id, int) and not isinstance(template_id, bool):
        template_id = str(template_id)
    if not isinstance(template_id, str) or not template_id:
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return TemplateInfo(
        id=template_id,
        name=text("name") or default_name,
        status=text("status"),
        category=text("category"),
        language=text("language"),
        rejected_reason=text("rejected_reason"),
    )


def _data_list(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("data")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


_PSID = re.compile(r"^[0-9]{1,32}$")


def _check_psid(psid: str) -> str:
    if not isinstance(psid, str) or not _PSID.match(psid):
        raise ValueError(f"a PSID is 1 to 32 digits, got {psid!r}")
    return psid


def _segment(value: str) -> str:
    if not value:
        raise ValueError("path segment must not be empty")
    return quote(value, safe="")


# Log redaction

_SECRET_PARAM = re.compile(r"((?:access_token|appsecret_proof|account_linking_token)=)[^&\s\"']+")
_PLAIN = (int, float, type(None))


class _RedactSecrets(logging.Filter):
    """Masks the Graph API's secrets in httpx's records, whatever the type of an argument
    (httpx passes the request's `httpx.URL`): an argument whose text holds one is replaced
    by its masked text."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            args = record.args if isinstance(record.args, tuple) else (record.args,)
            record.args = tuple(_masked(arg) for arg in args)
        if isinstance(record.msg, str):
            record.msg = _SECRET_PARAM.sub(r"\1***", record.msg)
        return True


def _masked(value: object) -> object:
    if isinstance(value, _PLAIN):
        return value
    text = str(value)
    masked = _SECRET_PARAM.sub(r"\1***", text)
    return masked if masked != text else value


_redaction_lock = threading.Lock()


def _install_log_redaction() -> None:
    with _redaction_lock:
        logger = logging.getLogger("httpx")
        if not any(isinstance(f, _RedactSecrets) for f in logger.filters):
            logger.addFilter(_RedactSecrets())


# Process-wide client

_client_lock = threading.Lock()
_client: tuple[tuple[int, str, str], GraphClient] | None = None


def get_client() -> GraphClient:
    """The process's shared client, built from Django settings on first use.

    Keyed on the process id, so a forked worker builds its own pool instead of sharing
    the parent's sockets; also rebuilt if the settings change (tests override them).
    """
    from django.conf import settings

    global _client
    base_url = getattr(settings, "MESSENGER_GRAPH_API_URL", "") or DEFAULT_GRAPH_API_URL
    version = getattr(settings, "MESSENGER_GRAPH_API_VERSION", "") or DEFAULT_GRAPH_API_VERSION
    key = (os.getpid(), base_url, version)
    with _client_lock:
        if _client is None or _client[0] != key:
            # A replaced client is left to the garbage collector rather than closed:
            # another thread may still be mid-request on it.
            _client = (key, GraphClient(base_url, version))
        return _client[1]


def _forget_client_after_fork() -> None:
    # The parent's sockets and lock state must not be reused in the child.
    global _client, _client_lock
    _client = None
    _client_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_client_after_fork)
