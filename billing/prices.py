"""Which price applies to a model at an instant, from a per-process cache of the price table."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from billing import redisconn
from billing.errors import PriceMissing
from billing.models import PriceVersion


def _load() -> dict[str, list[PriceVersion]]:
    by_model: dict[str, list[PriceVersion]] = defaultdict(list)
    for version in PriceVersion.objects.select_related("model").order_by("-effective_from"):
        by_model[version.model.model_id].append(version)
    return dict(by_model)


_cache = redisconn.cached("prices", _load)


def current_price(*, model_id: str, at: dt.datetime | None = None) -> PriceVersion:
    """The newest version in effect at `at` (default now). A model without one is refused, never billed $0."""
    at = at or timezone.now()
    for version in _cache.get().get(model_id, ()):
        if version.effective_from <= at:
            return version
    raise PriceMissing(model_id=model_id)


@receiver(post_save, sender=PriceVersion)
@receiver(post_delete, sender=PriceVersion)
def _prices_changed(**kwargs: object) -> None:
    transaction.on_commit(_cache.bump)
