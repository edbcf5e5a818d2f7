"""/anthropic answers as Anthropic would, seen through the official SDK's own behaviours: API versions,
betas, upstream statuses and error types, every usage field, our refusals in Anthropic's vocabulary,
anthropic-ratelimit-* headers, and the caller's opt-out of gateway retries and fallback.

Upstream is the emulator (docs/emulator.md); its fault markers produce the upstream failures."""

from __future__ import annotations

import datetime as dt

import anthropic
import httpx
import pytest

from billing.models import Budget, LedgerEntry, RateLimitPolicy, Reservation
from tests.api.test_messages_api import fresh_buckets

pytestmark = pytest.mark.django_db(transaction=True)

HI = [{"role": "user", "content": "Tell me about tide pools"}]
V2023 = {"anthropic-version": "2023-06-01"}


@pytest.fixture
def key(partner_key_factory):
    return partner_key_factory(scopes=["messages", "models"])


def sdk(server, api_key: str, **options) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        api_key=api_key, base_url=f"{server.url}/anthropic", max_retries=0, timeout=20, **options
    )


def upstream_calls(emulator) -> list[dict]:
    return [e for e in emulator.stats()["recent"] if e["path"] == "/v1/messages" and e["method"] == "POST"]


@pytest.fixture
def forget_upstream_limits():
    """What the gateway learned of upstream's organisation limits (billing/upstream.py) lives in Redis
    for minutes: a test that lowers the emulator's limits must not leave them to the next tests."""
    from billing import redisconn

    def forget() -> None:
        client = redisconn.client()
        for name in client.scan_iter(redisconn.key("upstream", "*")):
            client.delete(name)

    forget()
    yield
    forget()


def said(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


# --- anthropic-version -------------------------------------------------------------------


def test_2023_06_01_accepts_sampling_parameters_and_is_sent_upstream_as_is(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw, default_headers=V2023)
    message = client.messages.create(
        model="claude-haiku-5-5", max_tokens=32, messages=HI, extra_body={"temperature": 0.2, "top_p": 0.9, "top_k": 5}
    )
    assert message.content[0].text
    (call,) = upstream_calls(emulator)
    assert call["version"] == "2023-06-01"


def test_2026_10_21_refuses_sampling_parameters_before_any_upstream_call(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw)  # SDK 2.x sends 2026-10-21
    for name, value in (("temperature", 0.2), ("top_p", 0.5), ("top_k", 3)):
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI, extra_body={name: value})
        assert caught.value.body["error"]["type"] == "invalid_request_error"
        assert name in caught.value.message and "2026-10-21" in caught.value.message
    assert upstream_calls(emulator) == []
    assert not LedgerEntry.objects.exists() and not Reservation.objects.exists()


def test_2023_06_01_checks_the_range_of_sampling_parameters(live_gateway, key):
    client = sdk(live_gateway, key.raw, default_headers=V2023)
    for name, value in (("temperature", 1.5), ("top_p", -0.1), ("top_k", -1), ("temperature", "hot")):
        with pytest.raises(anthropic.BadRequestError) as caught:
            client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI, extra_body={name: value})
        assert name in caught.value.message


def test_2026_10_21_block_rules_document_in_assistant_and_citations_on_user_text(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    document = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "tides"}}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="claude-haiku-5-5",
            max_tokens=8,
            messages=[{"role": "user", "content": "hi"}, {"role": "assistant", "content": [document]}],
        )
    assert "messages.1.content.0" in caught.value.message
    cited = {"type": "text", "text": "tides", "citations": []}
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": [cited]}])
    assert "citations" in caught.value.message
    # The same user block is fine under 2023-06-01.
    older = sdk(live_gateway, key.raw, default_headers=V2023)
    assert older.messages.create(
        model="claude-haiku-5-5", max_tokens=8, messages=[{"role": "user", "content": [cited]}]
    )


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (None, "anthropic-version: header is required"),
        ("2099-01-01", "anthropic-version: invalid version '2099-01-01'"),
    ],
)
def test_a_missing_or_unknown_version_is_a_400_like_anthropics(live_gateway, key, emulator, version, message):
    headers = {"x-api-key": key.raw, **({"anthropic-version": version} if version else {})}
    body = {"model": "claude-haiku-5-5", "max_tokens": 8, "messages": HI}
    for path in ("messages", "messages/count_tokens"):
        response = httpx.post(f"{live_gateway.url}/anthropic/v1/{path}", json=body, headers=headers, timeout=20)
        assert response.status_code == 400
        error = response.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith(message)
    assert upstream_calls(emulator) == []


