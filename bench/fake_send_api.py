"""A minimal stand-in for the Send API, for benchmarks: as little CPU per call as possible.

Answers every `POST …/messages` with `{"recipient_id", "message_id"}` over HTTP/1.1
keep-alive, and logs one line per call to the file given, so the benchmarks can measure
rates and latencies, and the chaos run can check what arrived, afterwards:

    <arrival time> <Page id> <mark> <recipient PSID> <answer>

The mark is the `bench-N` found in the message (its text or template parameters), `-`
if none; the answer is `ok`, `transient` or `throttled`.

For the chaos run it can also fail calls the way the platform does, and reports them
in the log: `--transient SHARE` answers that share of calls, at random, with a transient
error (HTTP 500, code 2, or HTTP 503, code 1: not processed, to be retried);
`--throttle-every SECONDS --throttle-for SECONDS` throttles each Page (code 613, "calls
to this API have exceeded the rate limit") for a moment at that interval, each Page at
its own phase.

    python bench/fake_send_api.py PORT LOGFILE [--transient 0.15]
        [--throttle-every 4 --throttle-for 0.25] [--seed 1]
"""

import argparse
import asyncio
import contextlib
import itertools
import random
import re
import signal
import time
import zlib

_PAGE = re.compile(rb"^POST /v[0-9.]+/([^/?]+)/messages")
_RECIPIENT = re.compile(rb'"recipient":\s*\{"id":\s*"([^"]+)"')
_MARK = re.compile(rb"bench-[0-9]+")
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


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log, faults) -> None:
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
            log.write(
                f"{time.time():.6f} {page.group(1).decode() if page else '-'} "
                f"{mark.group(0).decode() if mark else '-'} "
                f"{recipient.group(1).decode() if recipient else '-'} "
                f"{failure[0] if failure else 'ok'}\n"
            )
            if failure:
                status, payload = failure[1], failure[2]
            else:
                status = b"200 OK"
                payload = (
                    b'{"recipient_id":"'
                    + (recipient.group(1) if recipient else b"")
                    + b'","message_id":"m_'
                    + str(next(_ids)).encode()
                    + b'"}'
                )
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


async def main(port: int, path: str, faults: Faults | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    with open(path, "a", buffering=1 << 16) as log:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, log, faults), "127.0.0.1", port, backlog=1024
        )
        async with server:
            while not stop.is_set():
                log.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
        log.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("log")
    parser.add_argument("--transient", type=float, default=0.0)
    parser.add_argument("--throttle-every", type=float, default=0.0)
    parser.add_argument("--throttle-for", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    injecting = args.transient > 0 or args.throttle_every > 0
    faults = (
        Faults(args.transient, args.throttle_every, args.throttle_for, args.seed)
        if injecting
        else None
    )
    asyncio.run(main(args.port, args.log, faults))
