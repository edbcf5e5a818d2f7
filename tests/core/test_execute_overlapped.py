"""`redisconn.execute_overlapped` (claudeapp/core/redisconn.py): a pipeline's commands are sent, `meanwhile`
runs while Redis works on them, then their replies are read. Real Redis: `meanwhile` sees the pipeline's
writes land from another connection before any reply was read; replies come back as execute's would
(errors as values); `meanwhile` runs once whatever Redis does; a connection with replies left on it never
goes back to the pool."""

from __future__ import annotations

import time

import pytest
import redis
from django.conf import settings

from claudeapp.core import redisconn

KEY = "test:overlapped"


@pytest.fixture
def client():
    found = redis.Redis.from_url(settings.REDIS_URL, max_connections=1)  # one connection: reuse is visible
    found.delete(KEY, f"{KEY}:list")
    yield found
    found.delete(KEY, f"{KEY}:list")
    found.close()


def _landed(seen_from: redis.Redis, timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if seen_from.exists(KEY):
            return True
        time.sleep(0.002)
    return False


def test_meanwhile_runs_after_the_commands_are_sent_and_before_their_replies_are_read(client):
    other = redis.Redis.from_url(settings.REDIS_URL)
    seen: list[bool] = []
    pipe = client.pipeline(transaction=False)
    pipe.set(KEY, "1")
    pipe.incr(KEY)

    replies = redisconn.execute_overlapped(pipe, lambda: seen.append(_landed(other)))

    assert seen == [True]  # the SET had run in Redis while meanwhile ran: the commands went out first
    assert replies == [True, 2]  # read after, with redis-py's reply callbacks (SET -> True)
    assert client.get(KEY) == b"2"  # the connection went back clean: the next command reads its own reply
    other.close()


def test_a_command_s_error_is_its_reply_and_the_others_stand(client):
    pipe = client.pipeline(transaction=False)
    pipe.set(KEY, "x")
    pipe.incr(KEY)  # not an integer
    pipe.evalsha("0" * 40, 0)  # no such script
    pipe.rpush(f"{KEY}:list", "a")

    ok, not_int, no_script, pushed = redisconn.execute_overlapped(pipe, lambda: None)

    assert ok is True and pushed == 1
    assert isinstance(not_int, redis.ResponseError)
    assert isinstance(no_script, redis.exceptions.NoScriptError)
    assert client.get(KEY) == b"x"


def test_meanwhile_runs_once_when_redis_cannot_be_reached():
    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    ran: list[int] = []
    pipe = dead.pipeline(transaction=False)
    pipe.set(KEY, "1")

    with pytest.raises(redisconn.UNAVAILABLE):
        redisconn.execute_overlapped(pipe, lambda: ran.append(1))

    assert ran == [1]


def test_a_connection_redis_closed_is_sent_on_again_once(client):
    pipe = client.pipeline(transaction=False)
    pipe.set(KEY, "1")
    redisconn.execute_overlapped(pipe, lambda: None)
    ours = client.client_id()  # the pool's one connection
    other = redis.Redis.from_url(settings.REDIS_URL)
    assert other.client_kill_filter(_id=ours) == 1  # Redis closes it under the pool
    other.close()

    pipe = client.pipeline(transaction=False)
    pipe.incr(KEY)
    assert redisconn.execute_overlapped(pipe, lambda: None) == [2]


def test_a_meanwhile_that_raises_leaves_no_unread_reply_in_the_pool(client):
    pipe = client.pipeline(transaction=False)
    pipe.set(KEY, "1")

    def fails() -> None:
        raise RuntimeError("a bug in meanwhile")

    with pytest.raises(RuntimeError):
        redisconn.execute_overlapped(pipe, fails)

    assert client.incr(KEY) == 2  # its own reply, not the SET's left behind
