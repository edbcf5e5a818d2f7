"""The sync gateway (Celery workers): same loop as the async one, on the sync SDK client and Redis."""

from __future__ import annotations

import asyncio
import threading

import pytest

from claudeapp.claude import gateway

pytestmark = pytest.mark.usefixtures("gateway_settings")

OPUS, SONNET = "claude-opus-5-5", "claude-sonnet-5-5"
CHAIN = [OPUS, SONNET]


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_the_sync_gateway_works_from_a_plain_thread(emulator):
    results, errors = [], []

    def work() -> None:
        try:
            results.append(gateway.complete(models=CHAIN, messages=ask("Hi [[fault:529:1]]"), max_tokens=100))
        except Exception as exc:  # surfaced by the assert below
            errors.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert not errors
    (result,) = results
    assert result.model_used == OPUS and result.text
    assert [a.outcome for a in result.attempts] == ["overloaded_error", "ok"]


def test_the_sync_gateway_streams_internally_for_large_max_tokens(emulator, settings):
    settings.CLAUDE_NONSTREAMING_MAX_TOKENS = 1000
    result = gateway.complete(models=[SONNET], messages=ask("Hello"), max_tokens=32000)
    assert result.text and result.usage["output_tokens"] > 0
    assert emulator.stats(last=1)["recent"][0]["stream"] is True


def test_the_sync_gateway_refuses_to_block_an_event_loop():
    async def inside_a_view() -> None:
        gateway.complete(models=[SONNET], messages=ask("Hello"), max_tokens=10)

    with pytest.raises(RuntimeError, match="acomplete"):
        asyncio.run(inside_a_view())
