from __future__ import annotations

import datetime as dt
import itertools
from io import StringIO

import pytest

from billing import limits, prices, redisconn
from claudeapp.accounts.principals import Principal


def _clear_redis() -> None:
    client = redisconn.client()
    keys = list(client.scan_iter(match=redisconn.key("*"), count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture(autouse=True)
def fresh_billing_state():
    """Each test starts with empty per-process caches and no limiter state of ours in Redis."""
    prices._cache.clear()
    limits._policies.clear()
    _clear_redis()
    yield
    prices._cache.clear()
    limits._policies.clear()


@pytest.fixture
def seeded(db):
    from billing import seed as billing_seed
    from routing import seed as routing_seed

    routing_seed.run(stdout=StringIO())
    billing_seed.run(stdout=StringIO())
    prices._cache.clear()


@pytest.fixture
def principal_factory(user_factory):
    partner_ids = itertools.count(1000)

    def make(*, kind: str = "user", user=None, group_ids: frozenset[int] = frozenset()) -> Principal:
        user = user or user_factory()
        if kind == "partner_key":
            return Principal(kind="partner_key", id=next(partner_ids), user_id=user.pk, group_ids=group_ids)
        return Principal(kind="user", id=user.pk, user_id=user.pk, group_ids=group_ids)

    return make


@pytest.fixture
def budget_factory(db):
    from billing.models import Budget

    def make(**fields) -> Budget:
        fields.setdefault("scope", "global")
        fields.setdefault("period", "month")
        fields.setdefault("limit_micros", 1_000_000)
        fields.setdefault("period_start", dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        return Budget.objects.create(**fields)

    return make


@pytest.fixture
def policy_factory(db):
    from billing.models import RateLimitPolicy

    def make(**fields) -> RateLimitPolicy:
        fields.setdefault("scope", "global")
        policy = RateLimitPolicy.objects.create(**fields)
        limits._policies.clear()
        return policy

    return make


@pytest.fixture
def price_factory(db):
    from billing.models import PriceVersion
    from routing.models import Model

    ids = itertools.count(1)

    def make(*, model_id: str | None = None, **fields) -> PriceVersion:
        model_id = model_id or f"test-model-{next(ids)}"
        model, _ = Model.objects.get_or_create(
            model_id=model_id, defaults={"display_name": model_id, "family": "other"}
        )
        fields.setdefault("effective_from", dt.datetime(2025, 1, 1, tzinfo=dt.UTC))
        for cls in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read"):
            fields.setdefault(f"{cls}_micros", 1_000_000)
        version = PriceVersion.objects.create(model=model, **fields)
        prices._cache.clear()
        return version

    return make
