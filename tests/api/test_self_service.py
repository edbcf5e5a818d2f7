"""Self-service for a partner key: /api/v1/limits, key rotation with a grace period, the webhook
signing secret (shown, retrievable, rotatable, both secrets signing during the grace)."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing import budgets, limits, redisconn
from billing.errors import BudgetExceeded, RateLimited
from billing.models import Budget, RateLimitPolicy
from claudeapp.api import keys
from claudeapp.jobs import webhooks
from claudeapp.jobs.models import WebhookSecret
from tests.api.conftest import bearer

pytestmark = pytest.mark.django_db


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages"])  # self-service needs no scope


@pytest.fixture
def api(key):
    client = APIClient()
    client.credentials(**bearer(key))
    return client


@pytest.fixture
def seeded(db):
    from io import StringIO

    from django.core.management import call_command

    from billing import prices

    call_command("seed", stdout=StringIO())
    prices._cache.clear()


def _fresh(policy: RateLimitPolicy, owner: str = "") -> None:
    axes = ("requests", "input-tokens", "output-tokens", "concurrent")
    redisconn.client().delete(*(redisconn.key("rl", policy.pk, owner, axis) for axis in axes))


def test_limits_list_each_covering_budget_with_spent_held_remaining_and_reset(api, key, seeded):
    mine = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="day", limit_micros=1_000_000)
    owners = Budget.objects.create(scope="user", scope_id=key.owner_id, period="month", limit_micros=5_000_000)
    Budget.objects.create(scope="partner_key", scope_id=key.pk + 1000, period="day", limit_micros=1)  # not ours
    held = budgets.reserve(principal=keys.principal_for(key), model_id="claude-haiku-5-5", input_tokens=100,
                           max_tokens=100)  # fmt: skip
    Budget.objects.filter(pk=mine.pk).update(spent_micros=250_000)
    body = api.get("/api/v1/limits").json()
    by_id = {row["id"]: row for row in body["budgets"]}
    assert set(by_id) == {mine.pk, owners.pk}
    day = by_id[mine.pk]
    assert (day["limit_micros"], day["spent_micros"], day["held_micros"]) == (1_000_000, 250_000, held.amount_micros)
    assert day["remaining_micros"] == 1_000_000 - 250_000 - held.amount_micros
    assert day["resets_at"] == budgets.period_bounds("day", timezone.now())[1].isoformat().replace("+00:00", "Z")
    assert by_id[owners.pk]["scope"] == "user" and by_id[owners.pk]["period"] == "month"


def test_limits_list_each_rate_policy_with_what_is_used_this_minute(api, key, seeded):
    # One request a minute: the request taken stays "used" for a whole minute, whatever the test's pace.
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=1,
                                            output_tokens_per_minute=1000, concurrent_requests=2)  # fmt: skip
    RateLimitPolicy.objects.create(scope="user", scope_id=key.owner_id + 1000, requests_per_minute=1)  # not ours
    limits._policies.clear()
    _fresh(policy)
    ticket = limits.acquire(principal=keys.principal_for(key), model_id="claude-haiku-5-5", input_tokens=10,
                            max_tokens=100)  # fmt: skip
    (row,) = api.get("/api/v1/limits").json()["rate_limits"]
    axes = {axis["axis"]: axis for axis in row["axes"]}
    assert (row["id"], row["scope"], row["model"]) == (policy.pk, "partner_key", None)
    assert axes["requests"] | {"reset_seconds": 0} == {
        "axis": "requests", "limit": 1, "used": 1, "remaining": 0, "reset_seconds": 0,
    }  # fmt: skip
    assert 1 <= axes["requests"]["reset_seconds"] <= 60
    tokens = axes["output-tokens"]  # refills as the minute runs: what was taken, less what came back since
    assert 0 < tokens["used"] <= 100 and tokens["remaining"] == 1000 - tokens["used"]
    assert axes["concurrent"] == {"axis": "concurrent", "limit": 2, "used": 1, "remaining": 1, "reset_seconds": None}
    limits.finish(ticket=ticket, usage=None)


def test_a_rate_limit_refusal_names_the_limit_that_had_no_room(key, seeded):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=100,
                                            input_tokens_per_minute=50)  # fmt: skip
    limits._policies.clear()
    _fresh(policy)
    with pytest.raises(RateLimited) as refused:
        limits.acquire(principal=keys.principal_for(key), model_id="claude-haiku-5-5", input_tokens=40, max_tokens=1)
        limits.acquire(principal=keys.principal_for(key), model_id="claude-haiku-5-5", input_tokens=40, max_tokens=1)
    assert (refused.value.axis, refused.value.scope, refused.value.limit_value) == ("input-tokens", "partner_key", 50)


def test_a_budget_refusal_says_exhausted_or_too_large_for_what_is_left(key, seeded):
    principal = keys.principal_for(key)
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=10_000)
    with pytest.raises(BudgetExceeded) as too_large:
        budgets.reserve(principal=principal, model_id="claude-opus-5-5", input_tokens=10, max_tokens=100_000)
    assert too_large.value.reason == "insufficient" and too_large.value.remaining_micros == 10_000
    assert too_large.value.budget_id == budget.pk and too_large.value.requested_micros > 10_000
    Budget.objects.filter(pk=budget.pk).update(spent_micros=10_000)
    with pytest.raises(BudgetExceeded) as spent:
        budgets.reserve(principal=principal, model_id="claude-haiku-5-5", input_tokens=1, max_tokens=1)
    assert spent.value.reason == "exhausted" and spent.value.remaining_micros == 0


def test_rotating_the_current_key_shows_the_new_one_once_and_the_old_works_for_the_grace(api, key, settings):
    settings.PARTNER_KEY_ROTATION_GRACE_SECONDS = 600
    response = api.post("/api/v1/keys/current/rotate")
    assert response.status_code == 201 and response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["key"] != key.raw and keys.verify(body["key"]).pk == key.pk
    assert body["masked"].endswith(body["key"][-4:]) and body["webhook_secret"]["secret"].startswith("whsec_")
    until = dt.datetime.fromisoformat(body["previous_key_valid_until"])
    assert dt.timedelta(minutes=9) < until - timezone.now() <= dt.timedelta(minutes=10)
    assert api.get("/api/v1/me").status_code == 200  # the old key, still in its grace
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['key']}")
    assert fresh.get("/api/v1/me").json()["key"] == body["masked"]


def test_the_webhook_secret_is_issued_with_the_key_and_signs_its_deliveries(api, key):
    stored = WebhookSecret.objects.get(principal_kind="partner_key", principal_id=key.pk)
    body = api.get("/api/v1/keys/current/webhook_secret").json()
    assert body == {"secret": stored.secret, "previous_valid_until": None, "rotated_at": None}
    assert webhooks.secret_for(principal_kind="partner_key", principal_id=key.pk) == body["secret"]


def test_rotating_the_webhook_secret_signs_with_both_until_the_grace_ends(api, key, settings):
    settings.JOBS_WEBHOOK_SECRET_GRACE_SECONDS = 3600
    old = api.get("/api/v1/keys/current/webhook_secret").json()["secret"]
    response = api.post("/api/v1/keys/current/webhook_secret/rotate")
    assert response.status_code == 201
    new = response.json()["secret"]
    assert new != old and api.get("/api/v1/keys/current/webhook_secret").json()["secret"] == new
    payload = b'{"type":"job.succeeded"}'
    secrets_ = webhooks.signing_secrets(principal_kind="partner_key", principal_id=key.pk)
    header = webhooks.signature_header(secrets_=secrets_, body=payload, timestamp=int(time.time()))
    assert header.count("v1=") == 2
    assert webhooks.verify(secret=new, body=payload, header=header)  # a receiver already switched
    assert webhooks.verify(secret=old, body=payload, header=header)  # one that has not yet
    WebhookSecret.objects.filter(principal_id=key.pk).update(previous_valid_until=timezone.now())
    after = webhooks.signature_header(
        secrets_=webhooks.signing_secrets(principal_kind="partner_key", principal_id=key.pk),
        body=payload,
        timestamp=int(time.time()),
    )
    assert webhooks.verify(secret=new, body=payload, header=after)
    assert not webhooks.verify(secret=old, body=payload, header=after)


def test_a_principal_without_an_issued_secret_keeps_its_derived_one_until_it_rotates(api, key):
    WebhookSecret.objects.filter(principal_id=key.pk).delete()  # a key made before secrets were issued
    derived = webhooks.secret_for(principal_kind="partner_key", principal_id=key.pk)
    assert api.get("/api/v1/keys/current/webhook_secret").json()["secret"] == derived
    api.post("/api/v1/keys/current/webhook_secret/rotate")
    assert webhooks.signing_secrets(principal_kind="partner_key", principal_id=key.pk)[1] == derived


def test_a_revoked_key_can_use_none_of_it(api, key):
    keys.revoke_key(key=key)
    for method, path in (("get", "/api/v1/limits"), ("post", "/api/v1/keys/current/rotate"),
                         ("get", "/api/v1/keys/current/webhook_secret")):  # fmt: skip
        assert getattr(api, method)(path).status_code == 401
