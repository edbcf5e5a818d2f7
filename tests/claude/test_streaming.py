"""astream() against the real emulator: events, transparent retry before the first token,
truncation after it, and closing upstream when the consumer goes away."""

from __future__ import annotations

import asyncio

import pytest

from claudeapp.claude import gateway
from claudeapp.claude.errors import NoModelAvailable, UpstreamBadRequest, UpstreamUnavailable

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("gateway_settings", "aclose_loop_clients")]

OPUS, SONNET = "claude-opus-5-5", "claude-sonnet-5-5"
CHAIN = [OPUS, SONNET]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


async def collect(**kwargs) -> list[gateway.StreamEvent]:
    kwargs.setdefault("max_tokens", 300)
    return [event async for event in gateway.astream(**kwargs)]


def kinds(events: list[gateway.StreamEvent]) -> list[str]:
    names = [type(e).__name__ for e in events]
    # Collapse the run of deltas so the expected shape reads at a glance.
    return [n for i, n in enumerate(names) if n != "TextDelta" or names[i - 1] != "TextDelta"]


def calls(emulator, model: str) -> int:
    return emulator.stats()["by_model"].get(model, 0)


async def test_a_stream_yields_start_deltas_and_an_end_with_ttft_and_usage():
    events = await collect(models=[SONNET], messages=ask("Tell me about streams"))
    assert kinds(events) == ["StreamStart", "TextDelta", "StreamEnd"]
    start, result = events[0], events[-1].result
    assert start.model == SONNET and start.message_id == result.message_id and start.request_id == result.request_id
    assert result.text == "".join(e.text for e in events if isinstance(e, gateway.TextDelta))
    assert 0 < result.ttft_ms <= result.latency_ms
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 1
    assert result.stop_reason == "end_turn" and not result.truncated
    assert result.ratelimit_headers


async def test_an_overloaded_error_before_the_first_token_is_retried_unseen(emulator):
    events = await collect(models=[SONNET], messages=ask("Hello [[fault:stream-error:1]]"))
    assert kinds(events) == ["StreamStart", "TextDelta", "StreamEnd"]
    result = events[-1].result
    assert [a.outcome for a in result.attempts] == ["overloaded_error", "ok"]
    assert result.model_used == SONNET and calls(emulator, SONNET) == 2


async def test_a_model_that_keeps_failing_in_stream_falls_back_unseen(emulator):
    events = await collect(models=CHAIN, messages=ask(f"Hello [[fault:stream-error@{OPUS}]]"))
    assert kinds(events) == ["StreamStart", "TextDelta", "StreamEnd"]
    assert events[0].model == SONNET
    result = events[-1].result
    assert result.model_used == SONNET and result.fallback_reason == f"{OPUS}: overloaded_error"
    assert calls(emulator, OPUS) == 3


async def test_a_stream_cut_after_tokens_ends_truncated_with_the_usage_so_far(emulator):
    events = await collect(models=CHAIN, messages=ask("Tell me a long story [[fault:stream-cut:4]]"))
    assert kinds(events) == ["StreamStart", "TextDelta", "StreamTruncated"]
    truncated = events[-1]
    assert isinstance(truncated.error, UpstreamUnavailable) and truncated.error.retryable
    partial = truncated.partial_result
    assert partial.truncated and partial.model_used == OPUS and partial.message_id.startswith("msg_")
    assert partial.usage["input_tokens"] > 0
    assert partial.text == "".join(e.text for e in events if isinstance(e, gateway.TextDelta))
    assert partial.attempts[-1].usage == partial.usage
    assert calls(emulator, OPUS) == 1 and calls(emulator, SONNET) == 0  # never replayed: text already went out


async def test_a_bad_request_raises_before_any_event():
    stream = gateway.astream(models=CHAIN, messages=ask("Hi [[fault:400]]"), max_tokens=50)
    with pytest.raises(UpstreamBadRequest):
        await anext(stream)


async def test_a_stream_with_every_model_failing_raises_no_model_available():
    stream = gateway.astream(models=[OPUS], messages=ask("Hi [[fault:529]]"), max_tokens=50)
    with pytest.raises(NoModelAvailable) as caught:
        await anext(stream)
    assert [f.reason for f in caught.value.failures] == ["overloaded_error"]


async def test_a_consumer_that_goes_away_closes_the_upstream_stream_at_once(emulator):
    # Paced so the whole answer would take minutes: the emulator only logs the request once its
    # handler ends, which it does as soon as it sees the connection close.
    slow = ask("Tell me everything [[chunk-ms:500]] [[words:2000]]")
    stream = gateway.astream(models=[SONNET], messages=slow, max_tokens=8000)
    assert isinstance(await anext(stream), gateway.StreamStart)
    assert isinstance(await anext(stream), gateway.TextDelta)
    await stream.aclose()
    assert await _wait_for(lambda: calls(emulator, SONNET) == 1, seconds=15)


async def test_a_cancelled_consumer_task_closes_the_upstream_stream(emulator):
    slow = ask("Tell me everything again [[chunk-ms:500]] [[words:2000]]")
    first_token = asyncio.Event()

    async def consume() -> None:
        async for event in gateway.astream(models=[SONNET], messages=slow, max_tokens=8000):
            if isinstance(event, gateway.TextDelta):
                first_token.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_token.wait(), 15)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _wait_for(lambda: calls(emulator, SONNET) == 1, seconds=15)


async def _wait_for(condition, *, seconds: float) -> bool:
    for _ in range(int(seconds / 0.05)):
        if await asyncio.to_thread(condition):
            return True
        await asyncio.sleep(0.05)
    return False
