"""The official anthropic SDK (sync and async), unchanged, against the gateway's /anthropic surface
served by uvicorn: create, stream, count_tokens, each error class, pass-through fields."""

from __future__ import annotations

import asyncio

import anthropic
import httpx
import pytest

from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from tests.api.test_messages_api import fresh_buckets
from tests.fixtures.reconcile import billed

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Tell me about tide pools"}]


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "models"])


def sdk(server, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=api_key, base_url=f"{server.url}/anthropic", max_retries=0, timeout=20)


def test_create_returns_an_anthropic_message_billed_once(live_gateway, key):
    message = sdk(live_gateway, key.raw).messages.create(model="claude-haiku-5-5", max_tokens=64, messages=HI)
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "claude-haiku-5-5"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    entry = billed(message.id)
    assert (entry.principal_kind, entry.principal_id) == ("partner_key", key.pk)
    assert entry.output_tokens == message.usage.output_tokens
    assert not Reservation.objects.exists()


def test_create_with_raw_response_carries_route_and_limit_headers(live_gateway, key):
    raw = sdk(live_gateway, key.raw).messages.with_raw_response.create(model="moderate", max_tokens=32, messages=HI)
    assert raw.headers["x-route-model"] == "claude-sonnet-5-5"
    assert raw.headers["x-route-reason"]
    assert raw.headers["request-id"].startswith("req_")
    assert raw.parse().model == "claude-sonnet-5-5"


def test_auto_routes_to_a_real_model(live_gateway, key):
    message = sdk(live_gateway, key.raw).messages.create(model="auto", max_tokens=32, messages=HI)
    assert message.model.startswith("claude-")


def test_stream_yields_text_and_the_final_message_with_usage(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    with client.messages.stream(model="claude-sonnet-5-5", max_tokens=128, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text and final.content[0].text == text
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    assert final.stop_reason == "end_turn"
    assert LedgerEntry.objects.filter(upstream_message_id=final.id).count() == 1


def test_a_raw_stream_relays_every_anthropic_event_type_in_order(live_gateway, key):
    events = list(
        sdk(live_gateway, key.raw).messages.create(model="claude-haiku-5-5", max_tokens=64, messages=HI, stream=True)
    )
    types = [event.type for event in events]
    assert types[0] == "message_start" and types[-1] == "message_stop"
    assert {"content_block_start", "content_block_delta", "content_block_stop", "message_delta"} <= set(types)
    assert types.index("message_delta") > types.index("content_block_stop")


def test_a_529_before_the_first_token_falls_back_unseen_in_a_stream(live_gateway, key):
    prompt = [{"role": "user", "content": "[[fault:529@claude-opus-5-5]] hello"}]
    with sdk(live_gateway, key.raw).messages.stream(model="claude-opus-5-5", max_tokens=64, messages=prompt) as s:
        final = s.get_final_message()
    assert final.model == "claude-sonnet-5-5"


def test_the_async_sdk_creates_and_streams(live_gateway, key):
    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            api_key=key.raw, base_url=f"{live_gateway.url}/anthropic", max_retries=0, timeout=20
        ) as client:
            created = await client.messages.create(model="claude-haiku-5-5", max_tokens=32, messages=HI)
            async with client.messages.stream(model="claude-haiku-5-5", max_tokens=32, messages=HI) as stream:
                streamed = "".join([text async for text in stream.text_stream])
            return created.content[0].text, streamed

    created, streamed = asyncio.run(run())
    assert created and streamed


def test_count_tokens_passes_through_to_upstream(live_gateway, key, anthropic_client):
    client = sdk(live_gateway, key.raw)
    counted = client.messages.count_tokens(model="claude-haiku-5-5", messages=HI, system="Be brief.")
    direct = anthropic_client.messages.count_tokens(model="claude-haiku-5-5", messages=HI, system="Be brief.")
    assert counted.input_tokens == direct.input_tokens > 0
    assert client.messages.count_tokens(model="auto", messages=HI).input_tokens > 0


def test_cache_control_and_system_blocks_pass_through_and_usage_shows_cache_tokens(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    system = [{"type": "text", "text": "You are a tide-pool guide. " * 400, "cache_control": {"type": "ephemeral"}}]
    first = client.messages.create(model="claude-haiku-5-5", max_tokens=32, system=system, messages=HI)
    second = client.messages.create(model="claude-haiku-5-5", max_tokens=32, system=system, messages=HI)
    assert first.usage.cache_creation_input_tokens > 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    entry = billed(second.id)
    assert entry.cache_read_tokens == second.usage.cache_read_input_tokens


def test_tools_pass_through_untouched(live_gateway, key):
    tools = [{"name": "get_tide", "description": "Tide times", "input_schema": {"type": "object", "properties": {}}}]
    message = sdk(live_gateway, key.raw).messages.create(
        model="claude-haiku-5-5",
        max_tokens=64,
        messages=HI,
        tools=tools,
        tool_choice={"type": "tool", "name": "get_tide"},
    )
    assert any(block.type == "tool_use" and block.name == "get_tide" for block in message.content)


def test_a_bad_key_is_an_authentication_error(live_gateway):
    with pytest.raises(anthropic.AuthenticationError):
        sdk(live_gateway, "cgw_notakey").messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)


def test_a_key_without_the_messages_scope_is_a_permission_denied_error(live_gateway, partner_key_factory):
    key = partner_key_factory(scopes=["models"])
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        sdk(live_gateway, key.raw).messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    assert "messages" in caught.value.message


def test_a_bad_body_is_a_bad_request_error(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=0, messages=HI)
    assert "max_tokens" in caught.value.message
    with pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=[])


