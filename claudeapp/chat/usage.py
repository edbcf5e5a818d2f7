"""What the usage page shows a person: this month's spend, remaining budgets, spend by day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from django.db.models import Q, Sum
from django.utils import timezone

from billing import budgets, console, prices
from billing.costs import worst_case_micros
from billing.errors import BudgetExceeded
from billing.ledger import billing_day
from billing.models import Budget, DailyRollup
from claudeapp.accounts.principals import Principal
from claudeapp.attachments.models import Attachment
from claudeapp.calls import accounting, admission
from claudeapp.conversations import context as ctx
from claudeapp.core import tokensize
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
    through_keys_micros: int = 0  # the part of the month's spend made through the person's API keys

    @property
    def max_day_micros(self) -> int:
        return max((micros for _, micros in self.by_day), default=0)


def summary_for(principal: Principal, *, now: dt.datetime | None = None) -> UsageSummary:
    today = billing_day(now or timezone.now())
    first = today.replace(day=1)
    # Everything the person's budgets count: their own calls and their partner keys' (as budgets.covering).
    rows = DailyRollup.objects.filter(console.user_spend_filter(principal.user_id), day__gte=first)
    per_day = dict(rows.values("day").annotate(c=Sum("cost_micros")).values_list("day", "c"))
    days = [first + dt.timedelta(days=n) for n in range((today - first).days + 1)]
    per_model = rows.values("model_id").annotate(c=Sum("cost_micros"), r=Sum("requests")).order_by("-c")
    totals = rows.aggregate(
        c=Sum("cost_micros"), r=Sum("requests"), k=Sum("cost_micros", filter=Q(principal_kind="partner_key"))
    )
    return UsageSummary(
        month_spend_micros=totals["c"] or 0,
        month_requests=totals["r"] or 0,
        through_keys_micros=totals["k"] or 0,
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
    input_tokens: int = 0  # the prompt's bound: history, instructions, files and the text typed so far
    counted: bool = False  # upstream's count_tokens gave the figure (files make the local one a guess)
    refused: bool = False  # the budget cannot take even the part of the prompt that is certain

    @property
    def over_budget(self) -> bool:
        if self.refused:
            return True
        return self.budget_left_micros is not None and self.worst_case_micros > self.budget_left_micros


def estimate_turn(
    principal: Principal,
    *,
    history: list,
    model_choice: str,
    previous_model: str,
    text_chars: int,
    max_tokens: int,
    attachments: Sequence[Attachment] = (),
    system: str | None = None,
) -> TurnEstimate:
    """What the budget hold for this turn would be (the same worst case billing reserves), and what is left.

    The prompt is bounded as admission bounds it (calls.admission.input_bound: upstream's count_tokens
    when files make the local figure a guess, cached by body, so typing does not ask again).
    """
    model_id = _model_for_estimate(model_choice, previous_model)
    # The text is still being typed: a one-character stand-in keeps the body the same (and its count
    # cached) while typing, and a valid request for count_tokens; the typed length is added below.
    context = ctx.build_context(
        history, new_user_text=".", context_window=10**9, max_tokens=max_tokens, new_attachments=attachments
    )
    messages = context.messages
    local = accounting.local_bound(messages=messages, system=system)
    refused = False
    try:
        bound = admission.input_bound(principal, model_id, messages, system, {}, local, max_tokens)
    except BudgetExceeded:
        bound, refused = local, True
    input_tokens = bound.tokens + -(-text_chars // tokensize.BYTES_PER_TOKEN) + accounting.BLOCK_OVERHEAD
    price = prices.current_price(model_id=model_id)
    worst = worst_case_micros(price=price, input_tokens=input_tokens, max_tokens=max_tokens)
    lines = [_line(b, timezone.now()) for b in Budget.objects.filter(budgets.covering(principal), enabled=True)]
    left = min((line.remaining_micros for line in lines), default=None)
    return TurnEstimate(model_id, worst, left, input_tokens=input_tokens, counted=bound.counted, refused=refused)


def _model_for_estimate(model_choice: str, previous_model: str) -> str:
    if model_choice != "auto":
        return modelmap.resolve_model(model_choice)
    return previous_model or modelmap.resolve_model("moderate")  # where `auto` lands when nothing else decides
