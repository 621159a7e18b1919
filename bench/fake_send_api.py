"""A minimal stand-in for the Send API, for benchmarks: as little CPU per call as possible.

Answers every `POST …/messages` with `{"recipient_id", "message_id"}` over HTTP/1.1
keep-alive, and logs one line per call to the file given, so the benchmarks can measure
rates and latencies, and the chaos run can check what arrived, afterwards:

    <arrival time> <Page id> <mark> <recipient PSID> <answer> <message id>

The mark is the `bench-N` found in the message (its text or template parameters), `-`
if none; the answer is `ok`, `transient` or `throttled`; the message id (`mid`) is the
one answered and echoed, `-` for a failed call.

For the chaos run it can also fail calls the way the platform does, and reports them
in the log: `--transient SHARE` answers that share of calls, at random, with a transient
error (HTTP 500, code 2, or HTTP 503, code 1: not processed, to be retried);
`--throttle-every SECONDS --throttle-for SECONDS` throttles each Page (code 613, "calls
to this API have exceeded the rate limit") for a moment at that interval, each Page at
its own phase.

It echoes what it accepts, as Meta does (messenger-platform §2): with `--echo-targets
FILE`, a JSON object `{"<Page id>": {"url": webhook URL, "app_secret": …, "app_id": …}}`
(read again whenever a Page is missing from it, so the run can write it once its banks
exist), each accepted message's echo (`is_echo`, `app_id`, `mid` and the message's
`metadata`) is POSTed to that Page's webhook, signed with the app secret in
`X-Hub-Signature-256`, retried a few times if the bank does not answer 200.
`--echo-drop SHARE` drops that share of echoes, at random, and `--echo-delay SECONDS`
holds echoes back that long (`--echo-delay-share`: that share of them, at random; all by
default). Echoes are posted as through the bank's TLS proxy (`X-Forwarded-Proto: https`).
Every echo is logged to `LOGFILE.echoes`:

    <time> <Page id> <mid> <metadata or -> <posted|dropped|failed>

`--answer-ms MS` holds each answer back that long, as the Graph API takes its time to
answer (the call is logged when it arrives); a connection carries one call at a time, as
HTTP/1.1 does, so a sender needs as many connections as calls it wants in flight.

    python bench/fake_send_api.py PORT LOGFILE [--answer-ms 200] [--transient 0.15]
        [--throttle-every 4 --throttle-for 0.25] [--seed 1]
        [--echo-targets FILE [--echo-drop 0.05] [--echo-delay 0.5] [--echo-delay-share 1]]
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import signal
import time
import zlib
from urllib.parse import urlsplit

_PAGE = re.compile(rb"^POST /v[0-9.]+/([^/?]+)/messages")
_RECIPIENT = re.compile(rb'"recipient":\s*\{"id":\s*"([^"]+)"')
_MARK = re.compile(rb"bench-[0-9]+")
_METADATA = re.compile(rb'"metadata":\s*"([^"\\]{1,999})"')
# Seconds before each retry of an echo not answered 200 (Meta keeps retrying far longer):
# enough to outlast a database restart or a web process being restarted.
ECHO_RETRIES = (0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
_ids = itertools.count(1)

TRANSIENT = (
    (
        b"500 Internal Server Error",
        b'{"error":{"message":"An unexpected error has occurred. '
        b'Please retry your request later.","type":"OAuthException","code":2}}',
    ),
    (
        b"503 Service Unavailable",
        b'{"error":{"message":"An unknown error occurred","type":"OAuthException","code":1}}',
    ),
)
THROTTLED = (
    b"400 Bad Request",
    b'{"error":{"message":"(#613) Calls to this api have exceeded the rate limit.",'
    b'"type":"OAuthException","code":613}}',
)


class Faults:
    def __init__(self, transient: float, every: float, length: float, seed: int | None) -> None:
        self.transient = transient
        self.every = every
        self.length = length
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security

    def answer(self, page: bytes) -> tuple[str, bytes, bytes] | None:
        """(what, status line, body) of an injected failure, or None to answer success."""
        if self.every > 0:
            phase = (zlib.crc32(page) % 1000) / 1000 * self.every
            if (time.time() + phase) % self.every < self.length:
                return ("throttled", *THROTTLED)
        if self.transient > 0 and self.random.random() < self.transient:
            return ("transient", *self.random.choice(TRANSIENT))
        return None


class Echoes:
    """Echoes of accepted messages, POSTed to the banks' webhooks as Meta would."""

    def __init__(
        self,
        targets: str,
        drop: float,
        delay: float,
        log,
        seed: int | None,
        delay_share: float = 1.0,
    ) -> None:
        self.path = targets
        self.drop = drop
        self.delay = delay
        self.delay_share = delay_share
        self.log = log
        self.random = random.Random(None if seed is None else seed + 1)  # noqa: S311
        self.targets: dict[str, dict] = {}
        self.read_at = 0.0
        self.tasks: set[asyncio.Task] = set()

    def target(self, page: str) -> dict | None:
        if page not in self.targets and time.monotonic() - self.read_at > 0.5:
            self.read_at = time.monotonic()
            with contextlib.suppress(OSError, ValueError), open(self.path) as file:
                self.targets = json.load(file)
        return self.targets.get(page)

    def send(self, page: str, psid: str, mid: str, metadata: str | None) -> None:
        target = self.target(page)
        if target is None:
            return
        if self.drop > 0 and self.random.random() < self.drop:
            self.write(page, mid, metadata, "dropped")
            return
        delay = self.delay if self.random.random() < self.delay_share else 0.0
        task = asyncio.create_task(self.post(target, page, psid, mid, metadata, delay))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def post(
        self, target: dict, page: str, psid: str, mid: str, metadata: str | None, delay: float
    ):
        if delay > 0:
            await asyncio.sleep(delay)
        now = int(time.time() * 1000)
        message = {"is_echo": True, "app_id": int(target["app_id"]), "mid": mid}
        if metadata is not None:
            message["metadata"] = metadata
        event = {
            "sender": {"id": page},
            "recipient": {"id": psid},
            "timestamp": now,
            "message": message,
        }
        body = json.dumps(
            {"object": "page", "entry": [{"id": page, "time": now, "messaging": [event]}]},
            separators=(",", ":"),
        ).encode()
        signature = hmac.new(target["app_secret"].encode(), body, hashlib.sha256).hexdigest()
        for wait in (0.0, *ECHO_RETRIES):
            await asyncio.sleep(wait)
            # A web process killed mid-request closes the connection without an answer.
            with contextlib.suppress(OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                if await _post(target["url"], body, signature) == 200:
                    self.write(page, mid, metadata, "posted")
                    return
        self.write(page, mid, metadata, "failed")

    def write(self, page: str, mid: str, metadata: str | None, what: str) -> None:
        self.log.write(f"{time.time():.6f} {page} {mid} {metadata or '-'} {what}\n")


async def _post(url: str, body: bytes, signature: str) -> int:
    """POST over plain HTTP/1.1, one connection per echo; returns the status code."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError("echo targets are plain http:// URLs")
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            f"X-Hub-Signature-256: sha256={signature}\r\nX-Forwarded-Proto: https\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), timeout=10)
        return int(status_line.split()[1])
    finally:
        writer.close()


async def handle(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    log,
    faults,
    echoes=None,
    answer_after: float = 0.0,
) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            body = await reader.readexactly(length) if length else b""
            page = _PAGE.match(head)
            recipient = _RECIPIENT.search(body)
            mark = _MARK.search(body)
            failure = faults.answer(page.group(1) if page else b"-") if faults else None
            mid = None if failure else f"m_{os.getpid()}_{next(_ids)}"
            log.write(
                f"{time.time():.6f} {page.group(1).decode() if page else '-'} "
                f"{mark.group(0).decode() if mark else '-'} "
                f"{recipient.group(1).decode() if recipient else '-'} "
                f"{failure[0] if failure else 'ok'} {mid or '-'}\n"
            )
            if failure:
                status, payload = failure[1], failure[2]
            else:
                status = b"200 OK"
                payload = (
                    b'{"recipient_id":"'
                    + (recipient.group(1) if recipient else b"")
                    + b'","message_id":"'
                    + mid.encode()
                    + b'"}'
                )
                if echoes is not None and page and recipient:
                    metadata = _METADATA.search(body)
                    echoes.send(
                        page.group(1).decode(),
                        recipient.group(1).decode(),
                        mid,
                        metadata.group(1).decode() if metadata else None,
                    )
            if answer_after > 0:
                await asyncio.sleep(answer_after)
            writer.write(
                b"HTTP/1.1 "
                + status
                + b"\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, path: str, faults: Faults | None, args=None) -> None:
    answer_after = getattr(args, "answer_ms", 0.0) / 1000
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    targets = getattr(args, "echo_targets", None)
    with open(path, "a", buffering=1 << 16) as log, open(path + ".echoes", "a") as echo_log:
        echoes = (
            Echoes(
                targets,
                args.echo_drop,
                args.echo_delay,
                echo_log,
                args.seed,
                args.echo_delay_share,
            )
            if targets
            else None
        )
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, log, faults, echoes, answer_after),
            "127.0.0.1",
            port,
            backlog=1024,
        )
        async with server:
            while not stop.is_set():
                log.flush()
                echo_log.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
        log.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("log")
    parser.add_argument("--answer-ms", type=float, default=0.0)
    parser.add_argument("--transient", type=float, default=0.0)
    parser.add_argument("--throttle-every", type=float, default=0.0)
    parser.add_argument("--throttle-for", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--echo-targets", default=None)
    parser.add_argument("--echo-drop", type=float, default=0.0)
    parser.add_argument("--echo-delay", type=float, default=0.0)
    parser.add_argument("--echo-delay-share", type=float, default=1.0)
    args = parser.parse_args()
    if not 0 <= args.answer_ms <= 60_000:
        parser.error("--answer-ms takes 0 to 60000 milliseconds")
    if not 0 <= args.echo_drop <= 1 or args.echo_delay < 0 or not 0 <= args.echo_delay_share <= 1:
        parser.error(
            "--echo-drop and --echo-delay-share are shares from 0 to 1, --echo-delay seconds"
        )
    injecting = args.transient > 0 or args.throttle_every > 0
    faults = (
        Faults(args.transient, args.throttle_every, args.throttle_for, args.seed)
        if injecting
        else None
    )
    asyncio.run(main(args.port, args.log, faults, args))
