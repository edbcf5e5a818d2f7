"""core/dbthread.Batched: steps queued together go to one database thread in one hop, each in its caller's
context with its own outcome; a failing step (a broken SQL statement included) touches no other; a caller
that leaves still has its step run; a step queued as a flusher ends is not stranded; a flusher that dies
fails its waiting callers instead of leaving them hanging. Real Postgres; nothing is mocked (the hop
count is read by wrapping the real `in_db_thread`)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading

import pytest
from django.db import connection

from claudeapp.core import dbthread
from claudeapp.core.dbthread import Batched

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]

_caller: contextvars.ContextVar[str] = contextvars.ContextVar("caller", default="")


@pytest.fixture
def hops(monkeypatch):
    counted: list[int] = []
    real = dbthread.in_db_thread

    def counting(func):
        counted.append(1)
        return real(func)

    monkeypatch.setattr(dbthread, "in_db_thread", counting)
    return counted


def _batched(size: int = 32, before=None, in_flight: int = 1) -> Batched:
    return Batched(max_batch=lambda: size, before=before, in_flight=lambda: in_flight)


def _backend_pid(tag: str) -> tuple[str, str, int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return tag, _caller.get(), threading.get_ident(), pid


async def _as(caller: str, batched: Batched, step, *args):
    _caller.set(caller)
    return await batched(step, *args)


async def test_steps_queued_together_share_one_hop_one_thread_one_connection_each_in_its_callers_context(hops):
    batched = _batched()
    results = await asyncio.gather(*(_as(f"caller-{i}", batched, _backend_pid, f"step-{i}") for i in range(10)))
    assert [(tag, caller) for tag, caller, _, _ in results] == [(f"step-{i}", f"caller-{i}") for i in range(10)]
    assert len({thread for *_, thread, _ in results}) == 1
    assert len({pid for *_, pid in results}) == 1
    assert len(hops) == 1


async def test_a_batch_takes_at_most_max_batch_steps_in_order(hops):
    ran: list[int] = []
    batched = _batched(size=4)
    await asyncio.gather(*(batched(ran.append, i) for i in range(10)))
    assert ran == list(range(10))
    assert len(hops) == 3


def _broken_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM no_such_table")


def _boom() -> None:
    raise ValueError("this step only")


async def test_a_failing_step_fails_its_caller_alone_and_a_broken_statement_does_not_reach_the_next_step():
    batched = _batched()
    outcomes = await asyncio.gather(
        batched(_backend_pid, "before"), batched(_broken_sql), batched(_boom), batched(_backend_pid, "after"),
        return_exceptions=True,
    )  # fmt: skip
    assert outcomes[0][0] == "before" and outcomes[3][0] == "after"
    assert "no_such_table" in str(outcomes[1])
    assert isinstance(outcomes[2], ValueError) and str(outcomes[2]) == "this step only"


async def test_a_step_that_caught_a_database_error_of_its_own_does_not_pass_its_connection_to_the_next():
    def caught() -> None:
        with contextlib.suppress(Exception):
            _broken_sql()

    batched = _batched()
    outcomes = await asyncio.gather(batched(caught), batched(lambda: connection.connection is None))
    assert outcomes == [None, True]


async def test_before_is_awaited_before_each_batch():
    gate = asyncio.Event()
    ran: list[str] = []

    async def before(since: float) -> None:
        await gate.wait()

    batched = _batched(before=before)
    waiting = asyncio.ensure_future(batched(ran.append, "x"))
    for _ in range(5):
        await asyncio.sleep(0)
    assert ran == [] and not waiting.done()
    gate.set()
    await asyncio.wait_for(waiting, 5)
    assert ran == ["x"]


async def test_a_caller_that_leaves_still_has_its_step_run():
    gate = asyncio.Event()
    ran = threading.Event()

    async def before(since: float) -> None:
        await gate.wait()

    batched = _batched(before=before)
    leaving = asyncio.ensure_future(batched(ran.set))
    await asyncio.sleep(0)
    leaving.cancel()
    gate.set()
    await asyncio.wait_for(batched(lambda: None), 5)  # the same flusher: it ran the first step before this one
    assert ran.is_set()


async def test_a_step_queued_right_after_a_flusher_ends_is_run(hops):
    batched = _batched()
    for i in range(5):  # each one queued the moment the last batch's flusher is done
        assert await asyncio.wait_for(batched(lambda n=i: n), 5) == i
    assert len(hops) == 5


@pytest.mark.parametrize("started", [True, False], ids=["while-waiting", "before-it-ran"])
async def test_a_flusher_that_dies_fails_its_waiting_callers_instead_of_leaving_them_hanging(started):
    async def never(since: float) -> None:
        await asyncio.Event().wait()

    batched = _batched(before=never)
    waiting = [asyncio.ensure_future(batched(lambda: None)) for _ in range(3)]
    for _ in range(3 if started else 1):  # one pass: the callers queued, their flusher not yet started
        await asyncio.sleep(0)
    (flusher,) = batched._queue().flushers
    flusher.cancel()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 5)
    assert all(isinstance(outcome, RuntimeError) and "batch ended" in str(outcome) for outcome in outcomes)
    assert not batched._queue().flushers and not batched._queue().items


async def test_before_is_told_when_the_oldest_waiting_step_was_queued():
    told: list[float] = []
    gate = asyncio.Event()

    async def before(since: float) -> None:
        told.append(since)
        await gate.wait()

    loop = asyncio.get_running_loop()
    batched = _batched(size=1, before=before)
    first_queued_after = loop.time()
    first = asyncio.ensure_future(batched(lambda: "first"))
    await asyncio.sleep(0.01)
    second_queued_after = loop.time()
    second = asyncio.ensure_future(batched(lambda: "second"))
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(first, second), 5) == ["first", "second"]
    assert first_queued_after <= told[0] < second_queued_after <= told[1]


async def test_a_backlog_runs_up_to_in_flight_batches_at_once_on_as_many_threads(hops):
    """Steps that only finish together (a barrier of three) need three batches running at once: one batch at
    a time, a backlog of settlements fell further behind for as long as the load lasted."""
    together = threading.Barrier(3, timeout=10)

    def meet() -> int:
        together.wait()
        return threading.get_ident()

    batched = _batched(size=1, in_flight=3)
    threads = await asyncio.wait_for(asyncio.gather(*(batched(meet) for _ in range(3))), 15)
    assert len(set(threads)) == 3 and len(hops) == 3


async def test_no_more_than_in_flight_batches_at_once_and_none_extra_while_they_keep_up(hops):
    running, most = 0, 0
    lock = threading.Lock()

    def step() -> None:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        threading.Event().wait(0.02)
        with lock:
            running -= 1

    batched = _batched(size=2, in_flight=2)
    await asyncio.wait_for(asyncio.gather(*(batched(step) for _ in range(12))), 15)
    assert most == 2  # twelve waiting, batches of two: two flushers at once, never a third
    assert len(hops) == 6
    await asyncio.wait_for(batched(step), 5)  # one step, nothing else waiting: one batch of its own
    assert not batched._queue().flushers


async def test_around_wraps_each_batch_s_steps_on_their_worker_thread_and_its_failure_leaves_their_outcomes(caplog):
    """`around` (settlements: one Redis round trip for a batch's bookkeeping) is entered on the thread that runs
    the batch, once per batch, before its first step and left after its last; if leaving it fails, the steps'
    outcomes (a failing step's included) still reach their callers and the failure is logged."""
    events: list[tuple[str, int]] = []

    @contextlib.contextmanager
    def around():
        events.append(("enter", threading.get_ident()))
        yield
        events.append(("exit", threading.get_ident()))
        if fail_on_exit:
            raise RuntimeError("around's own ending")

    def step(n: int) -> int:
        events.append(("step", threading.get_ident()))
        return n

    fail_on_exit = False
    batched = Batched(max_batch=lambda: 3, around=around)
    assert await asyncio.gather(*(batched(step, n) for n in range(5))) == list(range(5))
    assert [kind for kind, _ in events] == ["enter", "step", "step", "step", "exit", "enter", "step", "step", "exit"]
    assert len({thread for _, thread in events[:5]}) == 1 and events[0][1] != threading.get_ident()

    fail_on_exit = True
    with caplog.at_level("ERROR", logger="claudeapp.core.dbthread"):
        outcomes = await asyncio.gather(batched(step, 7), batched(_boom), return_exceptions=True)
    assert outcomes[0] == 7 and isinstance(outcomes[1], ValueError)
    assert "shared ending failed" in caplog.text
