"""A one-budget hold that is its own transaction commits without waiting for the WAL flush
(billing/budgets.py, _ASYNC_COMMIT); a hold inside a caller's transaction, and every settlement (the
bill), keep the synchronous commit. Real Postgres."""

from __future__ import annotations

import contextlib

import psycopg
import pytest
from django.db import connection

from billing.models import Budget, Reservation
from tests.billing.test_budgets import HOLD, _reserve, _settle

ASYNC = "set_config('synchronous_commit', 'off', true)"


@contextlib.contextmanager
def statements():
    """The SQL text this thread's connection runs meanwhile (as sent, before any preparing)."""
    seen: list[str] = []

    def record(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        yield seen


def _dsn() -> str:
    """This test database, from a session of its own."""
    db = connection.settings_dict
    return f"host={db['HOST'] or '127.0.0.1'} port={db['PORT'] or 5432} user={db['USER']} dbname={db['NAME']}"


@pytest.mark.django_db(transaction=True)
def test_a_lone_hold_commits_asynchronously_and_its_settlement_synchronously(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    budget = budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    with statements() as seen:
        held = _reserve(principal)
    (hold_sql,) = [sql for sql in seen if "billing_reservation" in sql]
    assert ASYNC in hold_sql
    with psycopg.connect(_dsn()) as other:  # committed: another session sees the hold at once
        ((reserved,),) = other.execute("SELECT reserved_micros FROM billing_budget WHERE id = %s", [budget.pk])
        assert reserved == HOLD
        assert other.execute("SELECT count(*) FROM billing_reservation WHERE id = %s", [held.pk]).fetchone() == (1,)
    with statements() as seen:
        _settle(held, "evt-async-hold")
    assert seen and not any(ASYNC in sql for sql in seen)
    with connection.cursor() as cursor:  # the setting was the hold's transaction's alone
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)
    budget.refresh_from_db()
    assert budget.reserved_micros == 0 and not Reservation.objects.exists()


def test_a_hold_inside_a_callers_transaction_leaves_how_it_commits_alone(seeded, principal_factory, budget_factory):
    principal = principal_factory()  # pytest-django's transaction around the test is the caller's
    budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    with statements() as seen:
        _reserve(principal)
    assert seen and not any(ASYNC in sql for sql in seen)
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone() == ("on",)


def test_the_setting_a_statement_s_cte_makes_holds_for_its_transaction_only(db):
    """The Postgres behaviour the hold relies on: set_config(..., true) in a CTE the statement reads
    applies to the commit of that statement's transaction, and ends with it."""
    with psycopg.connect(_dsn()) as conn:
        conn.execute(f"WITH a AS (SELECT {ASYNC}) SELECT 1 FROM a")
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("off",)  # same transaction
        conn.commit()
        assert conn.execute("SHOW synchronous_commit").fetchone() == ("on",)


def test_a_hold_on_several_budgets_stays_synchronous(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    budget_factory(scope="global", limit_micros=10**9)
    with statements() as seen:
        held = _reserve(principal)
    assert len(held.budget_ids) == 2 and Budget.objects.filter(reserved_micros=HOLD).count() == 2
    assert seen and not any(ASYNC in sql for sql in seen)
