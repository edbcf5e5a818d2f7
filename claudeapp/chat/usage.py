"""What the usage page shows a person: this month's spend, remaining budgets, spend by day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Sum
from django.utils import timezone

from billing import budgets
from billing.ledger import billing_day
from billing.models import Budget, DailyRollup
from claudeapp.accounts.principals import Principal


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
