"""The gateway against the real emulator over HTTP: retries, retry-after, fallback, breaker."""

from __future__ import annotations

import asyncio

import pytest

from claudeapp.claude import gateway
from claudeapp.claude.breaker import BreakerState
from claudeapp.claude.errors import NoModelAvailable, UpstreamBadRequest

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("gateway_settings", "aclose_loop_clients")]

OPUS, SONNET, HAIKU = "claude-opus-5-5", "claude-sonnet-5-5", "claude-haiku-5-5"
CHAIN = [OPUS, SONNET]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def calls(emulator, model: str | None = None) -> int:
    stats = emulator.stats()
    if model is None:
        return stats["by_path"].get("POST /v1/messages", 0)
    return stats["by_model"].get(model, 0)


async def test_a_call_returns_the_answer_with_ids_usage_and_ratelimit_headers():
    result = await gateway.acomplete(models=[SONNET], messages=ask("Hello there"), max_tokens=200)
    assert result.model_requested == result.model_used == SONNET
    assert result.fallback_reason is None
    assert result.text and result.content[0]["type"] == "text"
    assert result.message_id.startswith("msg_") and result.request_id.startswith("req_")
    assert result.stop_reason == "end_turn"
    assert result.usage["input_tokens"] > 0 and result.usage["output_tokens"] > 0
    assert "anthropic-ratelimit-requests-remaining" in result.ratelimit_headers
    assert [(a.model, a.outcome) for a in result.attempts] == [(SONNET, "ok")]


async def test_overloaded_answers_are_retried_until_one_succeeds(emulator):
    result = await gateway.acomplete(models=[OPUS], messages=ask("Hi [[fault:529:2]]"), max_tokens=100)
    assert [a.outcome for a in result.attempts] == ["overloaded_error", "overloaded_error", "ok"]
    assert [a.status for a in result.attempts] == [529, 529, 200]
    assert all(a.request_id for a in result.attempts)
    assert calls(emulator) == 3


async def test_retry_after_from_upstream_is_waited_for_before_the_retry(emulator):
    result = await gateway.acomplete(
        models=[OPUS], messages=ask("Hi [[fault:429:1]] [[retry-after-ms:150]]"), max_tokens=100
    )
    first, second = result.attempts
    assert (first.outcome, first.retry_after) == ("rate_limit_error", 0.15)
    assert second.outcome == "ok"
    times = [entry["time"] for entry in emulator.stats(last=2)["recent"]]
    assert times[1] - times[0] >= 0.15


async def test_a_retry_after_longer_than_the_cap_moves_on_to_the_fallback_at_once(emulator):
    text = f"Hi [[fault:429@{OPUS}]] [[retry-after:30]]"
    result = await gateway.acomplete(models=CHAIN, messages=ask(text), max_tokens=100)
    assert result.model_used == SONNET
    assert result.fallback_reason == f"{OPUS}: rate_limit_error"
    assert calls(emulator, OPUS) == 1


async def test_a_bad_request_is_neither_retried_nor_sent_to_the_fallback(emulator):
    with pytest.raises(UpstreamBadRequest) as caught:
        await gateway.acomplete(models=CHAIN, messages=ask("Hi [[fault:400]]"), max_tokens=100)
    assert caught.value.status == 400 and not caught.value.retryable
    assert [a.outcome for a in caught.value.attempts] == ["invalid_request_error"]
    assert calls(emulator) == 1


async def test_a_retired_model_falls_back_to_the_next_model_without_retrying(emulator):
    emulator.set_config(retired_models=[OPUS])
    result = await gateway.acomplete(models=CHAIN, messages=ask("Hello"), max_tokens=100)
    assert result.model_used == SONNET
    assert result.attempts[0].status == 404 and result.fallback_reason == f"{OPUS}: not_found_error"
    assert calls(emulator, OPUS) == 1


async def test_an_overload_storm_opens_the_breaker_and_the_fallback_answers(emulator, breaker):
    text = f"Hi [[fault:529@{OPUS}]]"
    result = await gateway.acomplete(models=CHAIN, messages=ask(text), max_tokens=100, breaker=breaker)
    assert result.model_used == SONNET and result.fallback_reason == f"{OPUS}: overloaded_error"
    assert breaker.state(OPUS).state is BreakerState.OPEN
    assert calls(emulator, OPUS) == 3

    again = await gateway.acomplete(models=CHAIN, messages=ask(text), max_tokens=100, breaker=breaker)
    assert [(a.model, a.outcome) for a in again.attempts] == [(OPUS, "circuit_open"), (SONNET, "ok")]
    assert again.fallback_reason == f"{OPUS}: circuit_open"
    assert calls(emulator, OPUS) == 3


