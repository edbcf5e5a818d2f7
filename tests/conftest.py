from __future__ import annotations

import gc

import pytest

pytest_plugins = ["tests.fixtures.emulator", "tests.fixtures.gateway"]


@pytest.fixture
def user_factory(db):
    from claudeapp.accounts.models import User

    counter = iter(range(1, 1_000_000))

    def make(**fields):
        n = next(counter)
        fields.setdefault("username", f"user{n}")
        password = fields.pop("password", "pw-for-tests-123")
        user = User.objects.create(**fields)
        user.set_password(password)
        user.save(update_fields=["password"])
        return user

    return make


@pytest.fixture(autouse=True)
def _finalise_leaked_async_clients(request):
    """The SDK's async client closes itself from __del__ on whatever event loop is running then. Left to
    chance, that is a later test's loop, and the old transport raises 'Event loop is closed' inside it.
    Collect right after each test that talked to the emulator, while no loop runs, so __del__ is a no-op.
    """
    yield
    if "emulator" in request.fixturenames:
        gc.collect()
        # What survived is long-lived (modules, settings, pools, session fixtures): moved out of the
        # collector's sight, so the next collection, here or the interpreter's own, scans only what came
        # after. A full one over the ~300k objects of this process took 0.2-0.4 s after every such test.
        gc.freeze()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """Start every test with empty per-process copies of prices, budgets, limit policies and the model map.

    Those copies reload when a Redis version key moves, and the bump happens on commit: a test whose
    transaction is rolled back never bumps it, so the next test could read rows that no longer exist.
    """
    from billing import budgets, limits, prices
    from routing import modelmap

    for cache in (prices._cache, budgets._coverage, limits._policies):
        cache.clear()
    modelmap.invalidate_local()


@pytest.fixture(scope="session", autouse=True)
def _decisions_stored_at_once_in_this_process():
    """Calls made inside the pytest process store their routing decision at once. Queued
    (routing/decisionlog.py), this process's request log flusher would write it on its own connection,
    outside the test's transaction and after it; the live servers (subprocesses) queue theirs, as
    production does, and tests/routing/test_decisionlog.py turns queueing on where it tests it."""
    from routing import decisionlog

    decisionlog.take_with(None)


@pytest.fixture(scope="session", autouse=True)
def _close_connection_pools(django_db_setup, django_db_blocker):
    """The psycopg pool keeps connections open; close it before pytest-django drops the test database."""
    yield
    from django.db import connections

    with django_db_blocker.unblock():
        connections.close_all()  # hands this thread's connection back to the pool
        for alias in connections:
            connections[alias].close_pool()  # the pool is shared by every thread's wrapper
        # asgiref's executor threads (async views under test) may still hold a connection each;
        # end those sessions so the test database can be dropped.
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        connections.close_all()
        for alias in connections:
            connections[alias].close_pool()


@pytest.fixture(autouse=True, scope="session")
def _flush_again_after_a_deadlock():
    """A transactional test's database flush (TRUNCATE) can deadlock with a live server process still
    writing a row that references a table being truncated (its request log's buffer, written up to
    REQUEST_LOG_FLUSH_SECONDS after the reply: seen once, on a 402 refusal). Postgres then cancels the
    flush, which left the next test to find the last one's rows. The flush is one transaction: try it
    again once the other writer is through, a few times at most."""
    import time

    from django.core.management.base import CommandError
    from django.test.testcases import TransactionTestCase

    flush = TransactionTestCase._fixture_teardown

    def flush_retrying_deadlocks(self):  # type: ignore[no-untyped-def]
        for attempt in range(4):
            try:
                return flush(self)
            except CommandError as exc:
                if attempt == 3 or "deadlock detected" not in str(exc.__cause__ or ""):
                    raise
                time.sleep(0.1)

    TransactionTestCase._fixture_teardown = flush_retrying_deadlocks
    yield
    TransactionTestCase._fixture_teardown = flush
