"""Budget-alert webhooks: the JSON body, and its delivery behind the SSRF guard."""

from __future__ import annotations

import json
import logging

from django.conf import settings

from billing.models import BudgetAlert
from claudeapp.core import ssrf

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


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


def deliver(alert: BudgetAlert) -> str:
    """POST the alert to its budget's webhook: 'delivered', or 'refused: <why>' when the URL is not a
    public target (checked now, at delivery: a name may resolve elsewhere than when it was saved).
    Raises httpx.HTTPError when another attempt may succeed."""
    url = alert.budget.alert_webhook_url
    try:
        target = ssrf.check_url(url, allow_private=settings.BILLING_ALERT_WEBHOOK_ALLOW_PRIVATE)
    except ssrf.UnsafeUrl as exc:
        log.warning("billing: budget alert %s webhook refused: %s", alert.pk, exc.reason)
        return f"refused: {exc.reason}"
    body = json.dumps(payload(alert), separators=(",", ":")).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "claudeapp-budget-alerts/1"}
    response = ssrf.post(url, target, content=body, headers=headers, timeout=TIMEOUT_SECONDS)
    response.raise_for_status()
    return "delivered"