async def test_after_the_cooldown_one_probe_reaches_the_model_and_its_success_closes_the_circuit(
    emulator, breaker, clock
):
    emulator.set_config(model_faults={OPUS: "529"})
    await gateway.acomplete(models=CHAIN, messages=ask("storm"), max_tokens=50, breaker=breaker)
    emulator.set_config(model_faults={OPUS: None})  # upstream recovers
    clock.advance(30)

    # Two calls at once: the probe is slow, so the other caller arrives while it is in flight.
    slow, quick = ask("probe [[latency:300]]"), ask("meanwhile")
    probe, other = await asyncio.gather(
        gateway.acomplete(models=CHAIN, messages=slow, max_tokens=50, breaker=breaker),
        _after(0.1, gateway.acomplete(models=CHAIN, messages=quick, max_tokens=50, breaker=breaker)),
    )
    assert probe.model_used == OPUS
    assert [a.outcome for a in other.attempts] == ["circuit_open", "ok"] and other.model_used == SONNET
    assert calls(emulator, OPUS) == 4
    assert breaker.state(OPUS).state is BreakerState.CLOSED


async def _after(seconds: float, coro):
    await asyncio.sleep(seconds)
    return await coro


async def test_bad_requests_never_open_the_breaker(breaker):
    for _ in range(5):
        with pytest.raises(UpstreamBadRequest):
            await gateway.acomplete(models=[OPUS], messages=ask("Hi [[fault:400]]"), max_tokens=50, breaker=breaker)
    assert breaker.state(OPUS).state is BreakerState.CLOSED


async def test_rate_limits_never_open_the_breaker(breaker):
    with pytest.raises(NoModelAvailable):
        await gateway.acomplete(
            models=[OPUS], messages=ask("Hi [[fault:429]] [[retry-after-ms:1]]"), max_tokens=50, breaker=breaker
        )
    assert breaker.state(OPUS).state is BreakerState.CLOSED


async def test_timeouts_are_retried_and_end_in_no_model_available_with_the_reasons(emulator):
    with pytest.raises(NoModelAvailable) as caught:
        await gateway.acomplete(models=[HAIKU], messages=ask("Hi [[fault:hang]]"), max_tokens=50, timeout=0.2)
    error = caught.value
    assert [(f.model, f.reason) for f in error.failures] == [(HAIKU, "timeout")]
    assert [a.outcome for a in error.attempts] == ["timeout"] * 3
    assert error.retryable and str(error) == f"no model available ({HAIKU}: timeout)"


async def test_every_model_open_means_no_model_available_without_any_upstream_call(emulator, breaker):
    emulator.set_config(model_faults={OPUS: "503", SONNET: "503"})
    with pytest.raises(NoModelAvailable):
        await gateway.acomplete(models=CHAIN, messages=ask("storm"), max_tokens=50, breaker=breaker)
    before = calls(emulator)
    with pytest.raises(NoModelAvailable) as caught:
        await gateway.acomplete(models=CHAIN, messages=ask("storm"), max_tokens=50, breaker=breaker)
    assert [f.reason for f in caught.value.failures] == ["circuit_open", "circuit_open"]
    assert calls(emulator) == before


async def test_extra_parameters_such_as_tools_pass_through_untouched():
    tools = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    result = await gateway.acomplete(
        models=[SONNET], messages=ask("Weather in Paris? [[tool-use:get_weather]]"), max_tokens=200,
        extra={"tools": tools},
    )  # fmt: skip
    assert result.stop_reason == "tool_use"
    tool_use = next(block for block in result.content if block["type"] == "tool_use")
    assert tool_use["name"] == "get_weather" and isinstance(tool_use["input"]["city"], str)


async def test_large_max_tokens_stream_internally_and_still_return_the_whole_answer(emulator, settings):
    settings.CLAUDE_NONSTREAMING_MAX_TOKENS = 1000
    result = await gateway.acomplete(models=[SONNET], messages=ask("Hello [[fault:529:1]]"), max_tokens=32000)
    assert result.text and result.usage["output_tokens"] > 0 and result.stop_reason == "end_turn"
    assert [a.outcome for a in result.attempts] == ["overloaded_error", "ok"]
    assert [entry["stream"] for entry in emulator.stats(last=2)["recent"]] == [True, True]
