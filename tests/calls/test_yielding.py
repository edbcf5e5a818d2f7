"""An answered call's settlement lets the admissions under way in its loop go first (calls/yielding.py):
it waits while one is under way, goes the moment the last one ends, never waits past its bound (counted
from when it was queued), and does not wait at all when none is under way or when the bound is 0."""

from __future__ import annotations

import asyncio

import pytest

from claudeapp.calls import yielding

pytestmark = pytest.mark.anyio


async def _ticks(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_settlement_waits_for_the_admissions_under_way_then_goes_when_the_last_ends(settings):
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 30
    first, second = yielding.admitting(), yielding.admitting()
    first.__enter__()
    second.__enter__()
    settling = asyncio.ensure_future(yielding.settle_after_admissions())
    await _ticks()
    first.__exit__(None, None, None)
    await _ticks()
    assert not settling.done()  # one admission is still under way
    second.__exit__(None, None, None)
    await asyncio.wait_for(settling, 1)


async def test_with_no_admission_under_way_or_a_zero_bound_it_does_not_wait(settings):
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 30
    await asyncio.wait_for(yielding.settle_after_admissions(), 1)
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 0
    with yielding.admitting():
        await asyncio.wait_for(yielding.settle_after_admissions(), 1)


async def test_it_never_waits_past_its_bound(settings):
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 0.05
    with yielding.admitting():  # an admission that never ends, as far as the settlement can tell
        await asyncio.wait_for(yielding.settle_after_admissions(), 5)


async def test_the_bound_counts_from_when_the_settlement_was_queued(settings):
    """A settlement queued a bound ago goes at once, admission or not: under a steady stream of admissions
    a batch waits at most the bound for its oldest settlement, so settlements go at the rate they come."""
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 30
    loop = asyncio.get_running_loop()
    with yielding.admitting():
        await asyncio.wait_for(yielding.settle_after_admissions(since=loop.time() - 30), 1)
        settling = asyncio.ensure_future(yielding.settle_after_admissions(since=loop.time()))
        await _ticks()
        assert not settling.done()
    await asyncio.wait_for(settling, 1)


async def test_an_admission_that_raises_still_counts_as_ended(settings):
    settings.CALLS_SETTLE_YIELD_MAX_SECONDS = 30
    with pytest.raises(RuntimeError), yielding.admitting():
        raise RuntimeError("refused")
    await asyncio.wait_for(yielding.settle_after_admissions(), 1)


async def test_settling_soon_only_with_no_admission_and_no_settlement_waiting_for_a_batch(settings):
    """An answered call whose settlement will wait has upstream's figures written from the loop at once
    (calls/run.py): one queued now would start within a batch's time only with no admission under way and
    no other settlement waiting for a batch (a batch under way is milliseconds; one stuck is the 0.1 s
    timer's)."""
    settings.CALLS_SETTLE_BATCHES_IN_FLIGHT = 1
    assert yielding.settling_soon()
    with yielding.admitting():
        assert not yielding.settling_soon()
    assert yielding.settling_soon()

    import threading

    hold = threading.Event()

    def step() -> str:
        hold.wait(5)
        return "settled"

    queued = asyncio.ensure_future(yielding.settle_later(step))
    await _ticks()
    assert yielding.settling_soon()  # a batch under way, nothing waiting behind it
    behind = asyncio.ensure_future(yielding.settle_later(lambda: "settled"))
    await _ticks()
    assert not yielding.settling_soon()  # a settlement waits for the batch to end
    hold.set()
    assert await asyncio.wait_for(asyncio.gather(queued, behind), 5) == ["settled", "settled"]
    await _ticks()
    assert yielding.settling_soon()
