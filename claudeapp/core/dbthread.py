"""Run ORM work from async code: off the event loop, on a worker thread that hands its database
connection back to the pool once no more work is waiting (a busy process's steps reuse it), so an open
stream holds no connection and an idle process none but the pool's own.

A pool of our own, sized by DB_THREADS, instead of asgiref's `sync_to_async(thread_sensitive=False)`:
that one runs on the loop's default executor (min(32, cores + 4) threads: 6 on two cores, shared with
everything else the process sends there) and re-homes every context variable and asgiref Local on the
way back, about 5% of a call's CPU (py-spy, bench/cpu_per_call.sh) for nothing a call needs: the work
runs in a copy of the caller's context (request id, surface), and Django's connections are per thread.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import contextvars
import functools
import logging
import os
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import connection

from claudeapp.core.perloop import PerLoop

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class _Threads:
    """DB_THREADS daemon threads taking steps from one queue and handing each outcome back to its loop.

    Not a ThreadPoolExecutor: `run_in_executor` builds a concurrent Future (a Condition, an RLock) and
    chains it to an asyncio one for every step, ~25-33 us of CPU a hop where this costs ~13-16
    (bench/dbthread_hop.py; docs/benchmarks.md, ninth pass). A step whose caller left before a thread
    took it (its future cancelled: the client went away) is not run, as an executor's queued work item
    would not be. At exit
    the steps under way and queued are finished first (`stop`), as an executor's would be: a settlement
    cut off there would leave its call to the reaper."""

    def __init__(self, size: int) -> None:
        self.pid = os.getpid()
        self.work: queue.SimpleQueue[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any], Callable[[], Any]] | None]
        self.work = queue.SimpleQueue()
        self.threads = [threading.Thread(target=self._serve, name=f"db_{n}", daemon=True) for n in range(size)]
        for thread in self.threads:
            thread.start()
        atexit.register(self.stop)

    def stop(self, timeout: float = 30.0) -> None:
        if os.getpid() != self.pid:  # a forked child inherited this hook, not the threads
            return
        for _ in self.threads:
            self.work.put(None)
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def submit(self, loop: asyncio.AbstractEventLoop, step: Callable[[], R]) -> asyncio.Future[R]:
        future: asyncio.Future[R] = loop.create_future()
        self.work.put((loop, future, step))
        return future

    def _serve(self) -> None:
        while (item := self.work.get()) is not None:
            loop, future, step = item
            if future.cancelled():  # read across threads: at worst a step whose caller just left runs anyway
                continue
            try:
                outcome, ok = step(), True
            except BaseException as exc:  # handed to the caller, whatever it is
                outcome, ok = exc, False
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody is waiting
                loop.call_soon_threadsafe(_settle, future, ok, outcome)


def _settle(future: asyncio.Future[Any], ok: bool, outcome: Any) -> None:
    if not future.done():
        future.set_result(outcome) if ok else future.set_exception(outcome)


_pool: dict[str, _Threads | None] = {"threads": None}
_lock = threading.Lock()


def _threads() -> _Threads:
    threads = _pool["threads"]
    if threads is None or threads.pid != os.getpid():  # a forked child starts threads of its own
        with _lock:
            threads = _pool["threads"]
            if threads is None or threads.pid != os.getpid():
                threads = _pool["threads"] = _Threads(settings.DB_THREADS)
    return threads


def _close_if_spoiled(*, failed: bool) -> None:
    """A connection an error touched (the step raised, or caught a database error of its own) is not handed
    to the next step: it may be broken, or in a state the error left."""
    if failed or connection.errors_occurred:
        connection.close()


def _release_when_idle() -> None:
    """Hand the thread's connection back to the pool unless more work is already waiting for a thread: a
    busy process's steps then reuse it (a pool checkout, Django's connection set-up and a check-in per step
    cost ~0.1-0.2 ms of CPU, docs/benchmarks.md, eighth pass), and an idle one holds none."""
    threads = _pool["threads"]
    if threads is None or threads.work.empty():
        connection.close()


def in_db_thread(func: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        failed = True
        try:
            result = func(*args, **kwargs)
            failed = False
            return result
        finally:
            _close_if_spoiled(failed=failed)
            _release_when_idle()

    async def hop(*args: P.args, **kwargs: P.kwargs) -> R:
        context = contextvars.copy_context()
        call = functools.partial(context.run, run, *args, **kwargs)
        return await _threads().submit(asyncio.get_running_loop(), call)

    return hop


_Step = tuple[contextvars.Context, Callable[..., Any], tuple[Any, ...]]
_Waiting = tuple[_Step, asyncio.Future[Any], float]  # the step, its caller's future, the loop time it was queued


class _Queue:
    __slots__ = ("flushers", "items")

    def __init__(self) -> None:
        self.items: list[_Waiting] = []
        self.flushers: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references


class Batched:
    """`in_db_thread` for a short step that many calls of one process run at about the same time (a
    settlement): the steps queued while the event loop was busy go to one worker thread together, one
    thread hop and one database connection for all of them, at most `max_batch` at a time. Each step runs
    in its caller's context, on its own (its own statements and transactions), and its outcome (value or
    exception) goes to its caller alone. A hop and a connection per step cost more CPU than a
    settlement's own statement (docs/benchmarks.md, eighth pass).

    One batch at a time per loop while the steps keep up; when a full batch or more is waiting (steps
    arrive faster than one thread runs them), up to `in_flight` batches run at once, on as many threads.
    With one batch at a time, a process answering ~150 calls a second had its settlements fall further
    behind for as long as the load lasted (thousands waiting after 20 s, each holding its call's budget
    hold, request and task; docs/benchmarks.md, tenth pass).

    `before`, when given, is awaited before each batch is taken, with the loop time the oldest step
    still waiting was queued (so a wait it bounds is bounded per step, not per batch). `around`, when
    given, is entered on the worker thread around a batch's steps (what they may share: one Redis round
    trip for their bookkeeping); it must not raise, and if it does its error is logged, the steps'
    outcomes stand."""

    def __init__(
        self,
        *,
        max_batch: Callable[[], int],
        before: Callable[[float], Awaitable[None]] | None = None,
        in_flight: Callable[[], int] = lambda: 1,
        around: Callable[[], contextlib.AbstractContextManager[Any]] | None = None,
    ) -> None:
        self._max_batch, self._before, self._in_flight = max_batch, before, in_flight
        self._around = around
        self._queue = PerLoop(_Queue).get

    def backed_up(self) -> bool:
        """Whether steps are waiting in this loop for a batch to take them: a step queued now would wait
        behind them, not only for the end of the batches under way (a few milliseconds each)."""
        return bool(self._queue().items)

    async def __call__(self, step: Callable[..., R], *args: Any) -> R:
        queue = self._queue()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        queue.items.append(((contextvars.copy_context(), step, args), future, loop.time()))
        if not queue.flushers or (
            len(queue.items) >= max(1, self._max_batch()) and len(queue.flushers) < self._in_flight()
        ):
            # A context of its own: the batch is nobody's request (each step runs in its caller's).
            flusher = loop.create_task(self._flush(queue), context=contextvars.Context())
            queue.flushers.add(flusher)
            flusher.add_done_callback(functools.partial(_ended, queue))
        return await asyncio.shield(future)  # a caller that leaves does not take its step out of the batch

    async def _flush(self, queue: _Queue) -> None:
        batch: list[_Waiting] = []
        try:
            while queue.items:
                if self._before is not None:
                    await self._before(queue.items[0][2])
                size = max(1, self._max_batch())
                batch, queue.items = queue.items[:size], queue.items[size:]
                if not batch:  # another flusher took them while this one waited
                    continue
                outcomes = await in_db_thread(_run_steps)([step for step, _, _ in batch], self._around)
                for (_, future, _), (ok, value) in zip(batch, outcomes, strict=True):
                    if not future.done():
                        future.set_result(value) if ok else future.set_exception(value)
                batch = []
        except BaseException as exc:  # the hop itself failed, or this task was cancelled (shutdown)
            error = exc if isinstance(exc, Exception) else RuntimeError(f"batch ended: {exc!r}")
            _fail(batch, error)
            if queue.flushers == {asyncio.current_task()}:  # no other flusher left to take the rest
                _fail(queue.items, error)
                queue.items = []
            raise
        finally:  # at once, not in a done callback: a step queued from here on starts a flusher of its own
            queue.flushers.discard(asyncio.current_task())  # type: ignore[arg-type]


def _ended(queue: _Queue, flusher: asyncio.Task[None]) -> None:
    """A flusher cancelled before it ran (a loop shutting down) never reached its own clean-up."""
    if flusher.cancelled() and flusher in queue.flushers:
        queue.flushers.discard(flusher)
        if not queue.flushers:
            _fail(queue.items, RuntimeError("batch ended: cancelled"))
            queue.items = []


def _fail(waiting: list[_Waiting], error: Exception) -> None:
    for _, future, _ in waiting:
        if not future.done():
            future.set_exception(error)


def _run_steps(
    steps: list[_Step], around: Callable[[], contextlib.AbstractContextManager[Any]] | None = None
) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    try:
        with around() if around is not None else contextlib.nullcontext():
            for context, step, args in steps:
                try:
                    outcomes.append((True, context.run(step, *args)))
                except Exception as exc:
                    outcomes.append((False, exc))
                _close_if_spoiled(failed=not outcomes[-1][0])
    except Exception:  # `around` itself failed: the steps' own outcomes stand
        if len(outcomes) < len(steps):
            raise
        log.exception("dbthread: a batch's shared ending failed")
    return outcomes