def test_the_sdk_with_an_unknown_version_gets_a_bad_request_error(live_gateway, key):
    client = sdk(live_gateway, key.raw, default_headers={"anthropic-version": "2020-01-01"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    assert "anthropic-version" in caught.value.message


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (None, "anthropic-version: header is required"),
        ("2099-01-01", "anthropic-version: invalid version '2099-01-01'"),
    ],
)
def test_models_follow_the_same_version_rule(live_gateway, key, version, message):
    headers = {"x-api-key": key.raw, **({"anthropic-version": version} if version else {})}
    for path in ("models", "models/claude-haiku-5-5"):
        response = httpx.get(f"{live_gateway.url}/anthropic/v1/{path}", headers=headers, timeout=20)
        assert response.status_code == 400, path
        error = response.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert error["error"]["message"].startswith(message)
    # The key is checked first, as Anthropic does: a bad key with no version is a 401.
    assert httpx.get(f"{live_gateway.url}/anthropic/v1/models", headers={"x-api-key": "nope"}).status_code == 401


@pytest.mark.parametrize("headers", [{}, V2023], ids=["2026-10-21", "2023-06-01"])
def test_the_sdk_lists_and_retrieves_models_in_anthropics_shape(live_gateway, key, headers):
    client = sdk(live_gateway, key.raw, default_headers=headers)
    page = client.models.list(limit=2)
    assert isinstance(page.data[0], anthropic.types.ModelInfo) and len(page.data) == 2 and page.has_more
    listed = [model.id for model in client.models.list(limit=2)]  # the SDK follows after_id to the end
    assert listed[:2] == [model.id for model in page.data] and "claude-haiku-5-5" in listed
    haiku = client.models.retrieve("claude-haiku-5-5")
    assert (haiku.type, haiku.id, haiku.lifecycle) == ("model", "claude-haiku-5-5", "active")
    assert haiku.max_tokens and haiku.max_input_tokens and haiku.created_at.tzinfo is not None
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-mythos-5-2")
    with pytest.raises(anthropic.BadRequestError) as caught:
        sdk(live_gateway, key.raw, default_headers={"anthropic-version": "2020-01-01"}).models.list()
    assert "anthropic-version" in caught.value.message


# --- anthropic-beta ----------------------------------------------------------------------


def test_beta_messages_forward_the_betas_upstream(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw)
    message = client.beta.messages.create(
        model="claude-haiku-5-5",
        max_tokens=16,
        messages=HI,
        betas=["context-management-2025-06-27", "files-api-2025-04-14"],
    )
    assert message.content[0].text
    with client.beta.messages.stream(
        model="claude-haiku-5-5", max_tokens=16, messages=HI, betas=["context-management-2025-06-27"]
    ) as stream:
        assert stream.get_final_message().content
    first, second = upstream_calls(emulator)
    assert first["beta"] == "context-management-2025-06-27,files-api-2025-04-14"
    assert second["beta"] == "context-management-2025-06-27"


def test_count_tokens_forwards_the_version_and_betas(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw, default_headers=V2023)
    counted = client.beta.messages.count_tokens(
        model="claude-haiku-5-5", messages=HI, betas=["token-efficient-tools-2025-02-19"]
    )
    assert counted.input_tokens > 0
    (call,) = [e for e in emulator.stats()["recent"] if e["path"] == "/v1/messages/count_tokens"]
    # The SDK adds its own token-counting beta; every beta goes upstream as the caller sent it.
    assert call["version"] == "2023-06-01"
    assert call["beta"] == "token-efficient-tools-2025-02-19,token-counting-2024-11-01"


def test_without_betas_no_beta_header_goes_upstream(live_gateway, key, emulator):
    sdk(live_gateway, key.raw).messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    (call,) = upstream_calls(emulator)
    assert call["beta"] is None and call["version"] == "2026-10-21"


# --- upstream statuses and error types ---------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "exception", "status", "error_type"),
    [
        ("413", anthropic.ContentTooLargeError, 413, "request_too_large"),
        ("403", anthropic.PermissionDeniedError, 403, "permission_error"),
        ("400", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("500", anthropic.InternalServerError, 500, "api_error"),
        ("529", anthropic.OverloadedError, 529, "overloaded_error"),
    ],
)
def test_upstream_errors_keep_their_status_and_type(live_gateway, key, fault, exception, status, error_type):
    client = sdk(live_gateway, key.raw)
    with pytest.raises(exception) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=said(f"[[fault:{fault}]] hi"))
    assert caught.value.status_code == status
    assert caught.value.body["error"]["type"] == error_type
    assert caught.value.request_id.startswith("req_")
    assert not Reservation.objects.exists()


