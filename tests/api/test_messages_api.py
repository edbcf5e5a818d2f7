"""`POST /api/v1/messages` in process (AsyncClient): limits, budget, router, gateway, emulator, ledger."""

from __future__ import annotations

import json

import pytest
from django.test import AsyncClient

from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from claudeapp.conversations.models import Conversation, Message

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("seeded_api")]


def fresh_buckets(policy) -> None:
    """Row ids restart with each test database; a bucket left in Redis by an earlier run must not count."""
    from billing import redisconn

    redisconn.client().delete(
        *(redisconn.key("rl", policy.pk, "", axis) for axis in ("requests", "input-tokens", "output-tokens"))
    )


HI = [{"role": "user", "content": "Tell me about tide pools"}]


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "conversations", "usage"])


class KeyClient(AsyncClient):
    def __init__(self, raw: str) -> None:
        super().__init__()
        self.raw = raw

    async def post(self, path, data=None, content_type=None, **extra):  # type: ignore[override]
        return await super().post(path, data, content_type, headers={"authorization": f"Bearer {self.raw}"}, **extra)


@pytest.fixture
def other_key(partner_key_factory):
    return partner_key_factory(scopes=["models", "conversations"])


@pytest.fixture
def aclient(key):
    return KeyClient(key.raw)


async def _post(client: AsyncClient, body, **extra):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return await client.post("/api/v1/messages", data, content_type="application/json", **extra)


async def _events(response) -> list[tuple[str, dict]]:
    raw = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = []
    for frame in raw.strip().split("\n\n"):
        name, data = frame.split("\n", 1)
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_a_stateless_turn_answers_json_with_model_usage_cost_and_route_headers(aclient, key, aclose_loop_clients):
    response = await _post(aclient, {"model": "claude-haiku-5-5", "messages": HI, "max_tokens": 64})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["model"] == "claude-haiku-5-5" and body["conversation_id"] is None
    assert body["text"] and body["content"][0]["type"] == "text"
    assert body["usage"]["input_tokens"] > 0 and body["usage"]["output_tokens"] > 0
    assert body["routing_reason"] and body["fallback_reason"] is None
    entry = await LedgerEntry.objects.aget(upstream_message_id=body["id"])
    assert entry.cost_micros == body["cost_micros"] > 0
    assert entry.principal_kind == "partner_key" and entry.principal_id == key.pk
    assert response["x-route-model"] == "claude-haiku-5-5" and response["x-route-reason"]
    assert not await Reservation.objects.aexists()


async def test_content_alone_is_a_one_message_turn_and_auto_routes(aclient, aclose_loop_clients):
    response = await _post(aclient, {"model": "auto", "content": "hi"})
    assert response.status_code == 200, response.content
    assert response.json()["model"].startswith("claude-")


async def test_max_tokens_is_capped_by_the_models_max_output(aclient, aclose_loop_clients):
    response = await _post(aclient, {"model": "claude-haiku-5-5", "messages": HI, "max_tokens": 10**9})
    assert response.status_code == 200, response.content


async def test_a_streamed_turn_sends_start_deltas_and_done_and_bills_once(aclient, aclose_loop_clients):
    response = await _post(aclient, {"model": "claude-sonnet-5-5", "messages": HI, "stream": True})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/event-stream")
    assert response["x-route-model"] == "claude-sonnet-5-5"
    events = await _events(response)
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done" and names.count("delta") >= 2
    done = events[-1][1]
    assert done["text"] == "".join(data["text"] for name, data in events if name == "delta")
    assert await LedgerEntry.objects.filter(upstream_message_id=done["id"]).acount() == 1


async def test_a_stream_cut_after_tokens_ends_with_an_error_event_and_still_bills(aclient, aclose_loop_clients):
    body = {
        "model": "claude-haiku-5-5",
        "stream": True,
        "messages": [{"role": "user", "content": "[[fault:stream-cut:3]] go"}],
    }
    events = await _events(await _post(aclient, body))
    assert events[-1][0] == "error" and events[-1][1]["message"]["status"] == "truncated"
    assert await LedgerEntry.objects.acount() == 1
    assert not await Reservation.objects.aexists()


