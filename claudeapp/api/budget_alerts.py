"""A partner key's own budget alerts: thresholds and a webhook on a budget that covers the key.

Apart from the operator's (Budget.alert_thresholds / alert_webhook_url, e-mail and an unsigned POST),
which keep working as they are. Set through `PUT /api/v1/limits/budgets/{id}/alerts` or the portal;
fired by billing.budgets (each threshold once per period); delivered by tasks.post_partner_budget_alert
under the job webhooks' SSRF guard (checked when set and again at delivery) and signed with the key's
webhook secret exactly like a job delivery (X-Gateway-Signature, verify with webhooks.verify).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.db import transaction
from django.utils import timezone
from rest_framework import exceptions, serializers

from billing import alert_subscriptions, alerts, budgets
from billing.models import AlertSubscription, Budget, BudgetAlert
from claudeapp.accounts.principals import Principal
from claudeapp.api import keys
from claudeapp.api.models import PartnerKey
from claudeapp.core import ssrf as core_ssrf
from claudeapp.jobs import ssrf, webhooks
from claudeapp.jobs.errors import InvalidWebhookUrl

log = logging.getLogger(__name__)

EVENT = "budget.threshold_reached"
MAX_THRESHOLDS = 10
TIMEOUT_SECONDS = 5.0


class AlertsInput(serializers.Serializer):
    thresholds = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=100),
        min_length=1,
        max_length=MAX_THRESHOLDS,
        help_text="Percentages of the budget's limit, 1-100; each fires once per period",
    )
    webhook_url = serializers.URLField(
        max_length=2000, help_text="A public http(s) URL; receives a signed POST per threshold crossed"
    )


class AlertsOutput(serializers.Serializer):
    budget_id = serializers.IntegerField()
    thresholds = serializers.ListField(child=serializers.IntegerField())
    webhook_url = serializers.URLField()
    fired_this_period = serializers.ListField(
        child=serializers.IntegerField(), help_text="Thresholds already reached (and posted) in the budget's period"
    )
    updated_at = serializers.DateTimeField()


def _key_id(principal: Principal) -> int:
    if principal.kind != keys.PRINCIPAL_KIND:
        raise exceptions.PermissionDenied("Budget alerts belong to a partner key.")
    return principal.id


def covering_budget(*, principal: Principal, budget_id: int) -> Budget:
    """An enabled budget covering the key (its own, its owner's, a group's, the global one); any other is a 404."""
    budget = Budget.objects.filter(budgets.covering(principal), pk=budget_id, enabled=True).first()
    if budget is None:
        raise exceptions.NotFound(f"budget: no budget {budget_id} covers this key (GET /api/v1/limits lists them).")
    return budget


def get(*, principal: Principal, budget_id: int) -> AlertSubscription:
    budget = covering_budget(principal=principal, budget_id=budget_id)
    found = AlertSubscription.objects.filter(budget=budget, partner_key_id=_key_id(principal)).first()
    if found is None:
        raise exceptions.NotFound(f"budget: no alerts of yours on budget {budget_id}.")
    found.budget = budget  # already read: output() needs its period
    return found


def set_alerts(*, principal: Principal, budget_id: int, data: Any) -> AlertSubscription:
    """Validate (400 naming the field) and store the key's thresholds and webhook for the budget."""
    budget = covering_budget(principal=principal, budget_id=budget_id)
    valid = AlertsInput(data=data)
    valid.is_valid(raise_exception=True)
    url = valid.validated_data["webhook_url"]
    try:
        ssrf.check_url(url)  # again at delivery: the name may resolve elsewhere by then
    except InvalidWebhookUrl as exc:
        raise serializers.ValidationError({"webhook_url": [str(exc)]}) from exc
    with transaction.atomic():
        found, _ = AlertSubscription.objects.update_or_create(
            budget=budget,
            partner_key_id=_key_id(principal),
            defaults={"thresholds": sorted(set(valid.validated_data["thresholds"])), "webhook_url": url},
        )
        alert_subscriptions.changed()
    return found


