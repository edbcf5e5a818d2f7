from __future__ import annotations

from tests.emulator.conftest import MODEL

LONG_SYSTEM = "You are a meticulous assistant for a shipping company. " * 120  # ~1,650 tokens


def cached_request(client, question: str, ttl: str = "5m", **extra):
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral", "ttl": ttl}}]
    return client.messages.create(
        model=MODEL, max_tokens=100, system=system, messages=[{"role": "user", "content": question}], **extra
    )


def test_first_call_writes_the_cache_and_the_repeat_reads_it(emulator_reset, anthropic_client):
    first = cached_request(anthropic_client, "Where is my parcel?")
    assert first.usage.cache_creation_input_tokens > 1024
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == first.usage.cache_creation_input_tokens
    assert first.usage.cache_read_input_tokens == 0
    second = cached_request(anthropic_client, "Can I change the address?")
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    total = anthropic_client.messages.count_tokens(
        model=MODEL, system=LONG_SYSTEM, messages=[{"role": "user", "content": "Can I change the address?"}]
    ).input_tokens
    assert second.usage.input_tokens + second.usage.cache_read_input_tokens == total


def test_one_hour_ttl_is_reported_separately_and_survives_ten_minutes(emulator_reset, anthropic_client):
    first = cached_request(anthropic_client, "q1", ttl="1h")
    assert first.usage.cache_creation.ephemeral_1h_input_tokens > 0
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 0
    emulator_reset.advance_clock(600)
    assert cached_request(anthropic_client, "q2", ttl="1h").usage.cache_read_input_tokens > 0


def test_five_minute_entries_expire_on_the_emulator_clock(emulator_reset, anthropic_client):
    cached_request(anthropic_client, "q1")
    emulator_reset.advance_clock(301)
    again = cached_request(anthropic_client, "q1")
    assert again.usage.cache_read_input_tokens == 0
    assert again.usage.cache_creation_input_tokens > 0


def test_prefix_below_the_minimum_is_not_cached(emulator_reset, anthropic_client):
    system = [{"type": "text", "text": "Short system prompt.", "cache_control": {"type": "ephemeral"}}]
    message = anthropic_client.messages.create(
        model=MODEL, max_tokens=50, system=system, messages=[{"role": "user", "content": "hi"}]
    )
    assert message.usage.cache_creation_input_tokens == 0 and message.usage.cache_read_input_tokens == 0


def test_top_level_cache_control_caches_the_whole_prompt(emulator_reset, anthropic_client):
    messages = [{"role": "user", "content": LONG_SYSTEM}]
    first = anthropic_client.messages.create(
        model=MODEL, max_tokens=50, messages=messages, extra_body={"cache_control": {"type": "ephemeral"}}
    )
    assert first.usage.input_tokens == 0 and first.usage.cache_creation_input_tokens > 0
    second = anthropic_client.messages.create(
        model=MODEL, max_tokens=50, messages=messages, extra_body={"cache_control": {"type": "ephemeral"}}
    )
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens


def test_cache_is_scoped_per_api_key(emulator_reset, anthropic_client):
    cached_request(anthropic_client, "q")
    other = cached_request(anthropic_client.with_options(api_key="another-key"), "q")
    assert other.usage.cache_read_input_tokens == 0


def test_more_than_four_breakpoints_is_a_bad_request(raw):
    block = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": [block] * 5}]}
    response = raw.post("/v1/messages", json=body)
    assert response.status_code == 400
    assert "maximum of 4" in response.json()["error"]["message"]
