"""gunicorn's access log, as production runs it (gunicorn.conf.py): a line a request, with
its request id, and no card number or token a client put in a URL or a header."""

import json
import os
import runpy
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from gunicorn.config import Config

from core.access_log import AccessLogger

ROOT = Path(__file__).resolve().parents[2]
CARD = "4111111111111111"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def served(tmp_path):
    """gunicorn started from the project's root, as the Dockerfile starts it (its
    configuration file read from there), on a port of its own; what it wrote so far."""
    port = free_port()
    out = (tmp_path / "gunicorn.out").open("w+")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bankside.settings.test", "LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                out.seek(0)
                pytest.fail(f"gunicorn did not start:\n{out.read()}")
            time.sleep(0.1)

    opener = urllib.request.build_opener(_NoRedirects)

    def get(path: str, **headers) -> int:
        """The status of a GET (a redirect is answered, not followed)."""
        request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers=headers)
        try:
            with opener.open(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    def written() -> str:
        out.flush()
        out.seek(0)
        return out.read()

    yield SimpleNamespace(get=get, written=written, process=process)
    process.terminate()
    process.wait(20)
    out.close()


def access_lines(text: str) -> list[dict]:
    lines = []
    for line in text.splitlines():
        if line.startswith("{") and '"gunicorn.access"' in line:
            lines.append(json.loads(line))
    return lines


def wait_for_lines(served, count: int) -> list[dict]:
    deadline = time.monotonic() + 10
    while len(lines := access_lines(served.written())) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return lines


def test_each_request_is_one_json_line_with_the_request_id_it_was_answered_with(served):
    status = served.get("/health/live", **{"X-Request-ID": "core-req-000123"})

    (line,) = wait_for_lines(served, 1)
    assert status == 200
    assert line["method"] == "GET"
    assert line["path"] == "/health/live"
    assert line["status"] == 200
    assert line["request_id"] == "core-req-000123"
    assert line["bytes"] > 0
    assert line["duration_ms"] >= 0


def test_card_numbers_and_tokens_in_urls_and_headers_never_reach_the_access_log(served):
    served.get(f"/api/v1/events/{CARD}")
    served.get("/api/v1/events/4111%201111%201111%201111")  # escaped spaces between groups
    served.get(
        "/link/start?account_linking_token=ALT-s3cret&redirect_uri=https%3A%2F%2Fm.me",
        Referer="https://bank.example/login?account_linking_token=REF-s3cret",
        **{"User-Agent": f"core/1.0 card={CARD}"},
    )
    served.get("/webhooks/messenger/harbour/?hub.mode=subscribe&hub.verify_token=VT-s3cret")

    lines = wait_for_lines(served, 4)
    written = served.written()
    assert len(lines) == 4
    for secret in (CARD, "4111 1111 1111 1111", "ALT-s3cret", "REF-s3cret", "VT-s3cret"):
        assert secret not in written
    assert lines[0]["path"] == "/api/v1/events/[redacted-number]"
    assert lines[1]["path"] == "/api/v1/events/[redacted-number]"
    assert "account_linking_token=[redacted]" in lines[2]["path"]
    assert "redirect_uri=https://m.me" in lines[2]["path"]
    assert lines[2]["referer"].endswith("account_linking_token=[redacted]")
    assert "hub.mode=subscribe" in lines[3]["path"]


def test_invitation_tokens_and_sign_in_codes_never_reach_any_log_line(served):
    invitation = "Zq8v-invitation-s3cret_0123456789abcdefghijklmn"
    served.get(f"/staff/invitations/{invitation}/")
    served.get(
        "/link/harbour/oidc/callback?state=STATE-s3cret&code=CODE-s3cret&iss=https%3A%2F%2Fidp",
        Referer=f"https://bank.example/staff/invitations/{invitation}/",
    )
    served.get(f"/staff/invitations/{invitation.replace('-', '%2D')}/")  # escaped in the path

    lines = wait_for_lines(served, 3)
    written = served.written()
    assert len(lines) == 3
    for secret in (invitation, "STATE-s3cret", "CODE-s3cret", "Zq8v%2Dinvitation"):
        assert secret not in written
    assert lines[0]["path"] == "/staff/invitations/[redacted]/"
    assert lines[1]["path"].startswith(
        "/link/harbour/oidc/callback?state=[redacted]&code=[redacted]&iss=https://idp"
    )
    assert lines[1]["referer"] == "https://bank.example/staff/invitations/[redacted]/"
    assert lines[2]["path"] == "/staff/invitations/[redacted]/"


def logger(log_format: str, monkeypatch) -> AccessLogger:
    monkeypatch.setenv("LOG_FORMAT", log_format)
    config = Config()
    config.set("accesslog", "-")
    return AccessLogger(config)


def answered(status: str = "404 Not Found", request_id: str | None = "abc12345"):
    headers = [("Content-Type", "text/html")]
    if request_id:
        headers.append(("X-Request-ID", request_id))
    return SimpleNamespace(status=status, sent=179, headers=headers)


def request(target: str, **extra) -> dict:
    """A request's environ as gunicorn makes it, `target` as sent."""
    return {
        "REQUEST_METHOD": "GET",
        "RAW_URI": target,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "10.1.2.3",
        **extra,
    }


def test_a_line_break_a_client_sends_stays_inside_its_line(monkeypatch):
    for log_format in ("json", "console"):
        line = logger(log_format, monkeypatch).access_line(
            answered(), request("/a\nforged line?q=%0Aforged"), timedelta(milliseconds=3)
        )

        assert "\n" not in line
        assert "forged line" in line


def test_the_target_is_decoded_once_and_headers_are_decoded_before_masking(monkeypatch):
    line = json.loads(
        logger("json", monkeypatch).access_line(
            answered(),
            request(
                "/files/%2541",
                HTTP_REFERER="https://bank.example/find?card=4111%201111%201111%201111",
                HTTP_USER_AGENT="probe/2 (4111%2D1111%2D1111%2D1111)",
            ),
            timedelta(0),
        )
    )

    assert line["path"] == "/files/%41"
    assert line["referer"] == "https://bank.example/find?card=[redacted-number]"
    assert line["user_agent"] == "probe/2 ([redacted-number])"


def test_the_console_format_is_apaches_combined_with_duration_and_request_id(monkeypatch):
    line = logger("console", monkeypatch).access_line(
        answered(),
        request("/caf\xc3\xa9?n=1", HTTP_USER_AGENT="probe/2"),  # UTF-8 as WSGI gives it
        timedelta(milliseconds=12, microseconds=345),
    )

    address, rest = line.split(" - - [", 1)
    assert address == "10.1.2.3"
    assert rest.split("] ", 1)[1] == (
        '"GET /café?n=1 HTTP/1.1" 404 179 "-" "probe/2" 12.3ms abc12345'
    )


def test_a_request_answered_without_a_request_id_has_none(monkeypatch):
    line = json.loads(
        logger("json", monkeypatch).access_line(
            answered("400 Bad Request", request_id=None), request("/"), timedelta(0)
        )
    )

    assert line["request_id"] is None
    assert line["status"] == 400


@pytest.mark.parametrize("value", ["0", "-1", "two", "65"])
def test_the_configuration_refuses_a_worker_count_out_of_range(monkeypatch, value):
    monkeypatch.setenv("WEB_CONCURRENCY", value)

    with pytest.raises(SystemExit, match="WEB_CONCURRENCY must be a whole number from 1 to 64"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_configuration_serves_the_application_with_this_access_log(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WEB_THREADS", "8")

    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))

    assert config["wsgi_app"] == "bankside.wsgi:application"
    assert (config["workers"], config["threads"]) == (3, 8)
    assert config["accesslog"] == "-"
    assert config["logger_class"] == "core.access_log.AccessLogger"
