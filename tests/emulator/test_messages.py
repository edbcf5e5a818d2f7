from __future__ import annotations

import asyncio

import anthropic
import pytest

from tests.emulator.conftest import MODEL, params


def test_create_returns_a_message_shaped_like_the_api(emulator_reset, anthropic_client):
    message = anthropic_client.messages.create(**params("How do I reverse a linked list in Python?"))
    assert message.id.startswith("msg_")
    assert message.type == "message" and message.role == "assistant"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn" and message.stop_sequence is None
    text = message.content[0].text
    assert "reverse a linked list" in text and "emulator" in text
    usage = message.usage
    assert usage.input_tokens > 0 and usage.output_tokens > 0
    assert usage.cache_creation_input_tokens == 0 and usage.cache_read_input_tokens == 0
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert usage.cache_creation.ephemeral_1h_input_tokens == 0
    assert usage.service_tier == "standard"


def test_async_create_works_through_the_async_client(emulator_reset, async_anthropic_client):
    async def main() -> anthropic.types.Message:
        async with async_anthropic_client as client:
            return await client.messages.create(**params("Explain photosynthesis briefly"))

    message = asyncio.run(main())
    assert "photosynthesis" in message.content[0].text


def test_same_prompt_gives_same_text_and_different_prompts_differ(emulator_reset, anthropic_client):
    first = anthropic_client.messages.create(**params("What is the tallest mountain?"))
    again = anthropic_client.messages.create(**params("What is the tallest mountain?"))
    other = anthropic_client.messages.create(**params("How do volcanoes form?"))
    assert first.content[0].text == again.content[0].text
    assert first.id != again.id
    assert other.content[0].text != first.content[0].text


def test_message_ids_and_request_ids_are_unique(emulator_reset, anthropic_client):
    raws = [anthropic_client.messages.with_raw_response.create(**params("hello there")) for _ in range(3)]
    assert len({r.headers["request-id"] for r in raws}) == 3
    assert len({r.parse().id for r in raws}) == 3


def test_every_response_has_request_id_and_rate_limit_headers(emulator_reset, anthropic_client):
    response = anthropic_client.messages.with_raw_response.create(**params("hello"))
    assert response.headers["request-id"].startswith("req_")
    for kind in ("requests", "tokens", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining", "reset"):
            assert f"anthropic-ratelimit-{kind}-{part}" in response.headers
    assert response.headers["anthropic-ratelimit-requests-reset"].endswith("Z")


def test_max_tokens_cuts_the_text_and_reports_exactly_max_tokens(emulator_reset, anthropic_client):
    message = anthropic_client.messages.create(**params("Tell me about rivers", max_tokens=7))
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 7
    assert len(message.content[0].text) <= 28


def test_stop_sequence_stops_the_reply_where_it_occurs(emulator_reset, anthropic_client):
    message = anthropic_client.messages.create(**params("[[reply:alpha beta STOP gamma]]", stop_sequences=["STOP"]))
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "STOP"
    assert message.content[0].text == "alpha beta "


def test_consecutive_user_turns_are_merged_and_replied_to(emulator_reset, anthropic_client):
    message = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=300,
        messages=[
            {"role": "user", "content": "First part."},
            {"role": "user", "content": "Second part about glaciers"},
        ],
    )
    assert "glaciers" in message.content[0].text


def test_count_tokens_equals_input_tokens_of_the_same_message(emulator_reset, anthropic_client):
    system = "You are a careful assistant."
    messages = [
        {"role": "user", "content": "Summarise the causes of the French revolution"},
        {"role": "assistant", "content": "Sure, which aspect?"},
        {"role": "user", "content": [{"type": "text", "text": "The economic ones, please"}]},
    ]
    counted = anthropic_client.messages.count_tokens(model=MODEL, system=system, messages=messages)
    created = anthropic_client.messages.create(model=MODEL, max_tokens=200, system=system, messages=messages)
    assert counted.input_tokens == created.usage.input_tokens


def test_router_classifier_marker_answers_with_one_label(emulator_reset, anthropic_client):
    def label(text: str) -> str:
        message = anthropic_client.messages.create(
            model=MODEL,
            max_tokens=5,
            system="ROUTER-CLASSIFY-V1: reply with one label",
            messages=[{"role": "user", "content": text}],
        )
        return message.content[0].text

    assert label("hi!") == "simple"
    assert label("Please refactor this function and explain the trade-offs:\n```def f(x): return x```") == "complex"
    assert label("For each of the following rows, extract the city name") == "bulk"
    assert label("Write a friendly note to my neighbour about the party on Saturday evening") == "moderate"


def test_forced_tool_choice_returns_a_tool_use_block(emulator_reset, anthropic_client):
    tool = {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
    message = anthropic_client.messages.create(
        **params("Weather in Paris?"), tools=[tool], tool_choice={"type": "tool", "name": "get_weather"}
    )
    assert message.stop_reason == "tool_use"
    block = message.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather" and block.id.startswith("toolu_")
    assert isinstance(block.input["city"], str)
    follow_up = anthropic_client.messages.create(
        model=MODEL,
        max_tokens=300,
        tools=[tool],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [block.model_dump(exclude_none=True)]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "18C, sunny"}]},
        ],
    )
    assert follow_up.stop_reason == "end_turn"
    assert "18C" in follow_up.content[0].text


def test_extended_thinking_returns_a_thinking_block_first(emulator_reset, anthropic_client):
    message = anthropic_client.messages.create(
        **params("Why is the sky blue?", max_tokens=3000), thinking={"type": "enabled", "budget_tokens": 1024}
    )
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].signature
    assert message.usage.output_tokens_details.thinking_tokens > 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"model": MODEL, "messages": [{"role": "user", "content": "x"}]}, "max_tokens: Field required"),
        ({"model": MODEL, "max_tokens": 5}, "messages: Field required"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model: Field required"),
        ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "assistant", "content": "x"}]}, "first message"),
        ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": MODEL, "max_tokens": 5, "messages": [], "stream": False}, "at least one message"),
        ({**params("x"), "bogus": 1}, "Extra inputs are not permitted"),
        ({**params("x"), "max_tokens": 10_000_000}, "maximum allowed number of output tokens"),
    ],
)
def test_invalid_requests_are_rejected_with_400(raw, body, fragment):
    response = raw.post("/v1/messages", json=body)
    assert response.status_code == 400
    payload = response.json()
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert fragment in payload["error"]["message"]
    assert payload["request_id"] == response.headers["request-id"]


def test_tool_use_without_a_following_tool_result_is_rejected(raw):
    body = params("x")
    body["messages"] += [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "t", "input": {}}]},
        {"role": "user", "content": "no result here"},
    ]
    response = raw.post("/v1/messages", json=body)
    assert response.status_code == 400
    assert "tool_result" in response.json()["error"]["message"]