def test_an_upstream_429_stays_a_rate_limit_error_with_upstreams_retry_after(
    live_gateway, key, emulator, forget_upstream_limits
):
    client = sdk(live_gateway, key.raw)
    prompt = said("[[fault:429]] [[retry-after:60]] hi")
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=prompt)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "60"
    # The SDK schedules its own retry from that header.
    options = anthropic._models.FinalRequestOptions.construct(method="post", url="/v1/messages")
    assert client._calculate_retry_timeout(1, options, caught.value.response.headers) == pytest.approx(60, abs=0.01)
    # 60 s is past the gateway's retry cap: no retry of the same model, straight on down the chain.
    assert all(call["status"] == 429 for call in upstream_calls(emulator))


def test_an_upstream_429_carries_upstreams_ratelimit_headers_tightest_of_the_keys(
    live_gateway, key, emulator, forget_upstream_limits
):
    # The key's own limit: 50 requests a minute. Upstream's organisation limit: 5 (a real org's 429 would
    # come with its remaining at 0; the gateway then refuses before calling, so the fault marker stands in).
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=50)
    fresh_buckets(policy)
    emulator.set_config(requests_per_minute=5)
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "0"})
    client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(
            model="claude-haiku-5-5", max_tokens=8, messages=said("[[fault:429]] [[retry-after:30]] hi")
        )
    headers = caught.value.response.headers
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "30"  # upstream's own wait, passed on
    # Requests: upstream's (at most 4 of 5 left) is tighter than the key's (48 of 50).
    assert headers["anthropic-ratelimit-requests-limit"] == "5"
    assert int(headers["anthropic-ratelimit-requests-remaining"]) <= 4
    # Tokens: the key has no token limit of its own, so upstream's figures, from the 429 itself.
    assert headers["anthropic-ratelimit-input-tokens-limit"] == str(emulator.config()["input_tokens_per_minute"])
    reset = dt.datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert reset > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)
    assert [call["status"] for call in upstream_calls(emulator)] == [200, 429]


def test_a_streamed_call_refused_by_an_upstream_429_gets_the_same_headers(
    live_gateway, key, emulator, forget_upstream_limits
):
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "0"})
    prompt = said("[[fault:429]] hi")
    with (  # before any event: a plain 429, as Anthropic answers
        pytest.raises(anthropic.RateLimitError) as caught,
        client.messages.stream(model="claude-haiku-5-5", max_tokens=8, messages=prompt) as stream,
    ):
        stream.until_done()
    headers = caught.value.response.headers
    assert headers["retry-after"] and headers["anthropic-ratelimit-requests-limit"] == str(
        emulator.config()["requests_per_minute"]
    )
    assert headers["anthropic-ratelimit-input-tokens-reset"].endswith("Z")


def test_an_upstream_429_with_a_key_limit_tighter_than_upstreams_shows_the_keys(
    live_gateway, key, emulator, forget_upstream_limits
):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=3)
    fresh_buckets(policy)
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "0"})
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=said("[[fault:429]] hi"))
    headers = caught.value.response.headers
    assert (headers["anthropic-ratelimit-requests-limit"], headers["anthropic-ratelimit-requests-remaining"]) == (
        "3", "2",
    )  # fmt: skip
    assert headers["anthropic-ratelimit-output-tokens-limit"] == str(emulator.config()["output_tokens_per_minute"])


def test_a_mid_stream_overloaded_error_is_relayed_as_overloaded_error(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    prompt = said("[[fault:stream-error-after:2]] tell me a long story about tide pools and crabs")
    stream = client.messages.stream(model="claude-haiku-5-5", max_tokens=200, messages=prompt)
    with pytest.raises(anthropic.APIStatusError) as caught, stream as opened:
        for _ in opened.text_stream:
            pass
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "overloaded_error"


# --- usage -------------------------------------------------------------------------------


def test_every_usage_field_survives_a_non_streamed_reply(live_gateway, key, anthropic_client):
    client = sdk(live_gateway, key.raw)
    thinking = {"type": "enabled", "budget_tokens": 1024}
    message = client.messages.create(model="claude-haiku-5-5", max_tokens=2048, messages=HI, thinking=thinking)
    usage = message.usage
    assert usage.service_tier == "standard"
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == 0
    raw = client.messages.with_raw_response.create(
        model="claude-haiku-5-5", max_tokens=2048, messages=HI, thinking=thinking
    )
    body = raw.http_response.json()["usage"]
    direct = anthropic_client.messages.with_raw_response.create(
        model="claude-haiku-5-5", max_tokens=2048, messages=HI, thinking=thinking
    ).http_response.json()["usage"]
    assert set(body) == set(direct) and "output_tokens_details" in body and body["service_tier"] == "standard"


def test_every_usage_field_survives_a_streamed_reply(live_gateway, key):
    with sdk(live_gateway, key.raw).messages.stream(model="claude-haiku-5-5", max_tokens=64, messages=HI) as stream:
        final = stream.get_final_message()
    assert final.usage.service_tier == "standard"
    assert final.usage.cache_creation is not None and final.usage.output_tokens > 0


# --- our own refusals --------------------------------------------------------------------


def test_a_spent_budget_is_a_payment_required_billing_error_naming_the_budget(live_gateway, key, emulator):
    Budget.objects.create(scope="partner_key", scope_id=key.pk, period="month", limit_micros=1)
    with pytest.raises(anthropic.PaymentRequiredError) as caught:
        sdk(live_gateway, key.raw).messages.create(model="claude-opus-5-5", max_tokens=8, messages=HI)
    error = caught.value.body["error"]
    assert error["type"] == "billing_error"
    assert f"partner_key {key.pk}" in error["message"]  # which budget refused
    headers = caught.value.response.headers
    assert headers["x-budget-limit"] == "1" and headers["x-budget-remaining"] == "1"  # what is left, in micros
    assert headers["x-budget-reset"] in error["message"]  # and when it resets
    assert headers.get("retry-after") is None  # waiting a minute would not help
    assert upstream_calls(emulator) == []


def test_a_key_rate_limit_names_the_limit_and_carries_anthropic_ratelimit_headers(live_gateway, key):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=1)
    fresh_buckets(policy)
    client = sdk(live_gateway, key.raw)
    client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert "requests per minute (1)" in caught.value.message
    headers = caught.value.response.headers
    assert int(headers["retry-after"]) >= 1
    assert headers["anthropic-ratelimit-requests-limit"] == "1"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    reset = dt.datetime.fromisoformat(headers["anthropic-ratelimit-requests-reset"].replace("Z", "+00:00"))
    assert reset > dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5)


