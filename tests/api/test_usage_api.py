"""`GET /api/v1/usage` matches the ledger: by day and model, totals, this key or the whole owner."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import Sum
from django.utils import timezone
from rest_framework.test import APIClient

from billing import ledger, prices
from billing.costs import Usage
from billing.models import LedgerEntry
from claudeapp.accounts.principals import Principal
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(partner_key_factory, seeded_prices):
    return partner_key_factory(scopes=["usage"])


@pytest.fixture
def seeded_prices(db):
    from io import StringIO

    from django.core.management import call_command

    call_command("seed", stdout=StringIO())
    prices._cache.clear()


def _bill(principal: Principal, model: str, n: int, kind: str = "message") -> None:
    ledger.record_once(
        principal=principal, kind=kind, subject=f"s{n}", model_id=model,
        usage=Usage(input_tokens=100 * n, output_tokens=10 * n), price=prices.current_price(model_id=model),
        event_key=f"test:{principal.key}:{model}:{n}", batch=False,
    )  # fmt: skip


def _key_principal(key) -> Principal:
    return Principal(kind="partner_key", id=key.pk, user_id=key.owner_id)


def test_usage_by_day_and_model_matches_the_ledger(key):
    me = _key_principal(key)
    _bill(me, "claude-haiku-5-5", 1)
    _bill(me, "claude-haiku-5-5", 2)
    _bill(me, "claude-opus-5-5", 3)
    _bill(Principal(kind="user", id=key.owner_id, user_id=key.owner_id), "claude-opus-5-5", 4)  # browser use
    client = APIClient()
    client.credentials(**bearer(key))
    body = client.get("/api/v1/usage").json()
    mine = LedgerEntry.objects.filter(principal_kind="partner_key", principal_id=key.pk)
    assert body["totals"]["cost_micros"] == mine.aggregate(s=Sum("cost_micros"))["s"] > 0
    assert body["totals"]["requests"] == 3
    by_model = {row["model"]: row for row in body["data"]}
    assert by_model["claude-haiku-5-5"]["input_tokens"] == 300 and by_model["claude-haiku-5-5"]["requests"] == 2
    owner = client.get("/api/v1/usage", {"scope": "owner"}).json()
    everything = LedgerEntry.objects.filter(user_id=key.owner_id).aggregate(s=Sum("cost_micros"))["s"]
    assert owner["totals"]["cost_micros"] == everything and owner["totals"]["requests"] == 4


def test_usage_filters_by_date_range_and_refuses_bad_params(key):
    me = _key_principal(key)
    _bill(me, "claude-haiku-5-5", 1)
    client = APIClient()
    client.credentials(**bearer(key))
    today = timezone.now().date()
    assert client.get("/api/v1/usage", {"start": str(today)}).json()["totals"]["requests"] == 1
    assert client.get("/api/v1/usage", {"end": str(today - dt.timedelta(days=1))}).json()["totals"]["requests"] == 0
    bad = client.get("/api/v1/usage", {"scope": "everyone"})
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "scope"
    assert client.get("/api/v1/usage", {"start": "soon"}).status_code == 400


def test_another_keys_usage_is_not_counted_and_the_scope_is_required(key, partner_key_factory):
    other = partner_key_factory(scopes=["usage", "messages"])
    _bill(_key_principal(other), "claude-haiku-5-5", 1)
    client = APIClient()
    client.credentials(**bearer(key))
    assert client.get("/api/v1/usage").json()["totals"]["requests"] == 0
    no_scope = APIClient()
    no_scope.credentials(**bearer(partner_key_factory(scopes=["messages"])))
    assert no_scope.get("/api/v1/usage").status_code == 403


def test_the_routers_classifier_calls_are_their_own_line_and_subtotal(key):
    me = _key_principal(key)
    _bill(me, "claude-haiku-5-5", 1)
    _bill(me, "claude-haiku-5-5", 2, kind="classification")  # the router asked Haiku for a label
    _bill(me, "claude-haiku-5-5", 3, kind="classification")
    _bill(me, "claude-opus-5-5", 4)
    client = APIClient()
    client.credentials(**bearer(key))
    body = client.get("/api/v1/usage").json()
    rows = {(row["model"], row["kind"]): row for row in body["data"]}
    assert set(rows) == {
        ("claude-haiku-5-5", "calls"),
        ("claude-haiku-5-5", "classifier"),
        ("claude-opus-5-5", "calls"),
    }
    assert (
        rows[("claude-haiku-5-5", "calls")]["requests"] == 1
        and rows[("claude-haiku-5-5", "calls")]["input_tokens"] == 100
    )
    classifier = rows[("claude-haiku-5-5", "classifier")]
    assert (classifier["requests"], classifier["input_tokens"]) == (2, 500)
    billed = LedgerEntry.objects.filter(principal_id=key.pk, kind="classification").aggregate(s=Sum("cost_micros"))["s"]
    assert classifier["cost_micros"] == billed == body["totals"]["classifier"]["cost_micros"] > 0
    assert body["totals"]["requests"] == 4 and body["totals"]["classifier"]["requests"] == 2
