from __future__ import annotations

import time

import anthropic
import pytest

from tests.emulator.conftest import params


def retry_counts(emulator) -> list[str | None]:
    return [entry["retry_count"] for entry in emulator.stats()["recent"] if entry["path"] == "/v1/messages"]


def test_sdk_retries_a_529_twice_then_succeeds(emulator_reset, anthropic_client):
    client = anthropic_client.with_options(max_retries=2)
    message = client.messages.create(**params("retry me [[fault:529:2]] [[retry-after-ms:10]]"))
    assert message.stop_reason == "end_turn"
    assert retry_counts(emulator_reset) == ["0", "1", "2"]
    statuses = [e["status"] for e in emulator_reset.stats()["recent"]]
    assert statuses == [529, 529, 200]


def test_sdk_sleeps_exactly_the_retry_after_it_is_given(emulator_reset, anthropic_client):
    client = anthropic_client.with_options(max_retries=1)
    started = time.monotonic()
    client.messages.create(**params("slow retry [[fault:429:1]]"))  # 429 fault says retry-after: 1
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 1.6
    started = time.monotonic()
    client.messages.create(**params("fast retry [[fault:429-ms:1]]"))  # retry-after-ms: 100
    assert time.monotonic() - started < 0.5


def test_counted_fault_fails_only_the_first_n_identical_requests(emulator_reset, anthropic_client):
    request = params("twice [[fault:500:2]]")
    for _ in range(2):
        with pytest.raises(anthropic.InternalServerError):
            anthropic_client.messages.create(**request)
    assert anthropic_client.messages.create(**request).content
    with pytest.raises(anthropic.InternalServerError):  # a different body has its own counter
        anthropic_client.messages.create(**{**request, "max_tokens": 401})


def test_fault_sequence_fires_markers_in_order(emulator_reset, anthropic_client):
    request = params("sequence [[fault:529:1]] [[fault:500:1]]")
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**request)
    with pytest.raises(anthropic.InternalServerError):
        anthropic_client.messages.create(**request)
    assert anthropic_client.messages.create(**request).content


def test_model_scoped_fault_lets_the_fallback_model_answer(emulator_reset, anthropic_client):
    text = "storm [[fault:529@claude-opus-5-5]]"
    with pytest.raises(anthropic.OverloadedError):
        anthropic_client.messages.create(**{**params(text), "model": "claude-opus-5-5"})
    fallback = anthropic_client.messages.create(**{**params(text), "model": "claude-sonnet-5-5"})
    assert fallback.model == "claude-sonnet-5-5"


def test_model_faults_from_config_hit_every_request_for_that_model(emulator_reset, anthropic_client):
    emulator_reset.set_config(model_faults={"claude-opus-5-5": "529"})
    for _ in range(2):
        with pytest.raises(anthropic.OverloadedError):
            anthropic_client.messages.create(**{**params("x"), "model": "claude-opus-5-5"})
    assert anthropic_client.messages.create(**params("x")).content


def test_seeded_error_rates_are_deterministic(emulator_reset, anthropic_client):
    def outcomes() -> list[int]:
        emulator_reset.set_config(error_rates={"529": 0.3, "500": 0.2}, seed=7)
        got = []
        for i in range(30):
            try:
                anthropic_client.messages.create(**params(f"draw {i}"))
                got.append(200)
            except anthropic.APIStatusError as err:
                got.append(err.status_code)
        return got

    first = outcomes()
    assert first == outcomes()
    assert {200, 500, 529} <= set(first)
