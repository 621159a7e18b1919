import json
import logging

import httpx
import pytest
from pythonjsonlogger.json import JsonFormatter

from core import context
from core.logging import RequestContextFilter, SecretRedactingFilter, redact


def render(record: logging.LogRecord) -> str:
    for log_filter in (RequestContextFilter(), SecretRedactingFilter()):
        log_filter.filter(record)
    return JsonFormatter("%(levelname)s %(message)s %(request_id)s").format(record)


def make_record(msg, args=(), **extra):
    record = logging.LogRecord("bankside.test", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_tokens_in_urls_and_headers_never_reach_the_log():
    line = render(
        make_record(
            "GET %s failed; headers %s",
            (
                "https://graph.facebook.com/v23.0/me?access_token=EAAB123secret&appsecret_proof=ab12",
                {"Authorization": "Bearer bk_live_abcdef", "Accept": "application/json"},
            ),
        )
    )

    assert "EAAB123secret" not in line
    assert "ab12" not in line
    assert "bk_live_abcdef" not in line
    assert "application/json" in line


def test_structured_extra_fields_are_redacted_by_name():
    line = json.loads(render(make_record("configured", app_secret="s3cr3t", page_id="1234567890")))

    assert line.get("app_secret") == "[redacted]"
    assert line.get("page_id") == "1234567890"


def test_log_lines_carry_the_current_request_id():
    token = context.bind(context.RequestContext("req-abcdef12", None))
    try:
        line = json.loads(render(make_record("hello")))
    finally:
        context.reset(token)

    assert line["request_id"] == "req-abcdef12"


def test_redact_keeps_non_secret_structure():
    value = {"password": "hunter22", "items": [{"client_secret": "x"}, "password=abc&x=1"]}

    assert redact(value) == {
        "password": "[redacted]",
        "items": [{"client_secret": "[redacted]"}, "password=[redacted]&x=1"],
    }


def test_a_secret_named_in_any_case_is_masked_whatever_the_letters():
    """Case is ignored as the pattern ignores it, non-ASCII letters that match included
    (the long s, the Kelvin sign), with or without a space before the value."""
    value = ["ACCESS_TOKEN: abc", "Pa\u017fsword=hunter22", "api_\u212aey=zz", "Token = t0k"]

    assert redact(value) == [
        "ACCESS_TOKEN: [redacted]",
        "Pa\u017fsword=[redacted]",
        "api_\u212aey=[redacted]",
        "Token = [redacted]",
    ]


def test_card_numbers_never_reach_the_log_even_inside_a_url():
    line = render(make_record('"PUT %s HTTP/1.1" 400', ("/api/v1/customers/4111 1111 1111 1111",)))

    assert "4111" not in line.replace("[redacted-number]", "")
    assert "[redacted-number]" in line


def test_short_numbers_stay_readable():
    line = render(make_record("order %s for account •••• %s", ("A-20261123-7781", "4821")))

    assert "A-20261123-7781" in line and "4821" in line


INVITATION = "kJ3v9Qx_invitation-token-Zr8w2LmN0pT4sY6uB1cD5eF7gH"


@pytest.mark.django_db
def test_a_staff_invitation_token_in_a_path_never_reaches_the_log(client, caplog):
    with caplog.at_level(logging.INFO):
        response = client.get(f"/staff/invitations/{INVITATION}/")

    assert response.status_code == 404
    assert "/staff/invitations/[redacted]/" in caplog.text  # Django's "Not Found: <path>"
    assert INVITATION not in caplog.text


def test_an_openid_callbacks_code_and_state_never_reach_the_log(caplog):
    url = "https://bank.example/link/harbour/oidc/callback?state=st-s3cret&code=co-s3cret&x=1"
    with caplog.at_level(logging.INFO):
        logging.getLogger("linking.oidc").warning("callback refused: %s", url)

    assert "co-s3cret" not in caplog.text and "st-s3cret" not in caplog.text
    assert "callback?state=[redacted]&code=[redacted]&x=1" in caplog.text


def test_secrets_in_arguments_of_any_type_never_reach_the_log(caplog):
    url = httpx.URL("https://bank.example/callback?token=tk-s3cret&page=2")
    with caplog.at_level(logging.INFO):
        log = logging.getLogger("conversation.callbacks")
        log.info("POST %s answered %d", url, 502)
        log.info("card %d on file", 4111111111111111)
        log.info(httpx.URL("https://bank.example/staff/invitations/inv-s3cret/"))

    for secret in ("tk-s3cret", "4111111111111111", "inv-s3cret"):
        assert secret not in caplog.text
    assert "callback?token=[redacted]&page=2 answered 502" in caplog.text


def test_httpx_request_lines_carry_no_token_of_any_url(caplog):
    transport = httpx.MockTransport(lambda request: httpx.Response(204))
    with caplog.at_level(logging.INFO, logger="httpx"), httpx.Client(transport=transport) as http:
        http.post("https://bank.example/hooks?api_key=ak-s3cret&signing_secret=ss-s3cret")

    (line,) = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert line.startswith("HTTP Request: POST https://bank.example/hooks?api_key=[redacted]")
    assert "ak-s3cret" not in line and "ss-s3cret" not in line


def test_a_traceback_carries_no_secret(caplog):
    with caplog.at_level(logging.INFO):
        try:
            raise ValueError("GET https://graph.example/me?access_token=EAAB-s3cret failed")
        except ValueError:
            logging.getLogger("notifications.tasks").exception("send failed")

    assert "Traceback" in caplog.text
    assert "EAAB-s3cret" not in caplog.text


def test_a_card_number_next_to_other_digits_never_reaches_the_log(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("bankside.test").info("ref 1234 5678 9012 3 4111 1111 1111 1111 end")

    assert "1111" not in caplog.text
    assert "ref [redacted-number] [redacted-number] end" in caplog.text
