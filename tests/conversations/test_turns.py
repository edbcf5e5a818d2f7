"""A chat turn end to end: async view -> limits, budget, router -> gateway -> emulator -> ledger."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient

from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from claudeapp.conversations import services
from claudeapp.conversations.models import Conversation, Message

pytestmark = [pytest.mark.anyio, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("gateway_settings")]


async def _read(response) -> str:
    return b"".join([chunk async for chunk in response.streaming_content]).decode()


async def _send(client: AsyncClient, conversation: Conversation, **fields) -> list[tuple[str, dict]]:
    response = await client.post(f"/c/{conversation.public_id}/send", fields)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/event-stream"
    body = await _read(response)
    events = []
    for frame in body.strip().split("\n\n"):
        name, data = frame.split("\n", 1)
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


@pytest.fixture
def conversation(chat_user):
    return services.create_conversation(owner_id=chat_user.pk)


@pytest.fixture
def aclient(chat_user):
    client = AsyncClient()
    client.force_login(chat_user)
    return client


async def test_a_turn_streams_tokens_and_records_model_tokens_and_cost(aclient, conversation, aclose_loop_clients):
    events = await _send(aclient, conversation, content="Tell me about tide pools", model="claude-sonnet-5-5")
    names = [name for name, _ in events]
    assert names[0] == "start" and names[-1] == "done"
    assert names.count("delta") >= 2
    streamed = "".join(data["text"] for name, data in events if name == "delta")
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.status == Message.Status.COMPLETE
    assert answer.content == streamed
    assert answer.model_used == "claude-sonnet-5-5"
    assert answer.input_tokens > 0 and answer.output_tokens > 0
    entry = await LedgerEntry.objects.aget(event_key=f"message:{answer.public_id}")
    assert entry.cost_micros == answer.cost_micros > 0
    assert "claude-sonnet-5-5" in events[-1][1]["html"]
    assert not await Reservation.objects.aexists()
    conversation = await Conversation.objects.aget(pk=conversation.pk)
    assert conversation.title == "Tell me about tide pools"
    assert conversation.last_model == "claude-sonnet-5-5"


async def test_a_529_storm_on_the_chosen_model_is_answered_by_its_fallback(aclient, conversation, aclose_loop_clients):
    events = await _send(aclient, conversation, content="[[fault:529@claude-opus-5-5]] hello", model="claude-opus-5-5")
    assert events[-1][0] == "done"
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.model_used == "claude-sonnet-5-5"
    assert answer.fallback_reason
    entry = await LedgerEntry.objects.aget(event_key=f"message:{answer.public_id}")
    assert entry.model_id == "claude-sonnet-5-5"


async def test_a_stream_cut_mid_answer_shows_truncation_and_still_bills(aclient, conversation, aclose_loop_clients):
    events = await _send(aclient, conversation, content="[[fault:stream-cut:3]] a long story", model="claude-haiku-5-5")
    assert events[-1][0] == "truncated"
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.status == Message.Status.TRUNCATED
    assert answer.content
    assert await LedgerEntry.objects.filter(event_key=f"message:{answer.public_id}").aexists()
    assert not await Reservation.objects.aexists()


async def test_when_no_model_can_answer_the_turn_is_kept_and_queued_as_a_job(
    aclient, conversation, aclose_loop_clients
):
    from claudeapp.jobs.models import Job

    events = await _send(aclient, conversation, content="[[fault:529]] are you there?", model="claude-haiku-5-5")
    assert events[-1][0] == "queued"
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.status == Message.Status.QUEUED
    job = await Job.objects.aget(pk=answer.job_id)
    assert job.message_ref == str(answer.public_id)
    assert await Message.objects.filter(
        conversation=conversation, role="user", content__contains="are you there"
    ).aexists()
    assert not await Reservation.objects.aexists()


async def test_rate_limited_turns_fail_in_plain_words_and_keep_the_question(
    aclient, conversation, chat_user, aclose_loop_clients
):
    await RateLimitPolicy.objects.acreate(scope="user", scope_id=chat_user.pk, requests_per_minute=1)
    await _send(aclient, conversation, content="first", model="claude-haiku-5-5")
    events = await _send(aclient, conversation, content="second", model="claude-haiku-5-5")
    assert events[-1][0] == "failed"
    assert "Rate limited: try again in" in events[-1][1]["html"]
    assert events[-1][1]["retry_after"] > 0
    assert await Message.objects.filter(conversation=conversation, role="user", content="second").aexists()


async def test_over_budget_turns_fail_naming_the_budget(aclient, conversation, chat_user, aclose_loop_clients):
    await Budget.objects.acreate(scope="user", scope_id=chat_user.pk, period="month", limit_micros=1)
    events = await _send(aclient, conversation, content="hello", model="claude-opus-5-5")
    assert events[-1][0] == "failed"
    assert "Over budget: the user budget" in events[-1][1]["html"]
    assert not await LedgerEntry.objects.aexists()


async def test_a_failed_turn_can_be_retried(aclient, conversation, chat_user, aclose_loop_clients):
    budget = await Budget.objects.acreate(scope="user", scope_id=chat_user.pk, period="month", limit_micros=1)
    await _send(aclient, conversation, content="retry me", model="claude-haiku-5-5")
    failed = await Message.objects.aget(conversation=conversation, role="assistant")
    await budget.adelete()
    events = await _send(aclient, conversation, retry=str(failed.public_id), model="claude-haiku-5-5")
    assert events[-1][0] == "done"
    answer = await Message.objects.aget(pk=failed.pk)
    assert answer.status == Message.Status.COMPLETE
    assert await Message.objects.filter(conversation=conversation, role="user").acount() == 1


async def test_auto_keeps_a_conversation_on_the_model_that_answered_before(aclient, conversation, aclose_loop_clients):
    await _send(aclient, conversation, content="hi there", model="claude-opus-5-5")
    await _send(aclient, conversation, content="and another thing", model="auto")
    answers = [m async for m in Message.objects.filter(conversation=conversation, role="assistant").order_by("id")]
    assert [a.model_used for a in answers] == ["claude-opus-5-5", "claude-opus-5-5"]


@pytest.mark.django_db(transaction=True)
def test_run_in_background_queues_a_job_whose_answer_lands_in_the_conversation(
    client, conversation, chat_user, gateway_settings
):
    from claudeapp.jobs import services as jobs
    from claudeapp.jobs.models import Job

    client.force_login(chat_user)
    response = client.post(
        f"/c/{conversation.public_id}/send", {"content": "summarise my week", "model": "auto", "background": "1"}
    )
    body = async_to_sync(_read)(response)
    assert body.startswith("event: queued")
    answer = Message.objects.get(conversation=conversation, role="assistant")
    assert answer.status == Message.Status.QUEUED
    job = Job.objects.get(pk=answer.job_id)
    jobs.run(job_id=job.pk)  # what a worker does; the worker tests run real Celery processes
    answer.refresh_from_db()
    assert answer.status == Message.Status.COMPLETE
    assert answer.content and answer.cost_micros > 0
    assert LedgerEntry.objects.filter(event_key=f"job:{job.pk}").count() == 1


async def test_at_the_orgs_anthropic_limit_a_turn_waits_in_the_queue_instead_of_hammering_claude(
    aclient, conversation, settings, aclose_loop_clients
):
    from asgiref.sync import sync_to_async

    from billing.upstream import observe_upstream

    settings.UPSTREAM_MAX_WAIT_SECONDS = 0.01
    headers = {"anthropic-ratelimit-requests-limit": "50", "anthropic-ratelimit-requests-remaining": "0"}
    await sync_to_async(observe_upstream)(model_id="claude-haiku-5-5", headers=headers)
    try:
        events = await _send(aclient, conversation, content="busy day", model="claude-haiku-5-5")
    finally:  # what the limiter learned lives in Redis for minutes: don't let it slow other tests
        await sync_to_async(_forget_upstream_limits)("claude-haiku-5-5")
    assert events[-1][0] == "queued"
    assert events[-1][1]["retry_after"] > 0
    answer = await Message.objects.aget(conversation=conversation, role="assistant")
    assert answer.status == Message.Status.QUEUED and answer.error_type == "upstream_busy"
    assert answer.job_id is not None


def _forget_upstream_limits(model_id: str) -> None:
    from billing import redisconn

    axes = ("requests", "tokens", "input-tokens", "output-tokens")
    redisconn.client().delete(*(redisconn.key("upstream", model_id, axis) for axis in axes))