async def test_a_conversation_turn_continues_with_history_and_sets_the_partner_key(aclient, key, aclose_loop_clients):
    conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
    first = await _post(aclient, {"conversation_id": str(conversation.public_id), "content": "My name is Ada."})
    assert first.status_code == 200, first.content
    second = await _post(
        aclient, {"conversation_id": str(conversation.public_id), "content": "What is my name?", "stream": True}
    )
    events = await _events(second)
    assert events[0][0] == "start" and events[-1][0] == "done"
    assert events[-1][1]["conversation_id"] == str(conversation.public_id)
    roles = [m.role async for m in Message.objects.filter(conversation=conversation).order_by("created_at", "id")]
    assert roles == ["user", "assistant", "user", "assistant"]
    answers = [m async for m in Message.objects.filter(conversation=conversation, role="assistant")]
    assert all(a.status == Message.Status.COMPLETE and a.cost_micros > 0 for a in answers)
    assert await LedgerEntry.objects.filter(event_key__startswith="message:").acount() == 2


async def test_a_conversation_turn_nothing_can_answer_is_kept_and_queued_as_a_job(aclient, key, aclose_loop_clients):
    from claudeapp.jobs.models import Job

    conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
    body = {
        "conversation_id": str(conversation.public_id),
        "content": "[[fault:529]] anyone?",
        "model": "claude-haiku-5-5",
    }
    response = await _post(aclient, body)
    assert response.status_code == 202, response.content
    queued = response.json()
    job = await Job.objects.aget(pk=queued["job_id"])
    assert job.message_ref == queued["id"]
    answer = await Message.objects.aget(public_id=queued["id"])
    assert answer.status == Message.Status.QUEUED
    assert not await Reservation.objects.aexists()


async def test_a_streamed_conversation_turn_that_cannot_be_answered_is_queued_too(aclient, key, aclose_loop_clients):
    conversation = await Conversation.objects.acreate(owner_id=key.owner_id, partner_key_id=key.pk)
    body = {"conversation_id": str(conversation.public_id), "content": "[[fault:529]] hm", "stream": True}
    response = await _post(aclient, body)
    assert response.status_code == 202 and response.json()["status"] == "queued"


async def test_a_stateless_turn_nothing_can_answer_is_a_529_overloaded_error(aclient, aclose_loop_clients):
    for stream in (False, True):
        body = {
            "model": "claude-haiku-5-5",
            "stream": stream,
            "messages": [{"role": "user", "content": "[[fault:529]] x"}],
        }
        response = await _post(aclient, body)
        assert response.status_code == 529  # what /anthropic (and Anthropic) answer: one status for overload
        assert response.json()["error"]["type"] == "overloaded_error" and int(response["retry-after"]) >= 1
    assert not await LedgerEntry.objects.aexists() and not await Reservation.objects.aexists()


async def test_an_upstream_429_is_a_429_naming_upstream_not_an_overload(aclient, aclose_loop_clients):
    # Every model of the chain says 429 with a wait past the gateway's retry cap: upstream's own rate limit.
    prompt = "[[fault:429]] [[retry-after:40]] x"
    response = await _post(aclient, {"model": "claude-haiku-5-5", "messages": [{"role": "user", "content": prompt}]})
    assert response.status_code == 429, response.content
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error" and error["limit"] == {"axis": "upstream"}
    assert response["retry-after"] == "40"
    assert not await LedgerEntry.objects.aexists() and not await Reservation.objects.aexists()


async def test_another_keys_conversation_is_a_404_and_nothing_is_saved(aclient, other_key, aclose_loop_clients):
    other = other_key
    conversation = await Conversation.objects.acreate(owner_id=other.owner_id, partner_key_id=other.pk)
    response = await _post(aclient, {"conversation_id": str(conversation.public_id), "content": "hi"})
    assert response.status_code == 404
    assert not await Message.objects.aexists()


async def test_rate_limited_calls_get_429_with_retry_after_and_limit_headers(aclient, key, aclose_loop_clients):
    policy = await RateLimitPolicy.objects.acreate(scope="partner_key", scope_id=key.pk, requests_per_minute=1)
    fresh_buckets(policy)
    ok = await _post(aclient, {"model": "claude-haiku-5-5", "messages": HI})
    assert ok.status_code == 200, (ok.content, dict(ok.headers))
    assert ok["x-ratelimit-remaining-requests"] == "0"
    limited = await _post(aclient, {"model": "claude-haiku-5-5", "messages": HI})
    assert limited.status_code == 429
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited["retry-after"]) >= 1 and limited["x-ratelimit-limit-requests"] == "1"
    assert limited.json()["error"]["limit"] | {"retry_after_seconds": 0} == {
        "axis": "requests", "scope": "partner_key", "limit": 1, "retry_after_seconds": 0,
    }  # fmt: skip
    assert limited.json()["error"]["message"].startswith("Rate limit exceeded: requests per minute (1)")


