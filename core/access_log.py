"""gunicorn's access log, one line a request, with nothing in it a log must not hold.

gunicorn's own access log writes the request line, the referer and the user agent as the
client sent them. Here those are the bank's customers' and its core's: a card number in a
path (`/api/v1/events/<an id>`), an account-linking token in a query string or in the
referer of the linking page, a webhook's verify token. This logger writes each line
through the same redaction as every other log line (`core.logging.redact_text`),
after decoding percent-escapes, so an escaped number cannot slip past it, and with the
request id the API answered with, so an access line leads to the request's own logs and
audit entries.

With `LOG_FORMAT=json` (production's default) a line is a JSON object, like every other
log line; otherwise Apache's combined format followed by the duration and the request id.
Either way a line costs a little less than gunicorn's own format, which builds some
thirty fields and a dictionary of every header for each request.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from gunicorn.glogging import Logger

if TYPE_CHECKING:
    from gunicorn.config import Config
    from gunicorn.http import Request
    from gunicorn.http.wsgi import Response

from core.logging import redact_text

REQUEST_ID_HEADER = "x-request-id"


def readable(raw: str) -> str:
    """A request target or header as the server gives it (bytes as Latin-1, possibly
    %-escaped) decoded once, as the UTF-8 it was, then redacted."""
    if "%" in raw:
        raw = unquote(raw, encoding="latin-1")
    if not raw.isascii():
        raw = raw.encode("latin-1", "replace").decode("utf-8", "replace")
    return redact_text(raw)


class AccessLogger(Logger):
    """gunicorn's `Logger` with its access lines written by `access_line`."""

    def setup(self, cfg: Config) -> None:
        super().setup(cfg)
        self.as_json = os.environ.get("LOG_FORMAT", "json") == "json"
        self._stamped = (-1, "")  # (a second, its time formatted): replaced, never changed

    def access(
        self, resp: Response, req: Request, environ: Mapping[str, Any], request_time: timedelta
    ) -> None:
        if not self.access_log_enabled:
            return
        try:
            self.access_log.info(self.access_line(resp, environ, request_time))
        except Exception:  # noqa: BLE001 - a line that cannot be written never fails a request
            self.exception("The access line could not be written")

    def access_line(
        self, resp: Response, environ: Mapping[str, Any], request_time: timedelta
    ) -> str:
        """The line for one request: who, what, the answer, how long, its request id."""
        get = environ.get
        # The target as sent (PATH_INFO is already decoded once: decoding it again would
        # log `%2541` as `A`).
        path = readable(get("RAW_URI", ""))
        status = str(resp.status).split(None, 1)[0]
        request_id = next(
            (value for name, value in resp.headers if name.lower() == REQUEST_ID_HEADER),
            None,
        )
        milliseconds = round(request_time.total_seconds() * 1000, 1)
        referer = readable(get("HTTP_REFERER", ""))
        agent = readable(get("HTTP_USER_AGENT", ""))
        if self.as_json:
            return json.dumps(
                {
                    "time": self._time(),
                    "level": "INFO",
                    "logger": "gunicorn.access",
                    "remote_addr": get("REMOTE_ADDR"),
                    "method": get("REQUEST_METHOD"),
                    "path": path,
                    "protocol": get("SERVER_PROTOCOL"),
                    "status": int(status) if status.isdigit() else status,
                    "bytes": resp.sent,
                    "duration_ms": milliseconds,
                    "referer": referer,
                    "user_agent": agent,
                    "request_id": request_id,
                },
                ensure_ascii=False,
            )
        quoted = [
            json.dumps(text, ensure_ascii=False)
            for text in (
                f"{get('REQUEST_METHOD')} {path} {get('SERVER_PROTOCOL')}",
                referer or "-",
                agent or "-",
            )
        ]
        return (
            f"{get('REMOTE_ADDR', '-')} - - [{self._time()}] {quoted[0]} {status} "
            f"{resp.sent} {quoted[1]} {quoted[2]} {milliseconds}ms {request_id or '-'}"
        )

    def _time(self) -> str:
        """The time now: ISO 8601 in UTC to the millisecond for JSON, the common log
        format to the second otherwise; the part up to the second formatted once a
        second."""
        now = time.time()
        second, stamp = self._stamped
        if int(now) != second:
            second = int(now)
            moment = time.gmtime(second)
            stamp = (
                time.strftime("%Y-%m-%dT%H:%M:%S", moment)
                if self.as_json
                else time.strftime("%d/%b/%Y:%H:%M:%S +0000", moment)
            )
            self._stamped = (second, stamp)
        if self.as_json:
            return f"{stamp}.{int((now - second) * 1000):03d}Z"
        return stamp
