"""Cheap refusals first, zero upstream calls when refused: key, rate limit, the classifier's own
budget hold, the classifier, the count, the hold. The classifier's call is the principal's: it is
inside their limits and held and billed against their budgets. Over real HTTP, against the emulator."""

from __future__ import annotations

import uuid

import httpx
import pytest

from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from tests.api.test_messages_api import fresh_buckets

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages"])


def ask(server, key, *, model: str = "auto", max_tokens: int = 200, text: str | None = None) -> httpx.Response:
    # A distinct question each time, so the classifier's label cache never hides a call.
    prompt = text or f"Compare two sorting algorithms for case {uuid.uuid4().hex[:8]} in some detail."
    body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": prompt}]}
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
    return httpx.post(f"{server.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30)


def upstream_message_calls(emulator) -> int:
    return emulator.stats()["by_path"].get("POST /v1/messages", 0)


def test_rate_limited_auto_calls_never_reach_the_classifier(live_gateway, emulator, key):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=2)
    fresh_buckets(policy)
    statuses = [ask(live_gateway, key).status_code for _ in range(6)]
    assert statuses.count(200) == 2 and statuses.count(429) == 4, statuses
    assert upstream_message_calls(emulator) == 4  # two classifier calls and two answers, nothing for the 429s
    kinds = sorted(LedgerEntry.objects.filter(principal_id=key.pk).values_list("kind", flat=True))
    assert kinds == ["classification", "classification", "message", "message"]


def test_a_budget_with_no_room_refuses_before_the_classifier_is_asked(live_gateway, emulator, key):
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    response = ask(live_gateway, key)
    assert response.status_code == 402, response.text
    assert upstream_message_calls(emulator) == 0
    assert not LedgerEntry.objects.exists() and not Reservation.objects.exists()


def test_the_classifier_is_held_and_billed_inside_the_budget(live_gateway, emulator, key):
    """Room for the classifier's few tokens but not for the answer's worst case: the classifier
    runs and is billed, the answer is refused, and spend stays within the limit."""
    budget = Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=400)
    response = ask(live_gateway, key, max_tokens=4000)
    assert response.status_code == 402, response.text
    assert upstream_message_calls(emulator) == 1
    entry = LedgerEntry.objects.get()
    assert entry.kind == "classification" and entry.principal_id == key.pk
    budget.refresh_from_db()
    assert budget.spent_micros == entry.cost_micros <= budget.limit_micros
    assert budget.reserved_micros == 0 and not Reservation.objects.exists()


@pytest.mark.parametrize(
    ("model", "status"),
    [("claude-nonexistent", 404), ("claude-haiku-5-5", 402)],
)
def test_refusals_make_no_upstream_call(live_gateway, emulator, key, model, status):
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    response = ask(live_gateway, key, model=model)
    assert response.status_code == status, response.text
    assert emulator.stats()["total_requests"] == 0  # not even count_tokens


def test_an_unsure_prompt_is_counted_upstream_once_and_the_count_is_cached(live_gateway, emulator, key):
    image = {
        "type": "image",
        "source": {
            "type": "base64",
            "media_type": "image/png",
            "data": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
        },
    }
    body = {
        "model": "claude-haiku-5-5",
        "max_tokens": 50,
        "messages": [{"role": "user", "content": [image, {"type": "text", "text": f"What is it? {uuid.uuid4()}"}]}],
    }
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
    for _ in range(2):
        r = httpx.post(f"{live_gateway.url}/anthropic/v1/messages", json=body, headers=headers, timeout=30)
        assert r.status_code == 200, r.text
    assert emulator.stats()["by_path"].get("POST /v1/messages/count_tokens") == 1


def test_count_tokens_answers_from_the_same_cache_as_the_pipeline(live_gateway, emulator, key):
    """A body counted for a hold is not counted again by /count_tokens, and vice versa."""
    text = f"Describe tide pools {uuid.uuid4()} " * 800  # above the count threshold
    messages = [{"role": "user", "content": text}]
    headers = {"x-api-key": key.raw, "anthropic-version": "2023-06-01"}
    url = f"{live_gateway.url}/anthropic/v1/messages"
    first = httpx.post(f"{url}/count_tokens", json={"model": "claude-haiku-5-5", "messages": messages}, headers=headers)
    assert first.status_code == 200, first.text
    again = httpx.post(f"{url}/count_tokens", json={"model": "claude-haiku-5-5", "messages": messages}, headers=headers)
    assert again.json() == first.json()
    answered = httpx.post(
        url, json={"model": "claude-haiku-5-5", "max_tokens": 20, "messages": messages}, headers=headers, timeout=30
    )
    assert answered.status_code == 200, answered.text
    assert answered.json()["usage"]["input_tokens"] == first.json()["input_tokens"]
    assert emulator.stats()["by_path"].get("POST /v1/messages/count_tokens") == 1
