import json
import logging

from pythonjsonlogger.json import JsonFormatter

from bankside import context
from bankside.logging import RequestContextFilter, SecretRedactingFilter, redact


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


def test_card_numbers_never_reach_the_log_even_inside_a_url():
    line = render(make_record('"PUT %s HTTP/1.1" 400', ("/api/v1/customers/4111 1111 1111 1111",)))

    assert "4111" not in line.replace("[redacted-number]", "")
    assert "[redacted-number]" in line


def test_short_numbers_stay_readable():
    line = render(make_record("order %s for account •••• %s", ("A-20261123-7781", "4821")))

    assert "A-20261123-7781" in line and "4821" in line