def test_a_body_naming_an_upstream_url_is_refused(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    for field in ("base_url", "api_base", "upstream_url"):
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(
                model="claude-haiku-5-5", max_tokens=8, messages=HI, extra_body={field: "http://169.254.169.254/"}
            )
        assert field in caught.value.message


def test_an_unknown_model_is_a_not_found_error(live_gateway, key):
    with pytest.raises(anthropic.NotFoundError):
        sdk(live_gateway, key.raw).messages.create(model="claude-imaginary-9", max_tokens=8, messages=HI)


def test_a_rate_limit_is_a_rate_limit_error_whose_retry_after_the_sdk_honours(live_gateway, key):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=1)
    fresh_buckets(policy)
    client = sdk(live_gateway, key.raw)
    client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1 and headers["x-ratelimit-limit-requests"] == "1"
    # The SDK reads retry-after to schedule its own retry (it honours values up to 60 s).
    options = anthropic._models.FinalRequestOptions.construct(method="post", url="/v1/messages")
    wait = client._calculate_retry_timeout(1, options, caught.value.response.headers)
    assert wait == pytest.approx(int(headers["retry-after"]), abs=0.01)


def test_a_spent_budget_is_a_payment_required_error_of_type_billing_error(live_gateway, key):
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    with pytest.raises(anthropic.PaymentRequiredError) as caught:
        sdk(live_gateway, key.raw).messages.create(model="claude-opus-5-5", max_tokens=8, messages=HI)
    assert caught.value.status_code == 402
    assert caught.value.body["error"]["type"] == "billing_error"


def test_when_no_model_can_answer_the_sdk_raises_overloaded_error(live_gateway, key):
    prompt = [{"role": "user", "content": "[[fault:529]] anyone?"}]
    client = sdk(live_gateway, key.raw)
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="claude-opus-5-5", max_tokens=8, messages=prompt)
    stream = client.messages.stream(model="claude-opus-5-5", max_tokens=8, messages=prompt)
    with pytest.raises(anthropic.OverloadedError), stream as opened:
        opened.get_final_message()
    assert not LedgerEntry.objects.exists() and not Reservation.objects.exists()


def test_malformed_bodies_are_400s_in_anthropics_shape(live_gateway, key):
    for raw in (b"", b"[]", b"{", b'{"a":' * 5000, b"\xff"):
        response = httpx.post(
            f"{live_gateway.url}/anthropic/v1/messages",
            content=raw,
            headers={"x-api-key": key.raw, "content-type": "application/json", "anthropic-version": "2023-06-01"},
        )
        assert response.status_code == 400
        assert response.json()["type"] == "error"
