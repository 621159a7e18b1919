"""A Redis connection per thread and process, for packed commands, recovering from drops."""

import threading

import pytest
import redis
from django.conf import settings

from core.redis_line import RedisLine
from core.tests.threads import run_together

URL = settings.TEST_API_LIMITS_REDIS_URL


@pytest.fixture
def line() -> RedisLine:
    return RedisLine(URL)


def client_id(line: RedisLine) -> int:
    return line.call(line.pack("CLIENT", "ID"))


def test_a_packed_command_is_sent_as_often_as_asked(line):
    key = "bankside:test:redis-line"
    redis.Redis.from_url(URL).delete(key)
    incr = line.pack("INCR", key)

    replies = [line.call(incr) for _ in range(3)]

    assert replies == [1, 2, 3]
    assert redis.Redis.from_url(URL).get(key) == b"3"


def test_an_error_reply_raises_and_keeps_the_connection(line):
    before = client_id(line)

    with pytest.raises(redis.ResponseError):
        line.call(line.pack("NO-SUCH-COMMAND"))

    assert client_id(line) == before


def test_a_connection_the_server_closed_is_made_again_on_the_next_call(line):
    dropped = client_id(line)
    redis.Redis.from_url(URL).client_kill_filter(_id=dropped)

    with pytest.raises(redis.ConnectionError):
        line.call(line.pack("PING"))

    assert line.call(line.pack("PING")) in (b"PONG", "PONG", True)
    assert client_id(line) != dropped


def test_each_thread_has_a_connection_of_its_own(line):
    ids: dict[int, int] = {}

    def record(_):
        ids[threading.get_ident()] = client_id(line)

    assert run_together(record, [0, 1], timeout=10) == []

    assert len(set(ids.values())) == 2


def test_a_forked_process_makes_its_own_connection(line, monkeypatch):
    parent = client_id(line)
    monkeypatch.setattr("core.redis_line.os.getpid", lambda: -1)  # as in the child

    assert client_id(line) != parent


def test_a_script_is_loaded_once_and_again_once_forgotten(line):
    script = "return 'bankside-line-test'"
    sha = line.script_sha(script)
    redis.Redis.from_url(URL).script_flush()

    line.script_forget(script)

    assert line.script_sha(script) == sha
    assert line.call(line.pack("EVALSHA", sha, 0)) == b"bankside-line-test"


def test_an_unreachable_server_raises_a_connection_error():
    line = RedisLine("redis://127.0.0.1:1/0", timeout=0.2)

    with pytest.raises(redis.ConnectionError):
        line.call(line.pack("PING"))
