"""Fixtures of the in-flight record tests: no record left from another test, a seeded database whose
reaper takes a record as soon as its process is gone, a person and a budget covering everyone."""

from __future__ import annotations

from io import StringIO

import pytest

from billing import redisconn
from billing.models import Budget
from claudeapp.accounts.principals import Principal
from claudeapp.calls import inflight
from claudeapp.requestlog import buffer


@pytest.fixture(autouse=True)
def clean_records():
    def wipe() -> None:
        client = redisconn.client()
        keys = list(client.scan_iter(match=f"{inflight._prefix()}:*", count=1000))
        if keys:
            client.delete(*keys)

    wipe()
    yield
    wipe()


@pytest.fixture
def no_learned_limits():
    """No org limits learned from upstream's headers and no rate-limit bucket left by another test."""

    def wipe() -> None:
        client = redisconn.client()
        keys = [*client.scan_iter(match=redisconn.key("upstream", "*"), count=1000)]
        keys += client.scan_iter(match=redisconn.key("rl", "*"), count=1000)
        if keys:
            client.delete(*keys)

    wipe()
    yield
    wipe()


@pytest.fixture
def seeded(db, settings):
    from billing import prices
    from billing import seed as billing_seed
    from routing import seed as routing_seed

    routing_seed.run(stdout=StringIO())
    billing_seed.run(stdout=StringIO())
    prices._cache.clear()
    settings.CALLS_HEARTBEAT_TTL_SECONDS = 0  # no grace: a record is the reaper's as soon as its process is gone
    settings.CALLS_ORPHAN_CONFIRM_SECONDS = 0  # one look confirms (the two-look rule has its own test)
    settings.REQUEST_LOG_ENABLED = True
    buffer.connect()
    with buffer._flush_lock:  # the flusher thread waits: rows are written by this test's flush(), in its transaction
        yield
    buffer._rows.clear()


@pytest.fixture
def person(user_factory):
    user = user_factory()
    return Principal(kind="user", id=user.pk, user_id=user.pk)


@pytest.fixture
def budget(seeded):
    return Budget.objects.create(scope="global", period="month", limit_micros=10**12)
