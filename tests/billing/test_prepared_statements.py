"""The budget hold and the settlement run as prepared statements (claudeapp/core/prepared.py): planned
once per connection, with the same figures as before, Django's errors and query counting kept, and
plain client-side statements when DB_PREPARED_STATEMENTS is off."""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection
from django.test import override_settings

from billing import budgets
from billing.models import Budget, LedgerEntry, Reservation
from claudeapp.core import prepared
from tests.billing.test_budgets import COST, HOLD, _reserve, _settle


def _prepared_here() -> list[str]:
    """The statements prepared on this thread's connection (pg_prepared_statements is per session)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_the_hold_and_the_settlement_are_prepared_once_they_repeat_and_bill_the_same(
    seeded, principal_factory, budget_factory
):
    principal = principal_factory()
    budget = budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    for n in range(7):  # psycopg prepares a statement on its 5th run on a connection
        _settle(_reserve(principal), f"evt-{n}")
    statements = _prepared_here()
    assert any("UPDATE billing_budget" in s and "INSERT INTO" in s and "billing_reservation" in s for s in statements)
    assert any("INSERT INTO billing_ledgerentry" in s and "DELETE FROM billing_reservation" in s for s in statements)
    budget.refresh_from_db()
    assert (budget.spent_micros, budget.reserved_micros) == (7 * COST, 0)
    assert LedgerEntry.objects.count() == 7 and not Reservation.objects.exists()
    held = _reserve(principal, hold_for=None)  # a None value goes as a typed NULL (core/rows.py casts)
    budget.refresh_from_db()
    assert held.expires_at is None and budget.reserved_micros == HOLD


def test_the_cursor_is_djangos_wrapper_errors_and_query_counts_included(db, django_assert_num_queries):
    with django_assert_num_queries(1), prepared.cursor() as cursor:
        assert isinstance(cursor.cursor, psycopg.Cursor) and not isinstance(cursor.cursor, psycopg.ClientCursor)
        cursor.execute("SELECT %(n)s::int + 1", {"n": 41})
        assert cursor.fetchone() == (42,)
    budget = Budget.objects.create(scope="global", period="month", limit_micros=1)
    with pytest.raises(IntegrityError), prepared.cursor() as cursor:
        cursor.execute("INSERT INTO billing_budget SELECT * FROM billing_budget WHERE id = %(id)s", {"id": budget.pk})


@override_settings(DB_PREPARED_STATEMENTS=False)
def test_with_prepared_statements_off_the_hold_is_a_plain_client_side_statement(
    seeded, principal_factory, budget_factory
):
    principal = principal_factory()
    budget_factory(scope="user", scope_id=principal.user_id, limit_micros=10**9)
    with prepared.cursor() as cursor:
        assert isinstance(cursor.cursor, psycopg.ClientCursor)
    before = len(_prepared_here())
    for n in range(7):
        _settle(_reserve(principal), f"off-{n}")
    assert len(_prepared_here()) == before
    assert LedgerEntry.objects.count() == 7 and budgets.release(reservation=_reserve(principal)) is True
