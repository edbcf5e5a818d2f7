"""What a person reads under a turn the budget refused: "used up" only when it is, else the worst case that did
not fit, what is left and how to make the turn fit (issue 15: the first refusal said "used up" at $0 spent)."""

from __future__ import annotations

import datetime as dt

import pytest

from billing.errors import BudgetExceeded
from claudeapp.conversations.outcomes import plain_words

RESETS = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)


def _refusal(*, spent: int, held: int = 0, requested: int) -> BudgetExceeded:
    return BudgetExceeded(scope="user", scope_id=1, limit_micros=10_000, spent_micros=spent, held_micros=held,
                          requested_micros=requested, resets_at=RESETS, period="day")  # fmt: skip


@pytest.mark.parametrize("spent", [10_000, 9_000])
def test_a_used_up_budget_says_used_up_in_dollars(spent):
    words = plain_words(_refusal(spent=spent, held=10_000 - spent, requested=500))
    assert words.startswith("Over budget: the user budget of $0.0100 is used up until")


def test_a_worst_case_that_does_not_fit_says_so_with_what_is_left():
    words = plain_words(_refusal(spent=0, requested=14_400))
    assert "used up" not in words
    assert "has $0.0100 left, less than this message's worst case ($0.0144)" in words
    assert "A smaller model or a shorter message may fit" in words
