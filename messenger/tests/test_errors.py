import json

import pytest

from messenger.errors import (
    BadRequestError,
    ConfigError,
    OutsideWindowError,
    PersonUnavailableError,
    TagOveruseError,
    ThrottledError,
    TransientError,
    classify,
    error_kind,
    retry_after_from_headers,
)


def body(code, subcode=None, message="x"):
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "T"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


def test_classify_accepts_bytes_str_and_dict():
    raw = json.dumps(body(190))
    assert [type(classify(400, b)).__name__ for b in (raw.encode(), raw, json.loads(raw))] == [
        "BadTokenError"
    ] * 3


def test_subcode_wins_over_code():
    assert isinstance(classify(400, body(200, 1545041)), PersonUnavailableError)
    assert not isinstance(classify(400, body(200, 1545041)), ConfigError)


def test_tag_overuse_is_not_a_plain_throttle():
    error = classify(400, body(613, 2018338))
    assert isinstance(error, TagOveruseError)
    assert not isinstance(error, ThrottledError)
    assert error.retryable is False


def test_codes_sent_as_strings_are_understood():
    assert isinstance(classify(400, body("551", "1545041")), PersonUnavailableError)


@pytest.mark.parametrize(
    "raw", [None, b"", b"null", b"[1,2]", b'{"error": 5}', b"\x80\x81", b"[" * 100_000]
)
def test_unreadable_bodies_fall_back_to_status(raw):
    assert type(classify(503, raw)) is TransientError
    assert type(classify(400, raw)) is BadRequestError


def test_oauth_style_string_error_keeps_message():
    error = classify(400, {"error": "invalid_request", "error_description": "bad"})
    assert type(error) is BadRequestError
    assert error.message == "invalid_request"


def test_unrelated_message_does_not_mention_tags():
    error = classify(400, body(100, message="(#100) Param recipient[id] must be a valid ID"))
    assert "ACCOUNT_UPDATE" not in error.user_message


def test_retry_after_takes_longest_wait_in_seconds():
    header = json.dumps(
        {
            "1": [{"estimated_time_to_regain_access": 1}],
            "2": [{"estimated_time_to_regain_access": 7}, {"estimated_time_to_regain_access": 3}],
        }
    )
    assert retry_after_from_headers({"x-business-use-case-usage": header}) == 420.0


@pytest.mark.parametrize(
    "header",
    [
        "{broken",
        "[]",
        '{"1": [{"estimated_time_to_regain_access": "soon"}]}',
        '{"1": [{"estimated_time_to_regain_access": 0}]}',
        '{"1": "nope"}',
    ],
)
def test_retry_after_unusable_header_is_none(header):
    assert retry_after_from_headers({"X-Business-Use-Case-Usage": header}) is None


def test_retry_after_falls_back_to_retry_after_header():
    assert retry_after_from_headers({"Retry-After": "12"}) == 12.0
    assert retry_after_from_headers({}) is None


def test_throttled_error_from_429_reads_headers():
    error = classify(
        429,
        b"",
        {"X-Business-Use-Case-Usage": '{"1":[{"estimated_time_to_regain_access":2}]}'},
    )
    assert isinstance(error, ThrottledError)
    assert error.retry_after_seconds == 120.0


def test_wrong_app_secret_proof_is_a_configuration_error():
    from messenger.errors import ConfigError, classify

    error = classify(
        400,
        {
            "error": {
                "message": "Invalid appsecret_proof provided in the API argument",
                "type": "GraphMethodException",
                "code": 100,
            }
        },
    )

    assert isinstance(error, ConfigError)
    assert "app secret" in error.user_message


def test_missing_access_token_is_a_token_error():
    from messenger.errors import BadTokenError, classify

    error = classify(
        400, {"error": {"message": "An active access token must be used", "code": 2500}}
    )

    assert isinstance(error, BadTokenError)


def test_an_error_kind_names_the_class_and_codes_but_never_the_text():
    error = OutsideWindowError(
        "Message to Ana Silva failed: (#10) outside the window", code=10, http_status=400
    )
    assert error_kind(error) == "OutsideWindowError (#10, HTTP 400)"
    assert error_kind(TimeoutError("read timed out for Ana")) == "TimeoutError"