def test_anthropic_ratelimit_headers_are_the_tightest_of_the_keys_and_upstreams(live_gateway, key, emulator):
    policy = RateLimitPolicy.objects.create(scope="partner_key", scope_id=key.pk, requests_per_minute=50)
    fresh_buckets(policy)
    raw = sdk(live_gateway, key.raw).messages.with_raw_response.create(
        model="claude-haiku-5-5", max_tokens=8, messages=HI
    )
    headers = raw.headers
    assert headers["anthropic-ratelimit-requests-limit"] == "50"  # the key's own: tighter than the org's
    assert headers["anthropic-ratelimit-requests-remaining"] == "49"
    # No token limit of its own: the tokens figures are upstream's (the emulated org limit).
    assert headers["anthropic-ratelimit-input-tokens-limit"] == str(emulator.config()["input_tokens_per_minute"])
    assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")


# --- gateway retries and fallback -------------------------------------------------------


def test_x_gateway_retries_0_makes_exactly_one_upstream_call(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "0"})
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=said("[[fault:529]] hi"))
    calls = upstream_calls(emulator)
    assert [(c["model"], c["status"]) for c in calls] == [("claude-sonnet-5-5", 529)]


def test_x_gateway_retries_0_never_falls_back_to_another_model(live_gateway, key, emulator):
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "0"})
    prompt = said("[[fault:529@claude-sonnet-5-5]] hi")
    with pytest.raises(anthropic.OverloadedError):
        client.messages.create(model="claude-sonnet-5-5", max_tokens=8, messages=prompt)
    with (
        pytest.raises(anthropic.OverloadedError),
        client.messages.stream(model="claude-sonnet-5-5", max_tokens=8, messages=prompt) as stream,
    ):
        stream.get_final_message()
    assert {c["model"] for c in upstream_calls(emulator)} == {"claude-sonnet-5-5"}
    assert len(upstream_calls(emulator)) == 2


def test_an_unknown_x_gateway_retries_value_is_a_400_naming_the_header(live_gateway, key):
    client = sdk(live_gateway, key.raw, default_headers={"x-gateway-retries": "3"})
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    assert "x-gateway-retries" in caught.value.message


def test_a_fallback_answer_says_so_in_a_header(live_gateway, key):
    client = sdk(live_gateway, key.raw)
    prompt = said("[[fault:529@claude-opus-5-5]] hi")
    raw = client.messages.with_raw_response.create(model="claude-opus-5-5", max_tokens=8, messages=prompt)
    assert raw.parse().model == "claude-sonnet-5-5"
    assert raw.headers["x-gateway-fallback-from"] == "claude-opus-5-5"
    assert "overloaded_error" in raw.headers["x-gateway-fallback-reason"]
    with client.messages.with_streaming_response.create(
        model="claude-opus-5-5", max_tokens=8, messages=prompt, stream=True
    ) as streamed:
        assert streamed.headers["x-gateway-fallback-from"] == "claude-opus-5-5"
        streamed.read()
    plain = client.messages.with_raw_response.create(model="claude-haiku-5-5", max_tokens=8, messages=HI)
    assert "x-gateway-fallback-from" not in plain.headers
