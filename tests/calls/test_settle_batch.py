"""A batch of answered calls' settlements (calls/yielding.settle_later) sends their Redis bookkeeping (rate-limit
releases, in-flight deletes) in one round trip after their bills: each call billed once, its concurrency slot and
its write-ahead record gone, and one failed write does not keep the others from landing. Real Postgres and Redis;
the round trips are counted by wrapping the real `Batch.execute`."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from billing import limits, redisconn
from billing.errors import RateLimited
from billing.models import LedgerEntry, RateLimitPolicy, Reservation
from claudeapp.calls import admission as calls_admission
from claudeapp.calls import inflight, settlement, yielding
from claudeapp.core.redisconn import aclose

pytestmark = pytest.mark.django_db(transaction=True)

MODEL = "claude-haiku-4-5"
SLOTS = 5


@pytest.fixture
def sends(monkeypatch):
    """The Redis round trips of settlement bookkeeping: the number of scripts each one carried."""
    sent: list[int] = []
    real = redisconn.Batch.execute

    def counting(self, **kwargs):
        if self.calls:
            sent.append(len(self.calls))
        return real(self, **kwargs)

    monkeypatch.setattr(redisconn.Batch, "execute", counting)
    return sent


@pytest.fixture
def slots(person, budget):
    """A person allowed SLOTS calls at once, each slot held by an admitted call with its write-ahead record."""
    RateLimitPolicy.objects.create(scope="user", scope_id=person.id, concurrent_requests=SLOTS)
    limits._policies.clear()
    admitted = [_admit(person) for _ in range(SLOTS)]
    with pytest.raises(RateLimited):
        _admit(person)
    yield admitted
    for each in admitted:  # a test that left its slots held (Redis unreachable) gives them back
        limits.finish(ticket=each.ticket, usage=None)


def _admit(person) -> calls_admission.Admission:
    return calls_admission.admit(
        principal=person, requested_model=MODEL, messages=[{"role": "user", "content": "hi"}], system=None,
        max_tokens=10, start=functools.partial(inflight.start_on, streamed=False),
    )  # fmt: skip


def _a_slot_is_free(person) -> None:
    settlement.abandon(admission=_admit(person))  # admitted (a slot was given back), then given back itself


def _settle(admitted: calls_admission.Admission, n: int) -> LedgerEntry:
    return settlement.settle(
        admission=admitted, usage={"input_tokens": 9, "output_tokens": 2 + n}, event_key=f"upstream:msg_batch{n}",
        kind="message", subject="batch", model_used=MODEL,
    )  # fmt: skip


async def _settle_together(steps) -> list:
    try:
        return await asyncio.gather(*(yielding.settle_later(step, *args) for step, *args in steps))
    finally:
        await aclose()


def test_a_batch_s_settlements_send_their_redis_writes_in_one_round_trip_after_every_bill(person, slots, sends):
    entries = asyncio.run(_settle_together([(_settle, admitted, n) for n, admitted in enumerate(slots)]))

    assert sorted(e.output_tokens for e in entries) == [2, 3, 4, 5, 6]
    assert LedgerEntry.objects.filter(subject="batch").count() == SLOTS
    assert not Reservation.objects.exists()
    assert inflight.records() == []
    assert sends == [SLOTS * 2]  # one round trip: each call's limit release and its record's delete
    _a_slot_is_free(person)


def test_a_failed_write_in_the_batch_is_logged_and_the_others_still_land(person, slots, sends, caplog):
    broken = redisconn.client().register_script("return redis.error_reply('broken on purpose')")

    def failing_write() -> None:
        with redisconn.batch("write something broken") as pipe:
            pipe.script(broken, keys=[redisconn.key("test-broken")], args=[])

    steps = [(_settle, admitted, n) for n, admitted in enumerate(slots)]
    steps.insert(2, (failing_write,))
    with caplog.at_level(logging.ERROR, logger="billing.redisconn"):
        asyncio.run(_settle_together(steps))

    assert "could not write something broken" in caplog.text
    assert len(sends) == 1
    assert LedgerEntry.objects.filter(subject="batch").count() == SLOTS
    assert inflight.records() == []
    _a_slot_is_free(person)


def test_with_redis_unreachable_the_batch_s_bills_stand_and_the_loss_is_logged(person, slots, monkeypatch, caplog):
    """Redis gone when the batch's writes go out (a client on a port nothing listens on): every bill is written,
    nothing is raised to the callers; the slots and records wait for their TTLs and the reaper, as a lone
    settlement's would."""
    import redis

    dead = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2)
    monkeypatch.setattr(redisconn, "client", lambda: dead)
    with caplog.at_level(logging.WARNING, logger="billing.redisconn"):
        entries = asyncio.run(_settle_together([(_settle, admitted, n) for n, admitted in enumerate(slots)]))

    assert len(entries) == SLOTS
    assert LedgerEntry.objects.filter(subject="batch").count() == SLOTS
    assert not Reservation.objects.exists()
    assert f"could not send {SLOTS * 2} queued writes" in caplog.text
    monkeypatch.undo()  # Redis back: the fixtures' clean-up reaches it


def test_batches_nest_into_the_outermost_shared_one_and_nothing_goes_before_it_ends():
    client = redisconn.client()
    key = redisconn.key("test-shared", "n")
    client.delete(key)
    incr = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    with redisconn.shared():
        for n in (1, 10):
            with redisconn.batch("count") as pipe:
                pipe.script(incr, keys=[key], args=[n])
        with redisconn.shared(), redisconn.batch("count") as pipe:
            pipe.script(incr, keys=[key], args=[100])
        assert client.get(key) is None
    assert client.get(key) == b"111"
    with redisconn.batch("count") as pipe:  # outside: on its own again
        pipe.script(incr, keys=[key], args=[1000])
    assert client.get(key) == b"1111"
    client.delete(key)
