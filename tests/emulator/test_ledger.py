"""The emulator's own ledger of what it charged (GET /_emulator/ledger), for every way a call can end.

Expected figures come from what the client actually received, measured with the emulator's own
token function (emulator.tokens.text_tokens), never from hard-coded numbers.
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from emulator.tokens import DOCUMENT_TOKENS, IMAGE_TOKENS, text_tokens
from tests.emulator.conftest import MODEL, params

USAGE_KEYS = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
PROMPT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
ZERO = dict.fromkeys(USAGE_KEYS, 0)
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
ATTACHMENTS = [
    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PIXEL}},
    {"type": "document", "source": {"type": "url", "url": "https://example.com/report.pdf"}},
    {"type": "text", "text": "Summarise the report and describe the picture"},
]
KINDS: dict[str, dict[str, Any]] = {
    "text": params("Describe how rivers shape their valleys"),
    "thinking": params("Explain tides", max_tokens=2000, thinking={"type": "enabled", "budget_tokens": 1024}),
    "tool_use": params("Weather in Oslo [[tool-use]]", tools=[WEATHER]),
    "attachments": {**params("x"), "messages": [{"role": "user", "content": ATTACHMENTS}]},
}


def billed(usage: Any) -> dict[str, int]:
    """The four billed figures of an SDK Usage or a usage dict."""
    get = usage.get if isinstance(usage, dict) else lambda key: getattr(usage, key)
    return {key: get(key) or 0 for key in USAGE_KEYS}


def stream_raw(raw: httpx.Client, body: dict[str, Any], fault: str | None = None) -> tuple[str, list]:
    """A streamed call with plain httpx: its request id and every whole SSE event received (a drop is fine)."""
    received = b""
    headers = {"x-emulator-fault": fault} if fault else {}
    with raw.stream("POST", "/v1/messages", json={**body, "stream": True}, headers=headers) as response:
        request_id = response.headers["request-id"]
        try:
            for chunk in response.iter_bytes():
                received += chunk
        except httpx.RemoteProtocolError:
            pass
    *whole, _partial = received.split(b"\n\n")
    events = []
    for chunk in whole:
        head, data = chunk.decode().split("\n", 1)
        events.append((head.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return request_id, events


def sent_tokens(events: list) -> int:
    """Output tokens of the content received: text/thinking per block, tool_use name + partial JSON + 4."""
    texts: dict[int, str] = {}
    tools = 0
    for name, data in events:
        if name == "content_block_start":
            texts[data["index"]] = ""
            if data["content_block"]["type"] == "tool_use":
                tools += text_tokens(data["content_block"]["name"]) + 4
        elif name == "content_block_delta":
            delta = data["delta"]
            texts[data["index"]] += delta.get("text", delta.get("thinking", delta.get("partial_json", "")))
    return max(1, sum(text_tokens(text) for text in texts.values()) + tools)


def charge_of(emulator, request_id: str) -> dict[str, Any]:
    (charge,) = emulator.charges(request_id=request_id)
    return charge


def prompt_part(usage: dict[str, int]) -> dict[str, int]:
    return {key: usage[key] for key in PROMPT_KEYS}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", KINDS)
def test_a_complete_reply_is_charged_the_usage_it_reported(emulator_reset, anthropic_client, kind, stream):
    if stream:
        with anthropic_client.messages.stream(**KINDS[kind]) as events:
            message, request_id = events.get_final_message(), events.request_id
    else:
        response = anthropic_client.messages.with_raw_response.create(**KINDS[kind])
        message, request_id = response.parse(), response.headers["request-id"]
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "complete" and charge["message_id"] == message.id
    assert (charge["model"], charge["stream"], charge["batch"]) == (MODEL, stream, False)
    assert charge["usage"] == billed(message.usage)
    types = [block.type for block in message.content]
    expected = {"thinking": "thinking", "tool_use": "tool_use"}.get(kind, "text")
    assert expected in types
    if kind == "attachments":
        assert message.usage.input_tokens > IMAGE_TOKENS + DOCUMENT_TOKENS


@pytest.mark.parametrize(
    ("kind", "deltas", "last_delta"),
    [
        ("text", 4, "text_delta"),
        ("thinking", 3, "thinking_delta"),
        ("tool_use", 5, "input_json_delta"),
        ("attachments", 2, "text_delta"),
    ],
)
def test_a_cut_stream_is_charged_the_prompt_and_the_content_sent(emulator_reset, raw, kind, deltas, last_delta):
    full = charge_of(emulator_reset, stream_raw(raw, KINDS[kind])[0])["usage"]
    request_id, events = stream_raw(raw, KINDS[kind], fault=f"stream-cut:{deltas}")
    names = [name for name, _ in events]
    assert names[0] == "message_start" and "message_delta" not in names and "message_stop" not in names
    sent = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert len(sent) == deltas and sent[-1]["type"] == last_delta
    charge = charge_of(emulator_reset, request_id)
    start = events[0][1]["message"]
    assert charge["ending"] == "cut" and charge["message_id"] == start["id"] and charge["stream"]
    assert prompt_part(charge["usage"]) == prompt_part(start["usage"]) == prompt_part(full)
    assert charge["usage"]["output_tokens"] == sent_tokens(events) < full["output_tokens"]


def test_a_cut_inside_tool_input_charges_the_name_the_partial_json_and_four(emulator_reset, raw):
    body = params("Weather in Oslo", tools=[WEATHER], tool_choice={"type": "tool", "name": "get_weather"})
    request_id, events = stream_raw(raw, body, fault="stream-cut:2")
    partial = "".join(data["delta"]["partial_json"] for name, data in events if name == "content_block_delta")
    assert partial and not partial.endswith("}")
    expected = text_tokens("get_weather") + text_tokens(partial) + 4
    assert charge_of(emulator_reset, request_id)["usage"]["output_tokens"] == expected


def test_later_cuts_charge_more_output(emulator_reset, raw):
    body = params("Explain how glaciers carve valleys [[words:60]]")
    full = charge_of(emulator_reset, stream_raw(raw, body)[0])["usage"]["output_tokens"]
    charged = []
    for deltas in (0, 1, 3, 6, 12):
        request_id, events = stream_raw(raw, body, fault=f"stream-cut:{deltas}")
        output = charge_of(emulator_reset, request_id)["usage"]["output_tokens"]
        assert output == sent_tokens(events)
        charged.append(output)
    assert charged[0] == 1  # only message_start went out, which reports output_tokens 1
    assert all(a < b for a, b in itertools.pairwise(charged)) and charged[-1] < full


def test_a_cut_after_every_delta_but_before_message_stop_charges_what_message_delta_reported(emulator_reset, raw):
    body = params("Short one [[words:6]]", max_tokens=2)  # max_tokens: reported output exceeds the text sent
    request_id, events = stream_raw(raw, body, fault="stream-cut:50")
    names = [name for name, _ in events]
    assert "message_delta" in names and "message_stop" not in names
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "cut" and charge["usage"]["output_tokens"] == 2


@pytest.mark.parametrize("fault", ["stream-error", "stream-error-after:5"])
def test_a_mid_stream_error_is_charged_the_prompt_and_the_content_before_it(emulator_reset, raw, fault):
    request_id, events = stream_raw(raw, KINDS["text"], fault=fault)
    assert events[-1][0] == "error"
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "error" and charge["message_id"] == events[0][1]["message"]["id"]
    assert prompt_part(charge["usage"]) == prompt_part(events[0][1]["message"]["usage"])
    assert charge["usage"]["output_tokens"] == sent_tokens(events)
    if fault == "stream-error":
        assert charge["usage"]["output_tokens"] == 1


def test_the_sdk_sees_a_mid_stream_error_with_the_charged_request_id(emulator_reset, anthropic_client):
    pieces: list[str] = []
    manager = anthropic_client.messages.stream(
        **KINDS["thinking"], extra_headers={"x-emulator-fault": "stream-error-after:4"}
    )
    with pytest.raises(anthropic.APIStatusError), manager as events:
        request_id = events.request_id
        for event in events:
            if event.type == "content_block_delta" and event.delta.type == "thinking_delta":
                pieces.append(event.delta.thinking)
    assert len(pieces) == 4
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "error"
    assert charge["usage"]["output_tokens"] == text_tokens("".join(pieces))


def test_a_client_leaving_a_paced_stream_is_charged_up_to_where_it_left(emulator_reset, anthropic_client):
    body = params("Tell me about the rivers of Europe [[words:300]]")
    full = anthropic_client.messages.create(**body).usage
    emulator_reset.set_config(chunk_ms=30)
    read: list[str] = []
    with anthropic_client.messages.stream(**body) as events:
        request_id = events.request_id
        for piece in events.text_stream:
            read.append(piece)
            if len(read) == 3:
                break
    charge = emulator_reset.wait_for_charge(request_id)
    assert charge["ending"] == "disconnect" and charge["message_id"].startswith("msg_")
    assert prompt_part(charge["usage"]) == prompt_part(billed(full))
    assert text_tokens("".join(read)) <= charge["usage"]["output_tokens"] < full.output_tokens


def test_a_client_leaving_an_unpaced_stream_is_charged_the_whole_answer(emulator_reset, anthropic_client):
    body = params("Tell me about the rivers of Europe [[words:300]]")
    full = anthropic_client.messages.create(**body).usage
    with anthropic_client.messages.stream(**body) as events:
        request_id = events.request_id
        for count, _ in enumerate(events.text_stream, 1):
            if count == 3:
                break
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "complete" and charge["usage"] == billed(full)


def test_a_cut_stream_replaying_a_cached_prefix_charges_the_cache_as_message_start_reported(emulator_reset, raw):
    system = [{"type": "text", "text": "Background. " * 500, "cache_control": {"type": "ephemeral"}}]
    body = params("Describe the harbour", system=system)
    written = charge_of(emulator_reset, stream_raw(raw, body)[0])["usage"]
    assert written["cache_creation_input_tokens"] > 0
    request_id, events = stream_raw(raw, body, fault="stream-cut:2")
    usage = charge_of(emulator_reset, request_id)["usage"]
    assert usage["cache_read_input_tokens"] == written["cache_creation_input_tokens"]
    assert prompt_part(usage) == prompt_part(events[0][1]["message"]["usage"])


def test_refused_calls_charge_nothing(emulator_reset, anthropic_client):
    with pytest.raises(anthropic.OverloadedError) as caught:
        anthropic_client.messages.create(**params("please fail [[fault:529]]"))
    charge = charge_of(emulator_reset, caught.value.request_id)
    assert charge["ending"] == "refused" and charge["message_id"] is None and charge["usage"] == ZERO
    assert (charge["model"], charge["stream"], charge["batch"]) == (MODEL, False, False)


def test_each_retry_is_its_own_charge(emulator_reset, anthropic_client):
    client = anthropic_client.with_options(max_retries=2)
    response = client.messages.with_raw_response.create(**params("x [[fault:529:2]] [[retry-after-ms:10]]"))
    charges = emulator_reset.charges()
    assert [c["ending"] for c in charges] == ["refused", "refused", "complete"]
    assert len({c["request_id"] for c in charges}) == 3
    assert charges[-1]["request_id"] == response.headers["request-id"]
    assert charges[-1]["usage"] == billed(response.parse().usage)


@pytest.mark.parametrize(
    ("body", "headers", "status"),
    [
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}, {}, 400),
        (params("x"), {"x-api-key": ""}, 401),
        (params("x", stream=True), {"x-emulator-fault": "500"}, 500),
        (params("x [[fault:429]]", stream=True), {}, 429),
        (params("x", model="claude-nonexistent-1"), {}, 404),
    ],
)
def test_every_error_answered_before_a_message_is_a_zero_charge(emulator_reset, raw, body, headers, status):
    response = raw.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == status
    charge = charge_of(emulator_reset, response.headers["request-id"])
    assert charge["ending"] == "refused" and charge["usage"] == ZERO and charge["message_id"] is None


def test_a_dropped_or_hung_call_is_a_zero_charge(emulator_reset, raw):
    with pytest.raises(httpx.RemoteProtocolError):
        raw.post("/v1/messages", json=params("x"), headers={"x-emulator-fault": "drop"})
    with pytest.raises(httpx.ReadTimeout):
        raw.post("/v1/messages", json=params("y"), headers={"x-emulator-fault": "hang"}, timeout=0.3)
    charges = emulator_reset.charges()
    assert [c["ending"] for c in charges] == ["refused", "refused"]
    assert all(c["usage"] == ZERO for c in charges)


def test_a_cut_json_reply_is_charged_in_full(emulator_reset, raw):
    full = raw.post("/v1/messages", json=params("Describe a lighthouse")).json()
    with pytest.raises(httpx.RemoteProtocolError):
        raw.post("/v1/messages", json=params("Describe a lighthouse"), headers={"x-emulator-fault": "stream-cut"})
    charge = emulator_reset.charges()[-1]
    assert charge["ending"] == "cut" and charge["message_id"].startswith("msg_")
    assert charge["usage"] == billed(full["usage"])


def test_a_client_leaving_before_a_paced_json_reply_is_a_zero_charge(emulator_reset, raw):
    emulator_reset.set_config(ttft_ms=5000)
    with pytest.raises(httpx.ReadTimeout):
        raw.post("/v1/messages", json=params("slow"), timeout=0.3)
    deadline = time.monotonic() + 10
    while not (charges := emulator_reset.charges()) and time.monotonic() < deadline:
        time.sleep(0.02)
    (charge,) = charges
    assert charge["ending"] == "disconnect" and charge["message_id"] is None and charge["usage"] == ZERO


def test_each_succeeded_batch_result_is_charged_once_when_the_batch_ends(emulator_reset, anthropic_client):
    batches = anthropic_client.messages.batches
    requests = [{"custom_id": f"r{i}", "params": params(f"Batch question number {i}")} for i in range(3)]
    requests.append({"custom_id": "bad", "params": params("x [[batch:errored]]")})
    batch = batches.create(requests=requests)
    assert emulator_reset.charges() == []
    emulator_reset.advance_clock(60)
    results = {line.custom_id: line.result for line in batches.results(batch.id)}
    batches.retrieve(batch.id)
    charges = emulator_reset.charges(batch_id=batch.id)
    assert [c["custom_id"] for c in charges] == ["r0", "r1", "r2"] and emulator_reset.charges() == charges
    for charge in charges:
        message = results[charge["custom_id"]].message
        assert charge["message_id"] == message.id and charge["usage"] == billed(message.usage)
        assert (charge["request_id"], charge["batch"], charge["stream"], charge["ending"]) == (
            None,
            True,
            False,
            "complete",
        )


def test_count_tokens_models_and_batch_calls_charge_nothing(emulator_reset, anthropic_client):
    anthropic_client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    anthropic_client.models.list()
    anthropic_client.models.retrieve(MODEL)
    anthropic_client.messages.batches.list()
    assert emulator_reset.charges() == []


def test_ledger_filters_clears_and_keeps_the_newest(emulator_reset, anthropic_client, raw):
    messages = [anthropic_client.messages.create(**params(f"question {i}")) for i in range(3)]
    assert [c["message_id"] for c in emulator_reset.charges()] == [m.id for m in messages]
    (second,) = emulator_reset.charges(message_id=messages[1].id)
    assert emulator_reset.charges(request_id=second["request_id"]) == [second]
    assert emulator_reset.charges(ending="refused") == []
    bad = raw.get("/_emulator/ledger", params={"requestid": "x"})
    assert bad.status_code == 400 and "requestid" in bad.json()["error"]["message"]

    emulator_reset.set_config(ledger_size=2)
    assert [c["message_id"] for c in emulator_reset.charges()] == [m.id for m in messages[1:]]
    assert emulator_reset.clear_charges() == 2 and emulator_reset.charges() == []
    anthropic_client.messages.create(**params("again"))
    emulator_reset.reset()
    assert emulator_reset.charges() == []


def test_a_streamed_cut_seen_through_the_sdk_is_on_the_ledger(emulator_reset, anthropic_client):
    pieces: list[str] = []
    manager = anthropic_client.messages.stream(**KINDS["text"], extra_headers={"x-emulator-fault": "stream-cut:5"})
    with pytest.raises(httpx2.RemoteProtocolError), manager as events:
        request_id = events.request_id
        pieces.extend(events.text_stream)
    charge = charge_of(emulator_reset, request_id)
    assert charge["ending"] == "cut" and charge["usage"]["output_tokens"] == text_tokens("".join(pieces))
