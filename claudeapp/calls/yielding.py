"""Bookkeeping that can wait yields to admissions under way in the same event loop.

Calls from a closed-loop client (a pool of connections, each sending its next call when the last one is
answered) arrive at a process in waves: the answers of one wave go out together and the next wave's calls
come in at once. The settlement of an answered call whose reply did not wait for it (calls/run.py,
`complete(reply_first=True)`) would then run on the same loop just as the next wave is being admitted,
and every admission behind it waits for it. `settle_after_admissions` lets those admissions go first: it
returns once no admission is under way in this loop, or after CALLS_SETTLE_YIELD_MAX_SECONDS at most.
The bound counts from the moment the settlement was queued, so under a steady stream of admissions the
settlements still go at the rate they come. `settle_later` runs a settlement that way, together with the
others queued meanwhile (one thread hop, one database connection and one Redis round trip for a wave's
settlements, each still its own statement and transaction; several such batches at once when settlements
arrive faster than one thread runs them, CALLS_SETTLE_BATCHES_IN_FLIGHT).
Until the settlement lands the call's hold stands for its bill (never less), and its write-ahead record
carries upstream's exact usage from the settlement's first statement on, or, for a settlement that will wait
(`settling_soon` false: admissions under way, or settlements waiting for a batch), from the loop's next turn
after the answer, and for one slow to land (behind a batch that is, or a statement stuck on a lock) from 0.1 s
after it (calls/run.py): a process killed meanwhile is billed from it by the reaper.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from django.conf import settings

from billing import redisconn
from claudeapp.core.dbthread import Batched
from claudeapp.core.perloop import PerLoop


class _Loop:
    __slots__ = ("admitting", "idle")

    def __init__(self) -> None:
        self.admitting = 0
        self.idle = asyncio.Event()
        self.idle.set()


_state = PerLoop(_Loop).get


@contextlib.contextmanager
def admitting() -> Iterator[None]:
    """Around an admission on the loop: bookkeeping waiting in `settle_after_admissions` lets it go first."""
    state = _state()
    state.admitting += 1
    state.idle.clear()
    try:
        yield
    finally:
        state.admitting -= 1
        if not state.admitting:
            state.idle.set()


async def settle_after_admissions(since: float | None = None) -> None:
    """Return once no admission is under way in this loop (at once when none is), or once the bound has
    passed since `since` (the loop time the settlement was queued; now when not given)."""
    state = _state()
    bound = settings.CALLS_SETTLE_YIELD_MAX_SECONDS
    if since is not None:
        bound -= asyncio.get_running_loop().time() - since
    if not state.admitting or bound <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(state.idle.wait(), bound)


_later = Batched(
    max_batch=lambda: settings.CALLS_SETTLE_BATCH_MAX,
    before=settle_after_admissions,
    in_flight=lambda: settings.CALLS_SETTLE_BATCHES_IN_FLIGHT,
    around=redisconn.shared,  # a batch's rate-limit releases and in-flight deletes: one Redis round trip
)


def settling_soon() -> bool:
    """Whether a settlement queued now would start within a batch's time: no admission under way in this
    loop and no settlement waiting for a batch (one under way ends in milliseconds; one that does not,
    behind a statement stuck on a lock, is what calls/run.py's 0.1 s timer is for)."""
    return not _state().admitting and not _later.backed_up()


async def settle_later(step: Callable[..., Any], *args: Any) -> Any:
    """`step(*args)` (a settlement) on a database thread once the admissions under way are through, with
    the other settlements queued meanwhile; its own value or exception comes back here."""
    return await _later(step, *args)