def clear_alerts(*, principal: Principal, budget_id: int) -> None:
    subscription = get(principal=principal, budget_id=budget_id)
    with transaction.atomic():
        subscription.delete()
        alert_subscriptions.changed()


def attach(*, principal: Principal, budgets: list[dict[str, Any]]) -> None:
    """Set `alerts` on each budget row (billing.selectors.budget_status) to the key's own, or None."""
    found: dict[int, AlertSubscription] = {}
    if principal.kind == keys.PRINCIPAL_KIND:
        rows = AlertSubscription.objects.select_related("budget").filter(
            budget_id__in=[row["id"] for row in budgets], partner_key_id=principal.id
        )
        found = {row.budget_id: row for row in rows}
    for row in budgets:
        subscription = found.get(row["id"])
        row["alerts"] = output(subscription) if subscription else None


def output(subscription: AlertSubscription) -> dict[str, Any]:
    """The settings, and which thresholds already fired this period (each fires once per period)."""
    start, _ = budgets.period_bounds(subscription.budget.period, timezone.now())
    fired = BudgetAlert.objects.filter(subscription=subscription, period_start__gte=start)
    return {
        "budget_id": subscription.budget_id,
        "thresholds": subscription.thresholds,
        "webhook_url": subscription.webhook_url,
        "fired_this_period": sorted(fired.values_list("threshold_percent", flat=True)),
        "updated_at": subscription.updated_at,
    }


def deliver(*, alert_id: int) -> str:
    """POST one fired alert to its subscription's webhook, signed with the key's webhook secret.

    Returns what happened ('delivered', 'skipped: ...', 'refused: ...', 'rejected: HTTP n'); raises
    httpx.HTTPError when another attempt may succeed (connection failure, 5xx, 408, 429)."""
    alert = BudgetAlert.objects.select_related("budget", "subscription").filter(pk=alert_id).first()
    if alert is None or alert.subscription is None:
        return "skipped: no such partner alert"
    subscription = alert.subscription
    key = PartnerKey.objects.filter(pk=subscription.partner_key_id, revoked_at__isnull=True).first()
    if key is None:
        return "skipped: the key is revoked"
    if not Budget.objects.filter(budgets.covering(keys.principal_for(key)), pk=alert.budget_id).exists():
        return "skipped: the budget no longer covers the key"  # e.g. its owner left the group
    try:
        target = ssrf.check_url(subscription.webhook_url)
    except InvalidWebhookUrl as exc:
        log.warning("partner budget alert %s refused: %s", alert_id, exc)
        return f"refused: {exc.reason}"
    body = json.dumps({**alerts.payload(alert), "key_id": subscription.partner_key_id}, separators=(",", ":"))
    response = core_ssrf.post(
        subscription.webhook_url, target, content=body.encode(), headers=_headers(subscription, body.encode()),
        timeout=TIMEOUT_SECONDS,
    )  # fmt: skip
    if response.status_code >= 500 or response.status_code in (408, 429):
        response.raise_for_status()
    if not 200 <= response.status_code < 300:
        log.warning("partner budget alert %s: receiver answered %s", alert_id, response.status_code)
        return f"rejected: HTTP {response.status_code}"
    return "delivered"


def _headers(subscription: AlertSubscription, body: bytes) -> dict[str, str]:
    secrets_ = webhooks.signing_secrets(principal_kind=keys.PRINCIPAL_KIND, principal_id=subscription.partner_key_id)
    return {
        "Content-Type": "application/json",
        "User-Agent": "claudeapp-webhooks/1",
        webhooks.SIGNATURE_HEADER: webhooks.signature_header(secrets_=secrets_, body=body, timestamp=int(time.time())),
        "X-Gateway-Event": EVENT,
    }
