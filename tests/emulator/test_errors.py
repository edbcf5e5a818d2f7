from __future__ import annotations

import asyncio
import time

import anthropic
import pytest

from tests.emulator.conftest import MODEL, params


@pytest.mark.parametrize(
    ("fault", "error_class", "error_type"),
    [
        ("400", anthropic.BadRequestError, "invalid_request_error"),
        ("401", anthropic.AuthenticationError, "authentication_error"),
        ("403", anthropic.PermissionDeniedError, "permission_error"),
        ("404", anthropic.NotFoundError, "not_found_error"),
        ("413", anthropic.ContentTooLargeError, "request_too_large"),
        ("429", anthropic.RateLimitError, "rate_limit_error"),
        ("500", anthropic.InternalServerError, "api_error"),
        ("504", anthropic.GatewayTimeoutError, "timeout_error"),
        ("529", anthropic.OverloadedError, "overloaded_error"),
    ],
)
def test_each_injected_status_raises_the_matching_sdk_error(
    emulator_reset, anthropic_client, fault, error_class, error_type
):
    with pytest.raises(error_class) as caught:
        anthropic_client.messages.create(**params(f"please fail [[fault:{fault}]]"))
    error = caught.value
    assert error.status_code == int(fault)
    assert error.type == error_type
    assert error.request_id and error.request_id.startswith("req_")
    assert error.body["request_id"] == error.request_id
    assert "anthropic-ratelimit-requests-limit" in error.response.headers


def test_header_fault_works_like_the_marker(emulator_reset, anthropic_client):
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**params("hello"), extra_headers={"x-emulator-fault": "529"})
    assert emulator_reset.stats(last=1)["recent"][0]["fault"] == "header:529"


def test_rate_limit_fault_variants_carry_the_right_retry_headers(emulator_reset, anthropic_client):
    def headers(marker: str):
        with pytest.raises(anthropic.RateLimitError) as caught:
            anthropic_client.messages.create(**params(f"x {marker}"))
        return caught.value.response.headers

    assert headers("[[fault:429]]")["retry-after"] == "1"
    with_ms = headers("[[fault:429-ms]]")
    assert with_ms["retry-after-ms"] == "100" and "retry-after" not in with_ms
    bare = headers("[[fault:429-none]]")
    assert "retry-after" not in bare and "retry-after-ms" not in bare


def test_should_retry_false_stops_the_sdk_from_retrying(emulator_reset, anthropic_client):
    client = anthropic_client.with_options(max_retries=2)
    with pytest.raises(anthropic.OverloadedError) as caught:
        client.messages.create(**params("x [[fault:529]] [[should-retry:false]]"))
    assert caught.value.response.headers["x-should-retry"] == "false"
    assert emulator_reset.stats()["by_status"] == {"529": 1}


def test_unknown_and_retired_models_are_not_found(emulator_reset, anthropic_client):
    for model in ("claude-nonexistent-1", "claude-sonnet-4-20250514", "claude-opus-4-20250514"):
        with pytest.raises(anthropic.NotFoundError) as caught:
            anthropic_client.messages.create(model=model, max_tokens=5, messages=[{"role": "user", "content": "x"}])
        assert caught.value.type == "not_found_error"
        assert model in caught.value.api_message


def test_configured_retired_model_is_refused(emulator_reset, anthropic_client):
    emulator_reset.set_config(retired_models=["claude-sonnet-4-5"])
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.create(**{**params("x"), "model": "claude-sonnet-4-5"})


def test_wrong_api_key_is_an_authentication_error(emulator_reset, anthropic_client):
    emulator_reset.set_config(api_keys=["the-only-key"])
    with pytest.raises(anthropic.AuthenticationError) as caught:
        anthropic_client.messages.create(**params("x"))
    assert caught.value.api_message == "invalid x-api-key"
    ok = anthropic_client.with_options(api_key="the-only-key").messages.create(**params("x"))
    assert ok.content


def test_missing_api_key_is_an_authentication_error(raw):
    response = raw.post("/v1/messages", json=params("x"), headers={"x-api-key": ""})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"


def test_oversized_body_is_request_too_large(emulator_reset, anthropic_client):
    emulator_reset.set_config(max_body_bytes=2_000)
    with pytest.raises(anthropic.ContentTooLargeError) as caught:
        anthropic_client.messages.create(**params("x" * 5_000))
    assert caught.value.type == "request_too_large"


def test_drop_closes_the_connection_without_a_response(emulator_reset, anthropic_client):
    with pytest.raises(anthropic.APIConnectionError):
        anthropic_client.messages.create(**params("x [[fault:drop]]"))


def test_hang_never_answers_until_the_client_gives_up(emulator_reset, anthropic_client):
    started = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_client.with_options(timeout=0.4).messages.create(**params("x [[fault:hang]]"))
    assert 0.35 < time.monotonic() - started < 2


def test_latency_marker_and_header_delay_the_response(emulator_reset, anthropic_client):
    started = time.monotonic()
    anthropic_client.messages.create(**params("x [[latency:250]]"))
    assert time.monotonic() - started >= 0.24
    started = time.monotonic()
    anthropic_client.models.list(extra_headers={"x-emulator-latency-ms": "200"})
    assert time.monotonic() - started >= 0.19


def test_cors_requests_without_the_browser_opt_in_are_refused(raw):
    response = raw.post("/v1/messages", json=params("x"), headers={"origin": "https://evil.example"})
    assert response.status_code == 401
    assert "CORS" in response.json()["error"]["message"]


def test_unknown_route_is_not_found_with_a_request_id(raw):
    response = raw.get("/v1/nope")
    assert response.status_code == 404
    assert response.json()["request_id"] == response.headers["request-id"]


def test_prefill_is_refused_for_models_configured_without_it(emulator_reset, anthropic_client):
    emulator_reset.set_config(no_prefill_models=[MODEL])
    messages = [{"role": "user", "content": "Pick one"}, {"role": "assistant", "content": "The answer is"}]
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.create(model=MODEL, max_tokens=10, messages=messages)
    allowed = anthropic_client.messages.create(model="claude-haiku-4-5", max_tokens=10, messages=messages)
    assert allowed.content


def test_async_client_raises_the_same_errors_and_retries(emulator_reset, async_anthropic_client):
    async def main() -> str:
        async with async_anthropic_client as client:
            with pytest.raises(anthropic.OverloadedError):
                await client.messages.create(**params("async [[fault:529]]"))
            retrying = client.with_options(max_retries=1)
            message = await retrying.messages.create(**params("async retry [[fault:500:1]] [[retry-after-ms:5]]"))
            return message.stop_reason

    assert asyncio.run(main()) == "end_turn"
    assert [e["retry_count"] for e in emulator_reset.stats()["recent"]] == ["0", "0", "1"]
