"""A TCP proxy that adds a round trip's worth of latency, as a database across a network.

The scale benchmark (bench/scale.py) puts it between the application and PostgreSQL: every
byte from the client reaches the server half the added round trip later, and every byte
back reaches the client half of it later again, so each round trip the application makes
costs `--delay-ms` more, as with PostgreSQL on another host. Bytes keep their order; a
connection's two directions are delayed independently, as on a network, and nothing is
throttled, so throughput still scales with concurrent connections.

    python bench/latency_proxy.py --listen 127.0.0.1:6543 --target 127.0.0.1:5432 --delay-ms 1

It prints `ready <port>` once it listens (port 0 picks a free one), then runs until killed.
"""

import argparse
import contextlib
import queue
import socket
import sys
import threading
import time

CHUNK = 65536


def _pipe(source: socket.socket, target: socket.socket, delay: float) -> None:
    """Copy `source` to `target`, each chunk `delay` seconds after it arrived: one thread
    reads and stamps, another sleeps until each chunk is due and writes it (threads, not
    an event loop: `time.sleep` keeps a sub-millisecond delay, epoll rounds it up to 1 ms)."""
    chunks: queue.SimpleQueue[tuple[float, bytes]] = queue.SimpleQueue()

    def receive() -> None:
        while True:
            try:
                data = source.recv(CHUNK)
            except OSError:
                data = b""
            chunks.put((time.perf_counter() + delay, data))
            if not data:
                return

    threading.Thread(target=receive, daemon=True).start()
    while True:
        due, data = chunks.get()
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        if not data:
            with contextlib.suppress(OSError):
                target.shutdown(socket.SHUT_WR)
            return
        try:
            target.sendall(data)
        except OSError:
            return


def _serve(client: socket.socket, target: tuple[str, int], delay: float) -> None:
    try:
        server = socket.create_connection(target)
    except OSError:
        client.close()
        return
    for sock in (client, server):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    half = delay / 2
    back = threading.Thread(target=_pipe, args=(server, client, half), daemon=True)
    back.start()
    _pipe(client, server, half)
    back.join()
    client.close()
    server.close()


def serve(listen: tuple[str, int], target: tuple[str, int], delay: float) -> None:
    listener = socket.create_server(listen, backlog=1024)
    print(f"ready {listener.getsockname()[1]}", flush=True)
    while True:
        client, _ = listener.accept()
        threading.Thread(target=_serve, args=(client, target, delay), daemon=True).start()


def _address(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    return host, int(port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", type=_address, default=("127.0.0.1", 0))
    parser.add_argument("--target", type=_address, default=("127.0.0.1", 5432))
    parser.add_argument("--delay-ms", type=float, default=1.0, help="added round trip")
    args = parser.parse_args()
    if args.delay_ms < 0:
        parser.error("--delay-ms cannot be negative")
    try:
        serve(args.listen, args.target, args.delay_ms / 1000)
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
