"""The JSON body a budget-alert webhook receives."""

from __future__ import annotations

from billing.models import BudgetAlert


def payload(alert: BudgetAlert) -> dict[str, object]:
    budget = alert.budget
    return {
        "type": "budget.threshold_reached",
        "alert_id": alert.pk,
        "budget_id": budget.pk,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "period": budget.period,
        "period_start": alert.period_start.isoformat(),
        "threshold_percent": alert.threshold_percent,
        "spent_micros": alert.spent_micros,
        "limit_micros": alert.limit_micros,
    }
