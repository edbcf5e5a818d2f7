"""A real Celery worker (threads pool, as in tests/jobs/conftest.py) says it is alive in Redis from its
start, idle or not: the key the admin's health console counts as a worker seen in the last minute."""

from __future__ import annotations

import os

from claudeapp.core import redisconn
from claudeapp.jobs import heartbeat
from tests.jobs.conftest import wait_for


def test_an_idle_worker_process_announces_itself_with_an_expiring_key(worker):
    client = redisconn.client()

    def keys() -> list[str]:
        return [k.decode() for k in client.scan_iter(heartbeat.worker_key_pattern())]

    wait_for(lambda: any(k.endswith(f":{worker.proc.pid}") for k in keys()), timeout=30, what="the worker's key")
    key = next(k for k in keys() if k.endswith(f":{worker.proc.pid}"))
    assert not key.endswith(f":{os.getpid()}")  # the worker's own process, not this one
    assert 0 < client.ttl(key) <= heartbeat.WORKER_KEY_TTL_SECONDS
