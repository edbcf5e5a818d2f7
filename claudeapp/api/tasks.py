"""Tasks of the API package: the batches beat and partner budget alerts."""

from __future__ import annotations

import logging

import httpx
from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(ignore_result=True)
def settle_anthropic_batches() -> int:
    """Bill the results of /anthropic Message Batches that ended, whether or not the partner reads them."""
    from claudeapp.api import anthropic_batches  # imports models: only once Django is set up

    return anthropic_batches.settle_open()


@shared_task(bind=True, ignore_result=True, max_retries=3)
def post_partner_budget_alert(self, alert_id: int) -> None:  # type: ignore[no-untyped-def]
    """A partner's own budget alert (fired by billing.budgets), signed POST to its webhook."""
    from claudeapp.api import budget_alerts

    try:
        budget_alerts.deliver(alert_id=alert_id)
    except httpx.HTTPError as exc:
        log.warning("partner budget alert %s webhook failed: %s", alert_id, exc)
        raise self.retry(exc=exc, countdown=30 * 2**self.request.retries) from exc
