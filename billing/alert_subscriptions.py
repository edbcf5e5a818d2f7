"""Which budgets a partner key watches with its own alerts (AlertSubscription), for budgets._alert_if_crossed.

A per-process copy, so a settlement on a budget nobody subscribed to asks Postgres nothing more; the
subscriptions themselves are read live by the alert INSERT. Apart from billing.alerts (mail, SSRF guard,
selectors) so the settlement path imports nothing heavier than this.
"""

from __future__ import annotations

from django.db import transaction

from billing import redisconn
from billing.models import AlertSubscription

TABLE = AlertSubscription._meta.db_table


def _load() -> frozenset[int]:
    return frozenset(AlertSubscription.objects.values_list("budget_id", flat=True).distinct())


_watched = redisconn.cached("alert_subscriptions", _load)


def watched(budget_id: int) -> bool:
    return budget_id in _watched.get()


def changed() -> None:
    """Call after writing AlertSubscription rows: this process sees it at once, the others on commit
    (and within BILLING_CACHE_SECONDS at worst, like budgets' own coverage copy)."""
    _watched.clear()
    transaction.on_commit(_watched.bump)
