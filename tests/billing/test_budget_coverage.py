"""Which budgets cover a principal comes from a per-process copy: no query on the hot path when none
does, and a copy gone stale (budget deleted or disabled) is re-read instead of failing the call."""

from __future__ import annotations

import pytest

from billing import budgets
from billing.errors import BudgetExceeded
from billing.models import Budget, Reservation

MODEL = "claude-haiku-5-5"


@pytest.fixture(autouse=True)
def fresh_coverage():
    budgets._coverage.clear()
    yield
    budgets._coverage.clear()


def _reserve(principal):
    return budgets.reserve(principal=principal, model_id=MODEL, input_tokens=100, max_tokens=100)


def test_a_principal_no_budget_covers_is_admitted_without_asking_postgres(
    seeded, principal_factory, django_assert_num_queries
):
    principal = principal_factory()
    _reserve(principal)  # loads the copy
    with django_assert_num_queries(0):
        reservation = _reserve(principal)
    assert reservation.pk is None and reservation.budget_ids == []


def test_a_budget_created_in_this_process_applies_to_the_next_call(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    assert _reserve(principal).pk is None
    budget = budget_factory(scope="user", scope_id=principal.user_id)
    reservation = _reserve(principal)
    assert reservation.budget_ids == [budget.pk]
    assert Budget.objects.get(pk=budget.pk).reserved_micros == reservation.amount_micros


def test_a_budget_deleted_behind_the_copy_is_skipped_not_an_error(seeded, principal_factory, budget_factory):
    principal = principal_factory()
    kept = budget_factory(scope="user", scope_id=principal.user_id)
    gone = budget_factory(scope="global")
    assert _reserve(principal).budget_ids == sorted([kept.pk, gone.pk])
    Budget.objects.filter(pk=gone.pk)._raw_delete(Budget.objects.db)  # no signal: as another process's delete
    reservation = _reserve(principal)
    assert reservation.budget_ids == [kept.pk]
    assert Reservation.objects.filter(pk=reservation.pk).exists()


def test_a_budget_disabled_behind_the_copy_no_longer_holds_and_a_full_one_still_refuses(
    seeded, principal_factory, budget_factory
):
    principal = principal_factory()
    disabled = budget_factory(scope="user", scope_id=principal.user_id)
    full = budget_factory(scope="global", limit_micros=0)
    with pytest.raises(BudgetExceeded):
        _reserve(principal)
    Budget.objects.filter(pk=full.pk).update(limit_micros=10**12)
    Budget.objects.filter(pk=disabled.pk).update(enabled=False)  # no signal: the copy still lists it
    assert _reserve(principal).budget_ids == [full.pk]
