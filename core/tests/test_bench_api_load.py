"""The API benchmark's open-loop load (bench/api.py, `drive_paced`) counts what a caller
waits: a request that finds every connection busy waits for one, and that wait is part of
its latency, as it is for a core system posting at its own pace. Only lower bounds are
asserted (a slow machine can only add to them): how fast anything runs is the
benchmark's to report, never a test's to assert."""

import asyncio
from concurrent.futures import ThreadPoolExecutor

from bench.api import drive_paced

SERVICE = 0.03  # seconds the server takes over each request


def _served(requests: int, rate: float, connections: int):
    """`_serving`, in an event loop of its own on a thread of its own: the browser tests'
    Playwright keeps one running on the main thread for the whole session."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _serving(requests, rate, connections)).result()


async def _serving(requests: int, rate: float, connections: int):
    """`requests` offered at `rate` to a server that answers each after `SERVICE`, one at a
    time per connection; (latencies, most connections it held open at once)."""
    open_now = most = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal open_now, most
        open_now += 1
        most = max(most, open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                length = next(
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                await asyncio.sleep(SERVICE)
                writer.write(b"HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        finally:
            open_now -= 1
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    body = b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2\r\n\r\n{}"
    async with server:
        _, latencies = await drive_paced(port, [body] * requests, rate, 202, connections)
    return latencies, most


def test_a_request_that_waits_for_a_connection_counts_the_wait():
    # Ten requests due within a few milliseconds on one connection: the last is answered
    # after the nine before it, so it waited at least nine services beyond its due time
    # (its due time is at most a few tens of milliseconds in).
    latencies, most = _served(10, 1000.0, 1)

    assert len(latencies) == 10 and most == 1
    assert max(latencies) >= 9 * SERVICE - 0.05


def test_it_opens_no_more_connections_than_it_is_given_and_answers_every_request():
    latencies, most = _served(30, 1000.0, 3)

    assert len(latencies) == 30
    assert most == 3
    # Thirty services over three connections: the last answer comes ten services in.
    assert max(latencies) >= 10 * SERVICE - 0.05
