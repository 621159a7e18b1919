"""A minimal stand-in for the Send API, for benchmarks: as little CPU per call as possible.

Answers every `POST …/messages` with `{"recipient_id", "message_id"}` over HTTP/1.1
keep-alive, and logs one line per call (arrival time, Page id, the message's `metadata`
or text) to the file given, so the benchmark can measure rates and latencies afterwards.

    python bench/fake_send_api.py PORT LOGFILE
"""

import asyncio
import contextlib
import itertools
import re
import signal
import sys
import time

_PAGE = re.compile(rb"^POST /v[0-9.]+/([^/?]+)/messages")
_RECIPIENT = re.compile(rb'"recipient":\s*\{"id":\s*"([^"]+)"')
_MARK = re.compile(rb"bench-[0-9]+")
_ids = itertools.count(1)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, log) -> None:
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
            log.write(
                f"{time.time():.6f} {page.group(1).decode() if page else '-'} "
                f"{mark.group(0).decode() if mark else '-'}\n"
            )
            payload = (
                b'{"recipient_id":"'
                + (recipient.group(1) if recipient else b"")
                + b'","message_id":"m_'
                + str(next(_ids)).encode()
                + b'"}'
            )
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, path: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    with open(path, "a", buffering=1 << 16) as log:
        server = await asyncio.start_server(
            lambda r, w: handle(r, w, log), "127.0.0.1", port, backlog=1024
        )
        async with server:
            while not stop.is_set():
                log.flush()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=0.5)
        log.flush()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
