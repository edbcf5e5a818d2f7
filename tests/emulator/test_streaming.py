from __future__ import annotations

import asyncio
import json
import time

import anthropic
import httpx2
import pytest

from tests.emulator.conftest import params


def sse_events(body: str) -> list[tuple[str, dict]]:
    events = []
    for chunk in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in chunk.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_stream_text_matches_the_non_streamed_reply_and_reports_usage(emulator_reset, anthropic_client):
    request = params("Describe the water cycle")
    created = anthropic_client.messages.create(**request)
    with anthropic_client.messages.stream(**request) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert len(pieces) > 3
    assert "".join(pieces) == created.content[0].text == final.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == created.usage.output_tokens
    assert final.usage.input_tokens == created.usage.input_tokens


def test_async_stream_yields_the_same_text(emulator_reset, async_anthropic_client):
    async def main() -> tuple[str, int]:
        async with async_anthropic_client as client, client.messages.stream(**params("Tides?")) as stream:
            text = "".join([piece async for piece in stream.text_stream])
            return text, (await stream.get_final_message()).usage.output_tokens

    text, output_tokens = asyncio.run(main())
    assert "Tides" in text and output_tokens > 0


def test_raw_sse_follows_the_api_event_order_with_cumulative_usage(raw):
    response = raw.post("/v1/messages", json=params("Tell me about owls", stream=True))
    assert response.headers["content-type"].startswith("text/event-stream")
    events = sse_events(response.text)
    names = [name for name, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 1
    assert all(data["delta"]["type"] == "text_delta" for name, data in events if name == "content_block_delta")
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == (len(text) + 3) // 4
    assert delta["usage"]["input_tokens"] == start["usage"]["input_tokens"]


def test_stream_error_event_raises_api_status_error_before_any_text(emulator_reset, anthropic_client):
    pieces: list[str] = []
    stream = anthropic_client.messages.stream(**params("hi [[fault:stream-error]]"))
    with pytest.raises(anthropic.APIStatusError) as caught, stream as events:
        pieces.extend(events.text_stream)
    assert pieces == []
    assert caught.value.status_code == 200
    assert caught.value.type == "overloaded_error"
    assert emulator_reset.stats(last=1)["recent"][0]["fault"] == "marker:stream-error"


def test_stream_error_after_n_chunks_delivers_those_chunks_first(emulator_reset, anthropic_client):
    pieces: list[str] = []
    stream = anthropic_client.messages.stream(**params("hi [[fault:stream-error-after:4]]"))
    with pytest.raises(anthropic.APIStatusError), stream as events:
        pieces.extend(events.text_stream)
    assert len(pieces) == 4


def test_stream_cut_drops_the_connection_without_message_stop(emulator_reset, anthropic_client):
    pieces: list[str] = []
    stream = anthropic_client.messages.stream(**params("essay [[fault:stream-cut:5]]"))
    with pytest.raises(httpx2.RemoteProtocolError), stream as events:
        pieces.extend(events.text_stream)
    assert len(pieces) == 5


def test_chunk_pacing_spreads_the_stream_over_time(emulator_reset, anthropic_client):
    started = time.monotonic()
    arrivals = []
    with anthropic_client.messages.stream(**params("pace me [[ttft:150]] [[chunk-ms:20]] [[words:30]]")) as stream:
        for _ in stream.text_stream:
            arrivals.append(time.monotonic() - started)
    assert len(arrivals) == 10
    assert arrivals[0] >= 0.14
    assert arrivals[-1] - arrivals[0] >= 0.17
