import hashlib
import hmac
import json
import logging
import os
from collections.abc import Callable

import httpx
import pytest

from messenger import builders
from messenger import client as client_module
from messenger.client import (
    GraphClient,
    PageCredentials,
    PageInfo,
    SendResult,
    TemplateInfo,
    UserProfile,
)
from messenger.errors import (
    BadRequestError,
    BadTokenError,
    ConfigError,
    LinkingTokenError,
    MessengerError,
    OutsideWindowError,
    PageRestrictedError,
    PersonUnavailableError,
    TagOveruseError,
    ThreadOwnedError,
    ThrottledError,
    TransientError,
    UnexpectedResponseError,
)

PAGE_ID = "1122334455"
TOKEN = "EAAG-page-token-secret"
SECRET = "app-secret-0123"
PROOF = hmac.new(SECRET.encode(), TOKEN.encode(), hashlib.sha256).hexdigest()
CREDS = PageCredentials(page_id=PAGE_ID, access_token=TOKEN, app_secret=SECRET)

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A MockTransport that answers with a fixed response and keeps every request."""

    def __init__(self, response: httpx.Response | Handler | Exception) -> None:
        self.requests: list[httpx.Request] = []
        self._response = response

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if isinstance(self._response, Exception):
            raise self._response
        if callable(self._response):
            return self._response(request)
        return self._response

    @property
    def last(self) -> httpx.Request:
        return self.requests[-1]


def make_client(
    response: httpx.Response | Handler | Exception, base_url: str = "https://graph.example"
) -> tuple[GraphClient, Recorder]:
    recorder = Recorder(response)
    client = GraphClient(base_url, "v23.0", transport=httpx.MockTransport(recorder))
    return client, recorder


def ok(body: object, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(200, json=body, headers=headers)


def meta_error(
    code: int,
    subcode: int | None = None,
    *,
    status: int = 400,
    message: str = "An error occurred",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    error: dict[str, object] = {
        "message": message,
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "AbCdEf123",
    }
    if subcode is not None:
        error["error_subcode"] = subcode
    return httpx.Response(status, json={"error": error}, headers=headers)


def assert_authenticated(request: httpx.Request) -> None:
    """The token in the Authorization header, never in the URL; the proof in the URL."""
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert "access_token" not in request.url.params
    assert TOKEN not in str(request.url)
    assert request.url.params["appsecret_proof"] == PROOF


# Credentials and construction


def test_appsecret_proof_is_hmac_sha256_of_token_keyed_by_secret():
    assert CREDS.appsecret_proof == PROOF
    assert len(PROOF) == 64


def test_credentials_repr_masks_token_and_secret():
    text = repr(CREDS) + str(CREDS)
    assert PAGE_ID in text
    assert TOKEN not in text
    assert SECRET not in text


def test_credentials_reject_empty_values():
    with pytest.raises(ValueError, match="access_token"):
        PageCredentials(page_id=PAGE_ID, access_token=" ", app_secret=SECRET)


@pytest.mark.parametrize(
    ("connect", "total"), [(31.0, 31.0), (5.0, 30.5), (0.0, 10.0), (-1.0, 10.0), (10.0, 5.0)]
)
def test_timeouts_outside_limits_are_refused(connect, total):
    with pytest.raises(ValueError):
        GraphClient("https://graph.example", "v23.0", timeout_connect=connect, timeout_total=total)


def test_timeouts_are_applied_to_the_pool():
    client = GraphClient("https://graph.example", "v23.0", timeout_connect=3.0, timeout_total=30.0)
    timeout = client._http.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3.0, 30.0, 30.0, 30.0)


@pytest.mark.parametrize("version", ["23.0", "v23", "latest", ""])
def test_malformed_api_version_is_refused(version):
    with pytest.raises(ValueError, match="api_version"):
        GraphClient("https://graph.example", version)


def test_base_url_path_prefix_is_kept():
    client, recorder = make_client(
        ok({"id": PAGE_ID, "name": "Bank"}), "http://sandbox:8000/graph/"
    )
    client.page_check(CREDS)
    assert recorder.last.url.path == f"/graph/v23.0/{PAGE_ID}"
    assert recorder.last.url.host == "sandbox"


# Send API


def test_send_posts_json_to_page_messages_with_proof():
    client, recorder = make_client(ok({"recipient_id": "PSID1", "message_id": "m_1"}))
    payload = builders.text_message("PSID1", "Your balance is €120.00")

    result = client.send(CREDS, payload)

    assert result == SendResult(recipient_id="PSID1", message_id="m_1")
    request = recorder.last
    assert request.method == "POST"
    assert request.url.scheme == "https"
    assert request.url.host == "graph.example"
    assert request.url.path == f"/v23.0/{PAGE_ID}/messages"
    assert_authenticated(request)
    assert set(request.url.params.keys()) == {"appsecret_proof"}
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == payload


def test_send_without_recipient_id_still_returns_message_id():
    client, _ = make_client(ok({"message_id": "m_2"}))
    result = client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert result == SendResult(recipient_id=None, message_id="m_2")


def test_send_success_without_message_id_is_unexpected_not_retryable():
    client, _ = make_client(ok({"recipient_id": "PSID1"}))
    with pytest.raises(UnexpectedResponseError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert info.value.retryable is False


def test_send_success_with_html_body_is_unexpected():
    client, _ = make_client(httpx.Response(200, text="<html>proxy</html>"))
    with pytest.raises(UnexpectedResponseError):
        client.send(CREDS, builders.text_message("PSID1", "hi"))


def test_send_refuses_payload_without_recipient():
    client, recorder = make_client(ok({}))
    with pytest.raises(ValueError, match="recipient"):
        client.send(CREDS, {"message": {"text": "hi"}})
    assert recorder.requests == []


def test_sender_action_posts_action_alone():
    client, recorder = make_client(ok({"recipient_id": "PSID1"}))
    client.sender_action(CREDS, "PSID1", "typing_on")
    assert recorder.last.url.path == f"/v23.0/{PAGE_ID}/messages"
    assert json.loads(recorder.last.content) == {
        "recipient": {"id": "PSID1"},
        "sender_action": "typing_on",
    }
    assert_authenticated(recorder.last)


# Account linking


@pytest.mark.parametrize(
    "body",
    [
        {"recipient": "PSID9", "id": PAGE_ID},
        {"recipient": {"id": "PSID9"}, "id": PAGE_ID},
        {"id": "PSID9"},
    ],
)
def test_psid_lookup_accepts_each_known_shape(body):
    client, recorder = make_client(ok(body))
    assert client.psid_for_linking_token(CREDS, "ALT-123") == "PSID9"
    request = recorder.last
    assert request.method == "GET"
    assert request.url.path == "/v23.0/me"
    assert request.url.params["fields"] == "recipient"
    assert request.url.params["account_linking_token"] == "ALT-123"
    assert_authenticated(request)


def test_psid_lookup_never_mistakes_the_page_id_for_a_psid():
    client, _ = make_client(ok({"id": PAGE_ID}))
    with pytest.raises(UnexpectedResponseError):
        client.psid_for_linking_token(CREDS, "ALT-123")


def test_psid_lookup_with_expired_token_raises_linking_token_error():
    client, _ = make_client(meta_error(10303, message="Invalid account_linking_token"))
    with pytest.raises(LinkingTokenError) as info:
        client.psid_for_linking_token(CREDS, "ALT-old")
    assert info.value.code == 10303
    assert "Log In" in info.value.user_message


def test_psid_lookup_with_a_short_timeout_gives_up_as_a_transient_error():
    client, recorder = make_client(httpx.ReadTimeout("slow"))
    with pytest.raises(TransientError):
        client.psid_for_linking_token(CREDS, "ALT-123", timeout=1.5)
    assert recorder.last.extensions["timeout"]["read"] == 1.5


def test_user_profile_reads_the_first_and_last_name_of_the_psid():
    client, recorder = make_client(ok({"first_name": "Ana", "last_name": "Souza", "id": "2468"}))
    assert client.user_profile(CREDS, "2468", timeout=1.0) == UserProfile("Ana", "Souza")
    request = recorder.last
    assert request.method == "GET"
    assert request.url.path == "/v23.0/2468"
    assert request.url.params["fields"] == "first_name,last_name"
    assert request.extensions["timeout"]["connect"] == 1.0
    assert_authenticated(request)


def test_user_profile_keeps_a_missing_last_name_missing():
    client, _ = make_client(ok({"first_name": "Ana", "id": "2468"}))
    assert client.user_profile(CREDS, "2468") == UserProfile("Ana", None)


def test_user_profile_without_any_name_raises():
    client, _ = make_client(ok({"id": "2468"}))
    with pytest.raises(UnexpectedResponseError):
        client.user_profile(CREDS, "2468")


def test_user_profile_the_page_may_not_read_raises_its_error():
    client, _ = make_client(meta_error(200, message="(#200) Missing permission"))
    with pytest.raises(MessengerError):
        client.user_profile(CREDS, "2468")


@pytest.mark.parametrize("psid", ["", "../me", "12 34", "1" * 33])
def test_user_profile_refuses_what_is_not_a_psid(psid):
    client, recorder = make_client(ok({"first_name": "Ana"}))
    with pytest.raises(ValueError):
        client.user_profile(CREDS, psid)
    assert recorder.requests == []


@pytest.mark.parametrize("body", [{"result": "unlink account success"}, {"success": True}])
def test_unlink_accepts_both_success_shapes(body):
    client, recorder = make_client(ok(body))
    client.unlink_account(CREDS, "PSID9")
    assert recorder.last.method == "POST"
    assert recorder.last.url.path == "/v23.0/me/unlink_accounts"
    assert json.loads(recorder.last.content) == {"psid": "PSID9"}
    assert_authenticated(recorder.last)


def test_unlink_without_confirmation_raises():
    client, _ = make_client(ok({"result": "something else"}))
    with pytest.raises(UnexpectedResponseError):
        client.unlink_account(CREDS, "PSID9")


# Page set-up


def test_page_check_returns_page_info():
    client, recorder = make_client(ok({"id": PAGE_ID, "name": "Riverside Bank"}))
    assert client.page_check(CREDS) == PageInfo(id=PAGE_ID, name="Riverside Bank")
    assert recorder.last.method == "GET"
    assert recorder.last.url.path == f"/v23.0/{PAGE_ID}"
    assert recorder.last.url.params["fields"] == "id,name"
    assert_authenticated(recorder.last)


def test_page_check_detects_token_of_another_page():
    client, _ = make_client(ok({"id": "999", "name": "Other"}))
    with pytest.raises(ConfigError, match="999"):
        client.page_check(CREDS)


def test_page_id_is_escaped_in_the_path():
    creds = PageCredentials(page_id="12/../me", access_token=TOKEN, app_secret=SECRET)
    client, recorder = make_client(ok({"id": "12/../me"}))
    client.page_check(creds)
    assert recorder.last.url.raw_path.startswith(b"/v23.0/12%2F..%2Fme?")


def test_subscribed_apps_set_sends_fields_as_query():
    client, recorder = make_client(ok({"success": True}))
    client.subscribed_apps_set(CREDS, ["messages", "messaging_account_linking"])
    request = recorder.last
    assert request.method == "POST"
    assert request.url.path == f"/v23.0/{PAGE_ID}/subscribed_apps"
    assert request.url.params["subscribed_fields"] == "messages,messaging_account_linking"
    assert_authenticated(request)


def test_subscribed_apps_set_without_success_raises():
    client, _ = make_client(ok({"success": False}))
    with pytest.raises(UnexpectedResponseError):
        client.subscribed_apps_set(CREDS, ["messages"])


@pytest.mark.parametrize("fields", [[], "messages", ["messages", "bad field"]])
def test_subscribed_apps_set_validates_fields(fields):
    client, recorder = make_client(ok({"success": True}))
    with pytest.raises(ValueError):
        client.subscribed_apps_set(CREDS, fields)
    assert recorder.requests == []


def test_subscribed_apps_get_lists_apps():
    body = {"data": [{"id": "42", "name": "bankside", "subscribed_fields": ["messages"]}]}
    client, recorder = make_client(ok(body))
    apps = client.subscribed_apps_get(CREDS)
    assert [(a.id, a.name, a.subscribed_fields) for a in apps] == [
        ("42", "bankside", ("messages",))
    ]
    assert recorder.last.method == "GET"
    assert recorder.last.url.path == f"/v23.0/{PAGE_ID}/subscribed_apps"


# Templates


def test_template_create_posts_utility_template():
    client, recorder = make_client(
        ok({"id": "778899", "status": "APPROVED", "category": "UTILITY"})
    )
    info = client.message_template_create(
        CREDS,
        name="bank_card_alert",
        language="en_US",
        body_text="Card ending {{1}} was charged {{2}}.",
        example_params=["1234", "€120.00"],
    )
    assert info == TemplateInfo(
        id="778899", name="bank_card_alert", status="APPROVED", category="UTILITY"
    )
    request = recorder.last
    assert request.method == "POST"
    assert request.url.path == f"/v23.0/{PAGE_ID}/message_templates"
    assert_authenticated(request)
    assert json.loads(request.content) == {
        "name": "bank_card_alert",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {
                "type": "BODY",
                "text": "Card ending {{1}} was charged {{2}}.",
                "example": {"body_text": [["1234", "€120.00"]]},
            }
        ],
    }


@pytest.mark.parametrize(
    ("body_text", "examples"),
    [("Charged {{1}} and {{3}}", ["a", "b"]), ("Charged {{1}}", []), ("No params", ["x"])],
)
def test_template_create_checks_placeholders_against_examples(body_text, examples):
    client, recorder = make_client(ok({"id": "1"}))
    with pytest.raises(ValueError):
        client.message_template_create(
            CREDS, name="alert", language="en", body_text=body_text, example_params=examples
        )
    assert recorder.requests == []


def test_template_status_by_id():
    client, recorder = make_client(
        ok({"id": "778899", "name": "bank_card_alert", "status": "PENDING"})
    )
    info = client.message_template_status(CREDS, "778899")
    assert (info.id, info.name, info.status) == ("778899", "bank_card_alert", "PENDING")
    assert recorder.last.url.path == "/v23.0/778899"
    assert "status" in recorder.last.url.params["fields"]
    assert_authenticated(recorder.last)


def test_template_status_by_name_picks_exact_match():
    body = {
        "data": [
            {"id": "1", "name": "bank_card_alert_v2", "status": "APPROVED"},
            {"id": "2", "name": "bank_card_alert", "status": "REJECTED", "rejected_reason": "X"},
        ]
    }
    client, recorder = make_client(ok(body))
    info = client.message_template_status(CREDS, "bank_card_alert")
    assert (info.id, info.status, info.rejected_reason) == ("2", "REJECTED", "X")
    assert recorder.last.url.path == f"/v23.0/{PAGE_ID}/message_templates"
    assert recorder.last.url.params["name"] == "bank_card_alert"


def test_template_status_unknown_name_raises():
    client, _ = make_client(ok({"data": []}))
    with pytest.raises(UnexpectedResponseError):
        client.message_template_status(CREDS, "missing")


# Error classification from realistic bodies


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (meta_error(1, message="An unknown error occurred", status=500), TransientError),
        (meta_error(2, message="Service temporarily unavailable", status=503), TransientError),
        (meta_error(4, message="(#4) Application request limit reached"), ThrottledError),
        (meta_error(17, message="(#17) User request limit reached"), ThrottledError),
        (meta_error(32, message="(#32) Page request limit reached"), ThrottledError),
        (meta_error(613, message="(#613) Calls to this api have exceeded"), ThrottledError),
        (meta_error(613, 2534040), ThrottledError),
        (meta_error(80006, message="(#80006) There have been too many messages"), ThrottledError),
        (meta_error(613, 2018338, message="Tag overuse"), TagOveruseError),
        (
            meta_error(10, 2018278, message="(#10) Outside of allowed window"),
            OutsideWindowError,
        ),
        (meta_error(10, 2534022), OutsideWindowError),
        (meta_error(10, 1893063, message="Page is restricted"), PageRestrictedError),
        (meta_error(551, message="This person isn't available right now."), PersonUnavailableError),
        (meta_error(551, 1545041), PersonUnavailableError),
        (meta_error(200, 1545041), PersonUnavailableError),
        (meta_error(10, 2018108), PersonUnavailableError),
        (meta_error(100, message="(#100) Invalid parameter"), BadRequestError),
        (meta_error(100, 2018001, message="No matching user found"), BadRequestError),
        (meta_error(190, 463, message="Error validating access token", status=401), BadTokenError),
        (meta_error(200, message="(#200) Requires pages_messaging permission"), ConfigError),
        (meta_error(200, 2018028), ConfigError),
        (meta_error(10, 2018065), ConfigError),
        (meta_error(10, 2018300, message="Thread owned by another app"), ThreadOwnedError),
        (meta_error(10303, message="Invalid account_linking_token"), LinkingTokenError),
        (meta_error(99999, message="Brand new error"), BadRequestError),
        (meta_error(99999, status=502), TransientError),
        (httpx.Response(502, text="<html>Bad Gateway</html>"), TransientError),
        (httpx.Response(500, content=b""), TransientError),
        (httpx.Response(429, text="slow down"), ThrottledError),
        (httpx.Response(404, text="not json"), BadRequestError),
        (httpx.Response(400, content=b"\xff\xfe\x00garbage"), BadRequestError),
        (ok({"error": {"code": 190, "message": "expired"}}), BadTokenError),
    ],
)
def test_errors_are_classified_from_the_body(response, expected):
    client, _ = make_client(response)
    with pytest.raises(MessengerError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert type(info.value) is expected
    assert info.value.http_status == response.status_code
    assert info.value.user_message


def test_error_carries_meta_fields():
    client, _ = make_client(meta_error(10, 2018278, message="(#10) Outside of allowed window"))
    with pytest.raises(OutsideWindowError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    error = info.value
    assert (error.code, error.subcode, error.fbtrace_id) == (10, 2018278, "AbCdEf123")
    assert error.message == "(#10) Outside of allowed window"
    assert error.error_type == "OAuthException"
    assert "utility" in error.user_message
    assert "AbCdEf123" in str(error)


def test_deprecated_tag_rejection_explains_the_2026_cutoff():
    client, _ = make_client(
        meta_error(100, message="(#100) The tag ACCOUNT_UPDATE is no longer supported")
    )
    with pytest.raises(BadRequestError) as info:
        client.send(CREDS, {"recipient": {"id": "PSID1"}, "message": {"text": "hi"}})
    assert "ACCOUNT_UPDATE" in info.value.user_message
    assert "utility template" in info.value.user_message


def test_throttle_wait_comes_from_business_use_case_header():
    usage = {
        PAGE_ID: [
            {"type": "messenger", "call_count": 100, "estimated_time_to_regain_access": 2},
            {"type": "pages", "call_count": 40, "estimated_time_to_regain_access": 5},
        ],
        "other": [{"type": "messenger", "estimated_time_to_regain_access": 0}],
    }
    client, _ = make_client(
        meta_error(80006, headers={"X-Business-Use-Case-Usage": json.dumps(usage)})
    )
    with pytest.raises(ThrottledError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert info.value.retry_after_seconds == 300.0


def test_throttle_wait_with_malformed_header_is_none():
    client, _ = make_client(meta_error(613, headers={"X-Business-Use-Case-Usage": "{not json"}))
    with pytest.raises(ThrottledError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert info.value.retry_after_seconds is None


def test_throttle_wait_falls_back_to_app_usage_header():
    client, _ = make_client(
        meta_error(
            4,
            headers={
                "X-App-Usage": json.dumps(
                    {"call_count": 100, "total_time": 20, "estimated_time_to_regain_access": 1}
                )
            },
        )
    )
    with pytest.raises(ThrottledError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert info.value.retry_after_seconds == 60.0


# Network failures


@pytest.mark.parametrize(
    ("exc", "maybe_processed"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), False),
        (httpx.ConnectTimeout("timed out"), False),
        (httpx.PoolTimeout("pool exhausted"), False),
        (httpx.ReadTimeout("timed out"), True),
        (httpx.WriteTimeout("timed out"), True),
        (httpx.ReadError("connection reset"), True),
        (httpx.RemoteProtocolError("peer closed connection"), True),
    ],
)
def test_network_failures_are_transient(exc, maybe_processed):
    client, _ = make_client(exc)
    with pytest.raises(TransientError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert info.value.retryable is True
    assert info.value.maybe_processed is maybe_processed
    assert info.value.__cause__ is None


def test_real_timeout_becomes_transient_error():
    """A real server that never answers: the read timeout must surface as TransientError."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(server.accept()[0]), daemon=True)
    thread.start()
    port = server.getsockname()[1]
    client = GraphClient(
        f"http://127.0.0.1:{port}", "v23.0", timeout_connect=0.2, timeout_total=0.3
    )
    try:
        with pytest.raises(TransientError) as info:
            client.send(CREDS, builders.text_message("PSID1", "hi"))
        assert info.value.maybe_processed is True
    finally:
        client.close()
        for conn in accepted:
            conn.close()
        server.close()


