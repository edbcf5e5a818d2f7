"""Settlement's Redis writes go in one pipelined round trip; a script Redis does not know yet still runs."""

from __future__ import annotations

import uuid

from billing import redisconn


def test_queued_scripts_run_on_exit_and_an_unknown_script_is_loaded_and_run():
    client = redisconn.client()
    key = redisconn.key("test-batch", uuid.uuid4().hex)
    known = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    known(keys=[key], args=[1])  # loaded now
    never_loaded = client.register_script(f"-- {uuid.uuid4().hex}\nreturn redis.call('INCRBY', KEYS[1], ARGV[1])")
    with redisconn.batch("test") as batch:
        batch.script(known, keys=[key], args=[10])
        batch.script(never_loaded, keys=[key], args=[100])
        assert client.get(key) == b"1"  # nothing sent before the block ends
    assert client.get(key) == b"111"
    client.delete(key)


def test_an_empty_batch_sends_nothing():
    with redisconn.batch("test") as batch:
        pass
    assert batch.calls == []
