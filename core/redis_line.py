"""A Redis connection per thread for the few commands every API request sends.

redis-py's client takes a connection from its pool for each command, checks that nothing
is waiting on it, records metrics, then packs the command and parses the reply: for the
rate limit and the delivery nudge of every post, more CPU than the command itself costs.
A `RedisLine` keeps one of redis-py's own connections per thread (and per process, so a
fork never shares one), sends commands packed once and reads the reply, and nothing else.
Errors are redis-py's: the connection is dropped on one and made again on the next call.
"""

import os
import threading
from collections.abc import Sequence
from typing import Any, cast

import redis
from redis.connection import ConnectionInterface


class RedisLine:
    def __init__(self, url: str, *, timeout: float = 0.5) -> None:
        self._pool = redis.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._local = threading.local()
        self._scripts: dict[str, bytes] = {}  # script text: its SHA1, once loaded

    def pack(self, *args: Any) -> list[bytes]:
        """`args` as the bytes of one command, to send as often as needed."""
        return cast("list[bytes]", self._connection().pack_command(*args))

    def call(self, packed: Sequence[bytes]) -> Any:
        """Send one packed command and return its reply (a Redis error raises)."""
        connection = self._connection()
        try:
            connection.send_packed_command(packed, check_health=False)
            return connection.read_response()
        except redis.ResponseError:
            raise  # the reply itself: the connection is still in step
        except BaseException:
            connection.disconnect()
            raise

    def script_sha(self, script: str) -> bytes:
        """The SHA1 of `script`, loaded into the server (`SCRIPT LOAD`) the first time."""
        sha = self._scripts.get(script)
        if sha is None:
            sha = self._scripts[script] = self.call(self.pack("SCRIPT", "LOAD", script))
        return sha

    def script_forget(self, script: str) -> None:
        """The server no longer has `script` (it restarted, or was flushed)."""
        self._scripts.pop(script, None)

    def _connection(self) -> ConnectionInterface:
        local = self._local
        connection = getattr(local, "connection", None)
        if connection is None or local.pid != os.getpid():
            connection = local.connection = self._pool.make_connection()
            local.pid = os.getpid()
        return connection