def test_a_send_writes_its_request_head_and_body_in_one_write(monkeypatch):
    """One write, so one packet: http.client on its own writes the head, then the body."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            received = b""
            while b"\r\n\r\n" not in received:
                received += conn.recv(65536)
            head, body = received.split(b"\r\n\r\n", 1)
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(body) < length:
                body += conn.recv(65536)
            content = b'{"recipient_id":"PSID1","message_id":"m.1"}'
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(content), content)
            )

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    caller = threading.get_ident()
    writes: list[bytes] = []
    sendall = socket.socket.sendall

    def counted(sock, data, *args):
        if threading.get_ident() == caller:
            writes.append(bytes(data))
        return sendall(sock, data, *args)

    monkeypatch.setattr(socket.socket, "sendall", counted)
    client = GraphClient(f"http://127.0.0.1:{server.getsockname()[1]}", "v23.0")
    try:
        result = client.send(CREDS, builders.text_message("PSID1", "hi"))
    finally:
        client.close()
        thread.join(5)
        server.close()

    assert result.message_id == "m.1"
    (write,) = writes
    assert write.startswith(f"POST /v23.0/{PAGE_ID}/messages?appsecret_proof=".encode())
    assert write.endswith(b'"message":{"text":"hi"}}')


def test_error_messages_never_contain_secrets():
    client, _ = make_client(
        httpx.ConnectError(f"failed for https://graph.example/?access_token={TOKEN}")
    )
    with pytest.raises(TransientError) as info:
        client.send(CREDS, builders.text_message("PSID1", "hi"))
    assert TOKEN not in str(info.value)


def test_httpx_request_log_masks_token_and_proof(caplog):
    client, _ = make_client(ok({"id": PAGE_ID}))
    with caplog.at_level(logging.INFO, logger="httpx"):
        client.page_check(CREDS)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "httpx")
    assert "HTTP Request" in logged
    assert TOKEN not in logged
    assert PROOF not in logged
    assert "appsecret_proof=" in logged


def test_a_token_in_any_url_object_httpx_logs_is_masked(caplog):
    make_client(ok({}))  # a client puts its filter on httpx's logger
    url = httpx.URL(f"https://g.example/v1/me?account_linking_token={TOKEN}&fields=recipient")
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"', "GET", url, "HTTP/1.1", 200, "OK"
        )
    (record,) = [r for r in caplog.records if r.name == "httpx"]
    assert TOKEN not in record.getMessage()
    assert "fields=recipient" in record.getMessage()


def test_redaction_filter_masks_url_arguments():
    record = logging.LogRecord(
        "httpx",
        logging.INFO,
        __file__,
        1,
        "HTTP Request: %s %s",
        ("GET", httpx.URL(f"https://g.example/v1/me?access_token={TOKEN}&appsecret_proof={PROOF}")),
        None,
    )
    assert client_module._RedactSecrets().filter(record) is True
    message = record.getMessage()
    assert TOKEN not in message
    assert PROOF not in message
    assert message == (
        "HTTP Request: GET https://g.example/v1/me?access_token=***&appsecret_proof=***"
    )


# Process-wide client


@pytest.fixture
def graph_settings(monkeypatch):
    from django.conf import settings

    if not settings.configured:
        settings.configure()
    monkeypatch.setattr(
        settings, "MESSENGER_GRAPH_API_URL", "http://sandbox.test/graph", raising=False
    )
    monkeypatch.setattr(settings, "MESSENGER_GRAPH_API_VERSION", "v21.0", raising=False)
    monkeypatch.setattr(client_module, "_client", None)
    return settings


def test_get_client_is_built_from_settings_and_shared(graph_settings):
    first = client_module.get_client()
    assert (first.base_url, first.api_version) == ("http://sandbox.test/graph", "v21.0")
    assert client_module.get_client() is first


def test_get_client_falls_back_to_defaults(graph_settings, monkeypatch):
    monkeypatch.setattr(graph_settings, "MESSENGER_GRAPH_API_URL", "")
    monkeypatch.delattr(graph_settings, "MESSENGER_GRAPH_API_VERSION")
    client = client_module.get_client()
    assert (client.base_url, client.api_version) == ("https://graph.facebook.com", "v27.0")


def test_get_client_builds_a_new_pool_in_another_process(graph_settings, monkeypatch):
    parent = client_module.get_client()
    monkeypatch.setattr(client_module.os, "getpid", lambda: -1)
    child = client_module.get_client()
    assert child is not parent
    assert client_module.get_client() is child


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_get_client_after_real_fork_is_a_fresh_client(graph_settings):
    parent = client_module.get_client()
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return into pytest
        code = 2
        try:
            code = 0 if client_module.get_client() is not parent else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert client_module.get_client() is parent
