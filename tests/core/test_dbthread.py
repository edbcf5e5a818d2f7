"""core/dbthread.in_db_thread: a database thread keeps its connection for the next step only while more
work is waiting for it, hands it back to the pool once it is idle, and never reuses one an error touched.
One worker thread here (the pool of our own, swapped for the test) so "the next step" is on the same thread.
Real Postgres; nothing is mocked."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
from django.db import connection

from claudeapp.core import dbthread
from claudeapp.core.dbthread import in_db_thread

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def one_thread(monkeypatch):
    threads = dbthread._Threads(1)
    monkeypatch.setitem(dbthread._pool, "threads", threads)
    yield
    asyncio.run(in_db_thread(lambda: connection.close())())  # resolved on that thread: its own connection
    threads.stop()


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _holds_none() -> bool:
    return connection.connection is None


def _broken_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT no_such_column FROM no_such_table")


async def test_an_idle_thread_hands_its_connection_back(one_thread):
    await in_db_thread(_backend_pid)()
    assert await in_db_thread(_holds_none)()


async def test_steps_waiting_for_the_thread_reuse_its_connection_and_the_last_one_hands_it_back(one_thread):
    outcomes = await asyncio.gather(
        in_db_thread(_backend_pid)(), in_db_thread(_holds_none)(), in_db_thread(_backend_pid)(),
        in_db_thread(_holds_none)(),
    )  # fmt: skip
    assert outcomes[1] is False and outcomes[3] is False  # each started on the connection the step before left
    assert outcomes[0] == outcomes[2]
    assert await in_db_thread(_holds_none)()  # then idle: handed back


async def test_a_connection_an_error_touched_is_not_handed_to_the_next_step(one_thread):
    outcomes = await asyncio.gather(
        in_db_thread(_backend_pid)(), in_db_thread(_broken_sql)(), in_db_thread(_holds_none)(),
        in_db_thread(_backend_pid)(), return_exceptions=True,
    )  # fmt: skip
    assert isinstance(outcomes[0], int) and "no_such_table" in str(outcomes[1])
    assert outcomes[2] is True  # queued behind the error, yet it starts with no connection
    assert isinstance(outcomes[3], int)  # and the one after works


async def test_a_step_that_caught_a_database_error_of_its_own_does_not_pass_its_connection_on(one_thread):
    def caught() -> None:
        with contextlib.suppress(Exception):
            _broken_sql()

    outcomes = await asyncio.gather(in_db_thread(caught)(), in_db_thread(_holds_none)())
    assert outcomes == [None, True]


async def test_a_step_whose_caller_left_before_a_thread_took_it_is_not_run(one_thread):
    ran: list[str] = []
    started, release = asyncio.Event(), threading.Event()
    loop = asyncio.get_running_loop()

    def busy() -> None:
        loop.call_soon_threadsafe(started.set)
        release.wait(5)

    first = asyncio.ensure_future(in_db_thread(busy)())
    await started.wait()  # the one thread is taken
    queued = asyncio.ensure_future(in_db_thread(ran.append)("queued"))
    await asyncio.sleep(0)
    queued.cancel()  # its client went away while it waited for a thread
    release.set()
    await first
    assert await in_db_thread(ran.append)("after") is None
    assert ran == ["after"] and queued.cancelled()


async def test_a_step_s_exception_reaches_its_caller_alone(one_thread):
    def boom() -> None:
        raise ValueError("bad step")

    outcomes = await asyncio.gather(in_db_thread(boom)(), in_db_thread(lambda: 7)(), return_exceptions=True)
    assert isinstance(outcomes[0], ValueError) and outcomes[1] == 7


def test_at_exit_the_steps_under_way_and_queued_are_finished_before_the_threads_end():
    threads, done = dbthread._Threads(1), []
    loop = asyncio.new_event_loop()
    try:
        threads.submit(loop, lambda: (time.sleep(0.1), done.append("under way")))
        threads.submit(loop, lambda: done.append("queued"))
        threads.stop()  # what atexit runs
        assert done == ["under way", "queued"] and not any(thread.is_alive() for thread in threads.threads)
    finally:
        loop.close()
