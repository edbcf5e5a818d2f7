"""Beat and webhook tasks: thin wrappers over billing's services."""

from __future__ import annotations

import datetime as dt
import logging

import httpx
from celery import shared_task
from django.conf import settings

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def reap_stale_reservations() -> int:
    from billing import budgets

    return budgets.reap_stale(older_than=dt.timedelta(seconds=settings.BILLING_RESERVATION_REAP_AGE_SECONDS))


@shared_task(ignore_result=True)
def roll_over_budget_periods() -> int:
    from billing import budgets

    return budgets.roll_over_periods()


@shared_task(bind=True, ignore_result=True, max_retries=3)
def post_budget_alert(self, alert_id: int, email: bool = True) -> None:  # type: ignore[no-untyped-def]
    from billing import alerts
    from billing.models import BudgetAlert

    alert = BudgetAlert.objects.select_related("budget").filter(pk=alert_id).first()
    if alert is None:
        return
    if email:
        alerts.send_email(alert)  # once: a webhook retry below does not mail again
    if not alert.budget.alert_webhook_url:
        return
    try:
        alerts.deliver(alert)  # a URL the SSRF guard refuses is logged there and not retried
    except httpx.HTTPError as exc:
        log.warning("billing: budget alert %s webhook failed: %s", alert_id, exc)
        raise self.retry(exc=exc, args=[alert_id, False], countdown=30 * 2**self.request.retries) from exc
