"""What the usage page shows a person: this month's spend, remaining budgets, spend by day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from billing import budgets, prices
from billing.costs import worst_case_micros
from billing.ledger import billing_day
from billing.models import Budget, DailyRollup
from claudeapp.accounts.principals import Principal
from claudeapp.conversations import context as ctx
from routing import modelmap


@dataclass(frozen=True)
class BudgetLine:
    budget: Budget
    spent_micros: int
    remaining_micros: int
    resets_at: dt.datetime

    @property
    def percent_used(self) -> int:
        return min(100, round(100 * self.spent_micros / self.budget.limit_micros)) if self.budget.limit_micros else 100


@dataclass(frozen=True)
class UsageSummary:
    month_spend_micros: int
    month_requests: int
    by_day: list[tuple[dt.date, int]]
    by_model: list[tuple[str, int, int]]
    budgets: list[BudgetLine]

    @property
    def max_day_micros(self) -> int:
        return max((micros for _, micros in self.by_day), default=0)


def summary_for(principal: Principal, *, now: dt.datetime | None = None) -> UsageSummary:
    today = billing_day(now or timezone.now())
    first = today.replace(day=1)
    rows = DailyRollup.objects.filter(principal_kind=principal.kind, principal_id=principal.id, day__gte=first)
    per_day = dict(rows.values("day").annotate(c=Sum("cost_micros")).values_list("day", "c"))
    days = [first + dt.timedelta(days=n) for n in range((today - first).days + 1)]
    per_model = rows.values("model_id").annotate(c=Sum("cost_micros"), r=Sum("requests")).order_by("-c")
    totals = rows.aggregate(c=Sum("cost_micros"), r=Sum("requests"))
    return UsageSummary(
        month_spend_micros=totals["c"] or 0,
        month_requests=totals["r"] or 0,
        by_day=[(day, per_day.get(day, 0)) for day in days],
        by_model=[(row["model_id"], row["c"], row["r"]) for row in per_model],
        budgets=[
            _line(b, now or timezone.now()) for b in Budget.objects.filter(budgets.covering(principal), enabled=True)
        ],
    )


def _line(budget: Budget, now: dt.datetime) -> BudgetLine:
    start, end = budgets.period_bounds(budget.period, now)
    spent = 0 if budget.period_start < start else budget.spent_micros + budget.reserved_micros
    return BudgetLine(budget, spent, max(0, budget.limit_micros - spent), end)


@dataclass(frozen=True)
class TurnEstimate:
    model_id: str
    worst_case_micros: int
    budget_left_micros: int | None  # None: no budget applies

    @property
    def over_budget(self) -> bool:
        return self.budget_left_micros is not None and self.worst_case_micros > self.budget_left_micros


def estimate_turn(
    principal: Principal, *, history: list, model_choice: str, previous_model: str, text_chars: int, max_tokens: int
) -> TurnEstimate:
    """What the budget hold for this turn would be (the same worst case billing reserves), and what is left."""
    model_id = _model_for_estimate(model_choice, previous_model)
    context = ctx.build_context(history, new_user_text="", context_window=10**9, max_tokens=max_tokens)
    input_tokens = context.input_tokens_estimate + int(text_chars / ctx.CHARS_PER_TOKEN)
    price = prices.current_price(model_id=model_id)
    worst = worst_case_micros(price=price, input_tokens=input_tokens, max_tokens=max_tokens)
    lines = [_line(b, timezone.now()) for b in Budget.objects.filter(budgets.covering(principal), enabled=True)]
    left = min((line.remaining_micros for line in lines), default=None)
    return TurnEstimate(model_id=model_id, worst_case_micros=worst, budget_left_micros=left)


def _model_for_estimate(model_choice: str, previous_model: str) -> str:
    if model_choice != "auto":
        return modelmap.resolve_model(model_choice)
    return previous_model or modelmap.resolve_model("moderate")  # where `auto` lands when nothing else decides
