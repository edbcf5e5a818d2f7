"""Budget alerts: an e-mail through Django's mail backend, and the webhook's JSON body delivered behind
the SSRF guard. Both say the amounts in dollars and name who the budget is for.

The operator's thresholds and webhook live on the Budget; a partner key's own live in its
AlertSubscription (set through claudeapp.api.budget_alerts, delivered signed by claudeapp.api.tasks;
billing.alert_subscriptions knows which budgets have one).
Both fire from budgets._alert_if_crossed, each threshold once per period and audience."""

from __future__ import annotations

import json
import logging

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.mail import send_mail

from billing import money
from billing.models import Budget, BudgetAlert
from billing.selectors import principal_labels
from claudeapp.core import ssrf

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 5.0


def who(budget: Budget) -> str:
    """The budget's scope by name: 'user alice', 'key “reports” (bob)', 'group analysts', 'the whole gateway'."""
    if budget.scope == "global" or budget.scope_id is None:
        return "the whole gateway"
    if budget.scope == "group":
        name = Group.objects.filter(pk=budget.scope_id).values_list("name", flat=True).first()
        return f"group {name or f'#{budget.scope_id}'}"
    label = principal_labels([(budget.scope, budget.scope_id)])[(budget.scope, budget.scope_id)]
    return f"user {label.name}" if budget.scope == "user" else label.name


def payload(alert: BudgetAlert) -> dict[str, object]:
    budget = alert.budget
    return {
        "type": "budget.threshold_reached",
        "alert_id": alert.pk,
        "budget_id": budget.pk,
        "scope": budget.scope,
        "scope_id": budget.scope_id,
        "scope_name": who(budget),
        "period": budget.period,
        "period_start": alert.period_start.isoformat(),
        "threshold_percent": alert.threshold_percent,
        "spent_micros": alert.spent_micros,
        "limit_micros": alert.limit_micros,
        "spent_usd": f"{alert.spent_micros / 1_000_000:.6f}",
        "limit_usd": f"{alert.limit_micros / 1_000_000:.6f}",
        "audience": "operator" if alert.subscription_id is None else "partner",
    }


def recipients(budget: Budget) -> list[str]:
    """BILLING_ALERT_EMAILS, plus the budget's user (or its key's owner) when they have an address."""
    to = list(settings.BILLING_ALERT_EMAILS)
    owner_id = None
    if budget.scope == "user":
        owner_id = budget.scope_id
    elif budget.scope == "partner_key":
        from django.apps import apps

        owner_id = apps.get_model("api", "PartnerKey").objects.filter(pk=budget.scope_id).values_list(
            "owner_id", flat=True).first()  # fmt: skip
    if owner_id is not None:
        email = get_user_model().objects.filter(pk=owner_id).values_list("email", flat=True).first()
        if email:
            to.append(email)
    return list(dict.fromkeys(to))


def message(alert: BudgetAlert) -> tuple[str, str]:
    budget = alert.budget
    spent, limit = money.usd(alert.spent_micros), money.usd(alert.limit_micros)
    left = money.usd(max(0, alert.limit_micros - alert.spent_micros))
    subject = f"Budget alert: {who(budget)} has used {alert.threshold_percent}% of its {budget.period}ly budget"
    body = (
        f"The {budget.period}ly budget of {who(budget)} reached {alert.threshold_percent}% of its limit.\n\n"
        f"Spent: {spent} of {limit} ({left} left) in the period that started {alert.period_start:%Y-%m-%d %H:%M %Z}.\n"
        "Calls are refused once a request's worst case no longer fits in what is left.\n"
    )
    return subject, body


def send_email(alert: BudgetAlert) -> int:
    """Mail the alert; returns how many messages went out (0 with no recipient). A mail failure is
    logged, not raised: the webhook, if any, still goes."""
    to = recipients(alert.budget)
    if not to:
        return 0
    subject, body = message(alert)
    try:
        return send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, to)
    except Exception as exc:  # SMTP down or refusing: say so, do not lose the webhook
        log.warning("billing: budget alert %s e-mail failed: %s", alert.pk, exc)
        return 0


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
