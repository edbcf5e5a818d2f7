from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.emulator.conftest import params


def test_stats_count_requests_by_path_model_and_status(emulator_reset, anthropic_client):
    anthropic_client.messages.create(**params("one"))
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**params("two [[fault:529]]"))
    anthropic_client.models.list()
    stats = emulator_reset.stats()
    assert stats["total_requests"] == 3
    assert stats["by_path"]["POST /v1/messages"] == 2
    assert stats["by_model"]["claude-sonnet-5-5"] == 2
    assert stats["by_status"] == {"200": 2, "529": 1}
    assert stats["faults_fired"] == 1
    last = stats["recent"][1]
    assert last["fault"] == "marker:529" and last["request_id"].startswith("req_") and last["retry_count"] == "0"


def test_config_merges_and_reset_restores_startup_settings(emulator_reset):
    merged = emulator_reset.set_config(latency_ms=5, error_rates={"529": 0.1})
    assert merged["latency_ms"] == 5 and merged["error_rates"] == {"529": 0.1}
    merged = emulator_reset.set_config(error_rates={"500": 0.2, "529": None})
    assert merged["error_rates"] == {"500": 0.2}
    emulator_reset.reset()
    assert emulator_reset.config()["latency_ms"] == 0 and emulator_reset.config()["error_rates"] == {}
    assert emulator_reset.stats()["total_requests"] == 0


def test_unknown_config_keys_are_rejected(emulator_reset):
    with pytest.raises(httpx.HTTPStatusError):
        emulator_reset.set_config(no_such_setting=1)


def test_clock_advances_on_request(emulator_reset):
    first = emulator_reset.advance_clock(0)["now"]
    assert emulator_reset.advance_clock(3600)["now"] >= first + 3600


def test_org_rate_limit_returns_429_with_retry_after(emulator_reset, anthropic_client):
    emulator_reset.set_config(requests_per_minute=2)
    raw = anthropic_client.messages.with_raw_response.create(**params("a"))
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "1"
    anthropic_client.messages.create(**params("b"))
    with pytest.raises(anthropic.RateLimitError) as caught:
        anthropic_client.messages.create(**params("c"))
    assert int(caught.value.response.headers["retry-after"]) >= 1
    emulator_reset.advance_clock(60)
    assert anthropic_client.messages.create(**params("d")).content


def test_input_token_limit_counts_uncached_input(emulator_reset, anthropic_client):
    emulator_reset.set_config(input_tokens_per_minute=100)
    with pytest.raises(anthropic.RateLimitError):
        anthropic_client.messages.create(**params("word " * 200))
