"""The chat's budget banner: shown once a budget covering the person is 80% spent, and louder at 95%,
so the refusal never comes as a surprise. Reads the budget rows (one query), as the usage page does."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from billing import budgets
from billing.models import Budget
from claudeapp.accounts.principals import Principal
from claudeapp.chat.templatetags.chat_tags import usd

WARNING_PERCENT = 80
CRITICAL_PERCENT = 95
WHOSE = {"user": "your", "group": "your group's", "partner_key": "this key's", "global": "the organisation's"}


@dataclass(frozen=True)
class Banner:
    level: str  # "warning" (80%) or "critical" (95%)
    percent: int
    whose: str
    period: str
    spent_micros: int
    limit_micros: int
    resets_at: dt.datetime

    @property
    def message(self) -> str:
        period = "daily" if self.period == Budget.Period.DAY else "monthly"
        resets = timezone.localtime(self.resets_at).strftime("%Y-%m-%d %H:%M")
        if self.spent_micros >= self.limit_micros:
            return f"{self.whose.capitalize()} {period} budget of {usd(self.limit_micros)} is used up until {resets}."
        return (
            f"{self.percent}% of {self.whose} {period} budget is spent "
            f"({usd(self.spent_micros)} of {usd(self.limit_micros)}); it resets {resets}."
        )


def banner_for(principal: Principal, *, now: dt.datetime | None = None) -> Banner | None:
    """The most spent budget covering `principal`, if it has reached 80%."""
    now = now or timezone.now()
    worst: Banner | None = None
    for budget in Budget.objects.filter(budgets.covering(principal), enabled=True):
        banner = _banner(budget, now)
        if banner is not None and (worst is None or banner.percent > worst.percent):
            worst = banner
    return worst


def _banner(budget: Budget, now: dt.datetime) -> Banner | None:
    start, end = budgets.period_bounds(budget.period, now)
    spent = 0 if budget.period_start < start else budget.spent_micros  # a row not yet rolled over
    limit = budget.limit_micros
    percent = 100 if limit <= 0 else int(100 * spent / limit)  # floored: 79.9% is not yet 80%
    if percent < WARNING_PERCENT:
        return None
    level = "critical" if percent >= CRITICAL_PERCENT else "warning"
    return Banner(level, min(percent, 100), WHOSE.get(budget.scope, "a"), budget.period, spent, limit, end)
