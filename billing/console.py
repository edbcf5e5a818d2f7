"""What the console shows on a user's or a partner key's page, and what the usage page counts: spend
today and this month, the budgets that cover it with what remains, the rate limits that apply."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import Q, Sum
from django.utils import timezone

from billing import budgets
from billing.ledger import billing_day
from billing.models import Budget, DailyRollup, RateLimitPolicy
from claudeapp.accounts.principals import Principal


def user_spend_filter(user_id: int) -> Q:
    """Rollup rows a user's budgets count: their own calls and their partner keys' (as budgets.covering)."""
    partner_key = apps.get_model("api", "PartnerKey")
    keys = list(partner_key.objects.filter(owner_id=user_id).values_list("pk", flat=True))
    return Q(principal_kind="user", principal_id=user_id) | Q(principal_kind="partner_key", principal_id__in=keys)


@dataclass(frozen=True)
class BudgetStanding:
    budget: Budget
    spent_micros: int  # this period, holds of calls under way included
    remaining_micros: int
    resets_at: dt.datetime


def budget_standing(budget: Budget, *, now: dt.datetime) -> BudgetStanding:
    start, end = budgets.period_bounds(budget.period, now)
    spent = 0 if budget.period_start < start else budget.spent_micros + budget.reserved_micros
    return BudgetStanding(budget, spent, max(0, budget.limit_micros - spent), end)


@dataclass(frozen=True)
class Overview:
    """A user's or a key's page in the console: spend, the budgets that cover it, the limits that apply."""

    today_micros: int
    month_micros: int
    through_keys_month_micros: int  # for a user: the part of the month spent through their partner keys
    budgets: list[BudgetStanding]
    limits: list[RateLimitPolicy]


def principal_overview(*, kind: str, pk: int) -> Overview:

    now = timezone.now()
    today = billing_day(now)
    if kind == "user":
        user = get_user_model().objects.get(pk=pk)
        spend_q, owner_id = user_spend_filter(pk), pk
    else:
        key = apps.get_model("api", "PartnerKey").objects.select_related("owner").get(pk=pk)
        user, owner_id = key.owner, key.owner_id
        spend_q = Q(principal_kind="partner_key", principal_id=pk)
    groups = frozenset(user.groups.values_list("pk", flat=True))
    principal = Principal(kind=kind, id=pk, user_id=owner_id, group_ids=groups)  # type: ignore[arg-type]
    month = DailyRollup.objects.filter(spend_q, day__gte=today.replace(day=1))
    sums = month.aggregate(
        month=Sum("cost_micros"),
        today=Sum("cost_micros", filter=Q(day=today)),
        keys=Sum("cost_micros", filter=Q(principal_kind="partner_key")),
    )
    return Overview(
        today_micros=sums["today"] or 0,
        month_micros=sums["month"] or 0,
        through_keys_month_micros=(sums["keys"] or 0) if kind == "user" else 0,
        budgets=[budget_standing(b, now=now) for b in Budget.objects.filter(budgets.covering(principal), enabled=True)],
        limits=list(RateLimitPolicy.objects.filter(_limits_q(kind, pk, groups), enabled=True)),
    )


def _limits_q(kind: str, pk: int, groups: frozenset[int]) -> Q:
    return Q(scope__in=["global", "default"]) | Q(scope=kind, scope_id=pk) | Q(scope="group", scope_id__in=groups)