async def test_an_exhausted_budget_is_a_402_naming_it_and_its_reset(aclient, key, aclose_loop_clients):
    budget = await Budget.objects.acreate(scope="partner_key", scope_id=key.pk, period="month", limit_micros=0)
    response = await _post(aclient, {"model": "claude-opus-5-5", "messages": HI})
    assert response.status_code == 402
    error = response.json()["error"]
    detail = error["budget"]
    assert (detail["id"], detail["scope"], detail["period"], detail["reason"]) == (budget.pk, "partner_key", "month",
                                                                                    "exhausted")  # fmt: skip
    assert detail["remaining_micros"] == 0 and detail["requested_micros"] > 0
    assert "is used up" in error["message"] and detail["resets_at"] in error["message"]
    assert response["x-budget-remaining"] == "0" and response["x-budget-reset"] == detail["resets_at"]
    assert not await LedgerEntry.objects.aexists()


async def test_a_request_larger_than_what_is_left_is_told_to_lower_max_tokens(aclient, key, aclose_loop_clients):
    await Budget.objects.acreate(scope="partner_key", scope_id=key.pk, period="day", limit_micros=20_000)
    response = await _post(aclient, {"model": "claude-opus-5-5", "messages": HI, "max_tokens": 32_000})
    assert response.status_code == 402
    error = response.json()["error"]
    assert error["budget"]["reason"] == "insufficient" and error["budget"]["remaining_micros"] == 20_000
    assert error["budget"]["requested_micros"] > 20_000 and "lower max_tokens" in error["message"]
    small = await _post(aclient, {"model": "claude-opus-5-5", "messages": HI, "max_tokens": 16})
    assert small.status_code == 200, small.content  # the advice works


async def test_a_conversations_model_is_checked_at_creation_and_used_by_its_turns(aclient, aclose_loop_clients):
    bad = await aclient.post("/api/v1/conversations", {"model": "nope"}, content_type="application/json")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "model"
    created = await aclient.post("/api/v1/conversations", {"model": "claude-opus-5-5"}, content_type="application/json")
    assert created.status_code == 201 and created.json()["model"] == "claude-opus-5-5"
    turn = await _post(aclient, {"conversation_id": created.json()["id"], "content": "Hello"})
    assert turn.status_code == 200, turn.content
    assert turn.json()["model"] == "claude-opus-5-5" and turn["x-route-model"] == "claude-opus-5-5"
    other = await _post(
        aclient, {"conversation_id": created.json()["id"], "content": "Hi", "model": "claude-haiku-5-5"}
    )
    assert other.json()["model"] == "claude-haiku-5-5"  # a turn's own model still wins


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": ""}]}, "messages.0.content"),
        ({"messages": HI, "max_tokens": 0}, "max_tokens"),
        ({"messages": HI, "max_tokens": "many"}, "max_tokens"),
        ({"messages": HI, "stream": "perhaps"}, "stream"),
        ({"messages": HI, "metadata": {"team": {"nested": 1}}}, "metadata.team"),
        ({"messages": HI, "content": "also"}, "content"),
        ({"conversation_id": "not-a-uuid", "content": "x"}, "conversation_id"),
        ({}, "messages"),
    ],
)
async def test_invalid_bodies_are_400s_naming_the_field(aclient, body, field, aclose_loop_clients):
    response = await _post(aclient, body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("raw", [b"", b"[]", b"null", b"{", b'{"a":' * 5000, b"\xff\xfe", b'"text"'])
async def test_malformed_bodies_are_400s_never_500s(aclient, raw, aclose_loop_clients):
    response = await _post(aclient, raw)
    assert response.status_code == 400


async def test_an_unknown_model_is_a_404(aclient, aclose_loop_clients):
    response = await _post(aclient, {"model": "claude-imaginary-9", "messages": HI})
    assert response.status_code == 404 and "claude-imaginary-9" in response.json()["error"]["message"]


async def test_a_key_without_the_messages_scope_is_refused(other_key, aclose_loop_clients):
    client = KeyClient(other_key.raw)
    response = await _post(client, {"messages": HI})
    assert response.status_code == 403
